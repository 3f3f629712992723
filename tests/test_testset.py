"""`prefixtune testset`: the test slice (a seeded random sample as the authors drew XSum's 1,500 test articles,
then the first N), each input with its own reference group; bad input is one line and exit 2, nothing written."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from prefixtune.testset import pick

BIN = Path(sys.executable).parent


def write_set(folder: Path, n: int, refs_per_input=lambda i: 1 + i % 3):
    inputs = [json.dumps({"source": f"article {i}", "target": f"summary {i}.0"}) for i in range(n)]
    groups = ["\n".join(f"summary {i}.{j}" for j in range(refs_per_input(i))) for i in range(n)]
    (folder / "test.jsonl").write_text("".join(x + "\n" for x in inputs), encoding="utf-8")
    (folder / "test.refs.txt").write_text("\n\n".join(groups) + "\n", encoding="utf-8")
    return inputs, groups


def run_testset(folder: Path, *flags):
    return subprocess.run([str(BIN / "prefixtune"), "testset", "--input", str(folder / "test.jsonl"),
                           "--refs", str(folder / "test.refs.txt"), "--out", str(folder / "out.jsonl"),
                           "--out-refs", str(folder / "out.refs.txt"), *flags], capture_output=True, text=True)


def test_the_sample_is_the_authors_draw():
    """lowdata_gen.py:30, :47@7544769: np.random.seed(seed); np.random.choice(len, n, replace=False), in the
    order drawn."""
    for total, n, seed in [(11334, 1500, 0), (11334, 1500, 101), (20, 20, 3), (7, 1, 0)]:
        np.random.seed(seed)
        theirs = np.random.choice(total, n, replace=False).tolist()
        assert pick(total, n, seed, None) == theirs
    assert pick(5, None, 0, None) == [0, 1, 2, 3, 4] and pick(5, None, 0, 2) == [0, 1]
    assert pick(100, 10, 0, 3) == pick(100, 10, 0, None)[:3] and pick(100, 10, 1, None) != pick(100, 10, 0, None)


def test_each_input_keeps_its_reference_group(tmp_path):
    inputs, groups = write_set(tmp_path, 30)
    done = run_testset(tmp_path, "--sample", "12", "--seed", "5", "--first", "8")
    assert done.returncode == 0, done.stderr
    keep = pick(30, 12, 5, 8)
    assert (tmp_path / "out.jsonl").read_text() == "".join(inputs[i] + "\n" for i in keep)
    assert (tmp_path / "out.refs.txt").read_text() == "\n\n".join(groups[i] for i in keep) + "\n"
    first = run_testset(tmp_path, "--first", "4")  # the first N: what `head` and awk's paragraph mode cut before
    assert first.returncode == 0, first.stderr
    assert (tmp_path / "out.jsonl").read_text().splitlines() == inputs[:4]
    assert (tmp_path / "out.refs.txt").read_text() == "\n\n".join(groups[:4]) + "\n"


@pytest.mark.parametrize("flags,break_refs,needle", [
    (["--sample", "31"], False, "--sample 31: more than the 30 inputs of"),
    (["--first", "0"], False, "--first 0: must be a positive number of inputs"),
    (["--sample", "5"], True, "test.refs.txt: 29 reference groups for the 30 inputs of"),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, flags, break_refs, needle):
    write_set(tmp_path, 30)
    if break_refs:
        refs = tmp_path / "test.refs.txt"
        refs.write_text(refs.read_text().rsplit("\n\n", 1)[0] + "\n")
    done = run_testset(tmp_path, *flags)
    assert done.returncode == 2 and needle in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert not (tmp_path / "out.jsonl").exists() and not (tmp_path / "out.refs.txt").exists()
    assert not list(tmp_path.glob("*.tmp"))  # no temporary file left behind either


def test_reference_groups_are_read_as_the_scorer_reads_them(tmp_path):
    from prefixtune.score import read_groups
    from prefixtune.testset import reference_groups

    for text in ["a\nb\n\nc\n", "a\n\nb\n\n\n", "\ufeffa x \n  b\n\nc"]:
        (tmp_path / "r.txt").write_text(text, encoding="utf-8")
        assert reference_groups(tmp_path / "r.txt") == read_groups(tmp_path / "r.txt"), text
    (tmp_path / "r.txt").write_text("a\n\n\nb\n", encoding="utf-8")
    with pytest.raises(Exception, match=r"r.txt:3: empty reference group"):
        reference_groups(tmp_path / "r.txt")
