"""The benchmark scripts that run elsewhere (bench/gpu-check on a GPU machine): what they run is the grid's."""

import csv
import importlib.util
import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from prefixtune import params as P

REPO = Path(__file__).resolve().parents[1]


def _module(name):
    spec = importlib.util.spec_from_file_location(name, REPO / "bench" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _options(argv):
    """{option: value or True} of a command line (every option of train/decode takes at most one value)."""
    out, i = {}, 0
    while i < len(argv):
        if argv[i].startswith("--"):
            takes = i + 1 < len(argv) and not argv[i + 1].startswith("--")
            out[argv[i]] = argv[i + 1] if takes else True
            i += 2 if takes else 1
        else:
            i += 1
    return out


def test_dtype_check_runs_the_grids_commands_changing_only_output_dtype_and_device(tmp_path):
    dc = _module("dtype_check")
    runs = dc.selected_runs("cpu", 100, 0)  # the low-data runs only: one folder per method label
    assert sorted(r.method for r in runs) == ["adapter-0.1", "finetune", "prefix"]
    grid = P.build(REPO / "params.yaml")
    for r in runs:
        t = r.tests["dev"]  # the set decoded with the run's own (first selection rule's) parameters
        for device, dtype in (("cuda", "bfloat16"), ("cpu", "float32")):
            train, decode = dc.commands(r, dtype, device, tmp_path / "x")
            assert train[:3] == [sys.executable, "-m", "prefixtune.cli"]
            ours, theirs = _options(train[3:]), _options(shlex.split(grid.runs[r.id].train_cmd)[1:])
            assert ours.pop("--out") == str(tmp_path / "x" / "method") and ours.pop("--dtype") == dtype
            assert ours.pop("--device") == device and theirs.pop("--out") and theirs.pop("--dtype", "float32") == "float32"
            if device == "cuda":  # the preset's CPU threads do not apply off the CPU
                assert theirs.pop("--threads") == "2"
            assert ours == theirs
            ours, theirs = _options(decode[3:]), _options(shlex.split(t["decode_cmd"])[1:])
            assert ours.pop("--method-dir") == str(tmp_path / "x" / "method") and theirs.pop("--method-dir")
            assert ours.pop("--out") == str(tmp_path / "x" / "test.hyp.txt") and theirs.pop("--out")
            assert ours.pop("--dtype") == dtype and ours.pop("--device") == device
            assert ours == theirs and "--input" in ours and "--ban-newlines" in ours


def test_dtype_check_report_without_runs_is_one_line(tmp_path):
    done = subprocess.run([sys.executable, str(REPO / "bench" / "dtype_check.py"), "report", str(tmp_path)],
                          capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 2 and done.stderr.strip().count("\n") == 0
    assert done.stderr.startswith(f"dtype_check: {tmp_path}: no finished run")


def test_dtype_check_report_takes_the_grids_run_as_the_cpu_float32_arm(tmp_path):
    """With --float32-from-grid and no float32 folder, the float32 rows are the grid's committed n = 100 s0 runs:
    their own scores, kept step and stage seconds."""
    from prefixtune import params as P

    grid = P.build(REPO / "params.yaml", {"preset": "cpu"})
    chosen = [r for r in grid.runs.values() if r.size == 100 and r.sample == 0]
    if not all((REPO / t["scores"]).is_file() for r in chosen for t in r.tests.values()):
        pytest.skip("the cpu grid's n = 100 s0 runs are not finished on the current protocol (scripts/run-grid)")
    csv_path = tmp_path / "dtype.csv"
    done = subprocess.run([sys.executable, str(REPO / "bench" / "dtype_check.py"), "report", str(tmp_path / "none"),
                           "--float32-from-grid", "--csv", str(csv_path)], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(csv_path.open()))
    assert {r["method"] for r in rows} == {"prefix", "finetune", "adapter-0.1"}
    assert {r["dtype"] for r in rows} == {"float32"}
    for row in rows:
        run = REPO / "runs" / "cpu" / row["run"]
        assert row["run"].split("/")[2].startswith("n100-s0-") and row["device"] == "cpu (the grid's run)"
        assert float(row["BLEU"]) == json.loads((run / "dev.scores.json").read_text())["BLEU"]
        assert int(row["best_step"]) == json.loads((run / "method" / "method.json").read_text())["best_step"]
        assert float(row["train_s"]) == json.loads((run / "method.run.json").read_text())["seconds"]


def test_gpu_check_usage_is_one_line():
    done = subprocess.run(["bash", str(REPO / "bench" / "gpu-check"), "nope"], capture_output=True, text=True)
    assert done.returncode == 2 and done.stderr.strip().startswith("usage: bench/gpu-check")
