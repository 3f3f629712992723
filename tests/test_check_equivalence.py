"""scripts/check-equivalence (issue 28) on the `tiny` preset, in a clone of the committed HEAD (the work tree
may hold others' unfinished edits): unchanged code is byte-identical (exit 0, the stages to `dvc commit`, the
summary), a change to training is caught (exit 1, naming the file), a bad BASE is one line and exit 2."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "check-equivalence"
MIRROR = Path(os.environ.get("PREFIXTUNE_DATA_MIRROR") or REPO.parent / "shared" / "data")
needs_mirror = pytest.mark.skipif(not (MIRROR / "e2e").is_dir(), reason=f"no data mirror at {MIRROR}")


def check(repo: Path, *args):
    return subprocess.run([sys.executable, str(repo / "scripts" / "check-equivalence"), *args], cwd=repo,
                          capture_output=True, text=True, timeout=900,
                          env={**os.environ, "PREFIXTUNE_DATA_MIRROR": str(MIRROR)})


@pytest.fixture(scope="module")
def clone(tmp_path_factory):
    """A clone of HEAD with this script (git-excluded, so that the clone's work tree reads as clean)."""
    dest = tmp_path_factory.mktemp("check-equivalence") / "repo"
    subprocess.run(["git", "clone", "-q", str(REPO), str(dest)], check=True)
    shutil.copy2(SCRIPT, dest / "scripts" / "check-equivalence")
    with open(dest / ".git" / "info" / "exclude", "a") as f:
        f.write("/scripts/check-equivalence\n")
    return dest


def worktrees(repo: Path) -> int:
    return len(subprocess.run(["git", "worktree", "list"], cwd=repo, capture_output=True, text=True,
                              check=True).stdout.splitlines())


@pytest.mark.slow
@needs_mirror
def test_unchanged_code_is_identical(clone, tmp_path):
    record = tmp_path / "summary.txt"
    done = check(clone, "HEAD", "--preset", "tiny", "--steps", "2", "--inputs", "2", "--record", str(record),
                 "--keep", str(tmp_path / "out"))
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    for method in ("prefix", "finetune"):  # the tiny preset's methods, one run each
        line = next(x for x in lines if x.startswith(f"{method} ("))
        assert "identical (" in line and "method/weights.safetensors" in line and "test.hyp.txt" in line, line
    assert "All identical" in done.stdout
    assert "train_e2e_prefix_n4-s0-seed0-p2-random" in done.stdout  # a train stage to `dvc commit`
    assert "decode_e2e_finetune_n8-s0-seed0_test" in done.stdout
    sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=clone, capture_output=True, text=True).stdout[:12]
    summary = record.read_text()
    assert f"BASE {sha} and of HEAD {sha} trains" in summary and "tiny preset" in summary, summary
    assert "[BASE] prefix: train" in done.stderr and "[HEAD] finetune: decode test" in done.stderr  # progress
    logs = {p.name for p in (tmp_path / "out" / "logs").iterdir()}
    assert {"BASE-prefix-train.log", "HEAD-finetune-test.log"} <= logs
    assert worktrees(clone) == 1  # BASE's worktree is gone


@pytest.mark.slow
@needs_mirror
def test_changed_training_differs(clone):
    path = clone / "src" / "prefixtune" / "schedule.py"
    old = path.read_text()
    line = "torch.optim.AdamW(params, lr=hp.lr, weight_decay=hp.weight_decay)"
    assert line in old, "schedule.py no longer builds AdamW as this test expects: update the edit below"
    path.write_text(old.replace(line, "torch.optim.AdamW(params, lr=hp.lr, weight_decay=hp.weight_decay, eps=1e-3)"))
    try:
        done = check(clone, "HEAD", "--preset", "tiny", "--steps", "2", "--inputs", "2")
    finally:
        path.write_text(old)
    assert done.returncode == 1, done.stdout + done.stderr
    line = next(x for x in done.stdout.splitlines() if x.startswith("prefix ("))
    assert "differs: " in line and "method/weights.safetensors" in line, line
    assert "All identical" not in done.stdout and "dvc commit" not in done.stdout
    assert worktrees(clone) == 1


@pytest.mark.parametrize("args,message", [
    (["no-such-commit-xyz"], "BASE: 'no-such-commit-xyz' is not a commit"),
    (["HEAD", "--steps", "0"], "--steps and --inputs must be at least 1"),
])
def test_bad_input_is_one_line(args, message):
    done = subprocess.run([sys.executable, str(SCRIPT), *args], cwd=REPO, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and message in done.stderr and "Traceback" not in done.stderr, done.stderr
