"""float32 vs bfloat16 on the low-data protocol: the cpu preset's n = 100 runs of one subsample, trained and
decoded in both dtypes, dev loss and test scores side by side (issue 14: bf16 must not change conclusions).

    python bench/dtype_check.py run --device cuda --out /tmp/dtype          # train + decode (GPU machine)
    python bench/dtype_check.py report /tmp/dtype [--csv results/bench/dtype_check.csv]   # score (needs Java)

`run` takes each run's train and decode commands from params.yaml's grid for `--preset` (the
same settings, data files and test slice as the grid) and changes only the output folder, `--dtype` and
`--device` (and drops `--threads` off the CPU). bfloat16 here is mixed precision with float32 master copies
of the trained parameters (`train --dtype`); decoding runs in the dtype the method was trained in. A run
with a times.json (written last) is skipped, so a killed `run` continues. Files, per method label and dtype:
    OUT/<method>/<dtype>/method/        train's output (method.json: best_step, best_dev_loss, dev_curve)
    OUT/<method>/<dtype>/test.hyp.txt   decode's output
    OUT/<method>/<dtype>/times.json     wall seconds of train and decode, device, torch version
A fine-tuned model's weights are deleted after decoding (only outputs are compared; `--keep-weights` keeps
them); the prefix and adapter tensors stay.

`report` scores each hypothesis file with the run's own score command (the official E2E metrics) and
writes one CSV row per (method, dtype): best dev loss and step, test BLEU and the other metrics, seconds.
On the CPU the float32 arm need not be trained again: `run --device cpu --dtypes bfloat16`, then `report
--float32-from-grid` reads the grid's finished runs as the float32 rows (the same commands but for the output
folder; their seconds were measured when the grid ran, possibly on another machine: compare speed with
bench/train_step.py and bench/decode_speed.py instead).
"""

import argparse
import csv
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

from prefixtune import params as P
from prefixtune.errors import InputError
from prefixtune.files import atomic_open
from prefixtune.run_folder import decoded, finished, read_json

ROOT = Path(__file__).resolve().parents[1]  # the checkout: commands run from it

DTYPES = ("float32", "bfloat16")
CLI = [sys.executable, "-m", "prefixtune.cli"]  # works from a source tree on PYTHONPATH, installed or not


def selected_runs(preset, size, sample, methods=None, experiment="lowdata"):
    """The preset's runs of `experiment` at this size and subsample (one per method label: the init
    experiment's other prefixes share the label and are left out), in the grid's order."""
    grid = P.build(overlay={"preset": preset})
    runs = [r for r in grid.runs.values() if r.size == size and r.sample == sample
            and experiment in r.experiments and (methods is None or r.method in methods)]
    if not runs:
        raise InputError(f"--preset {preset}: no run of {experiment} at size {size}, subsample s{sample}")
    return runs


def with_options(cmd: str, out_flag: str, out: Path, **opts) -> list:
    """`cmd` (a `prefixtune ...` command line) as argv for this interpreter, its `out_flag` value replaced by
    `out`, each option in `opts` (name -> value; None: dropped) replaced or appended."""
    argv = shlex.split(cmd)
    assert argv[0] == "prefixtune", cmd
    opts = {out_flag: str(out), **{"--" + k.replace("_", "-"): v for k, v in opts.items()}}
    rest, i = [], 1
    while i < len(argv):
        if argv[i] in opts:
            i += 2  # every option changed here takes one value
            continue
        rest.append(argv[i])
        i += 1
    return CLI + rest + [a for k, v in opts.items() if v is not None for a in (k, str(v))]


def first_test(run) -> dict:
    """The run's one decoded set with its own (first selection rule's) parameters."""
    (t,) = [t for t in run.tests.values() if t.get("selection", "primary") == "primary"]
    return t


def commands(run, dtype, device, folder: Path, smoke=False):
    """(train argv, decode argv) of one run in `dtype` on `device`, writing into `folder`; `smoke`: 2 steps and
    3 test inputs, to try the whole path quickly (numbers meaningless)."""
    t = first_test(run)
    off_cpu = {} if device == "cpu" else {"threads": None}  # torch CPU threads: the preset's, on the CPU only
    quick = ({"max_steps": 2, "eval_every": 1}, {"limit": 3}) if smoke else ({}, {})
    train = with_options(run.train_cmd, "--out", folder / "method", dtype=dtype, device=device, **off_cpu,
                         **quick[0])
    decode = with_options(t["decode_cmd"], "--out", folder / "test.hyp.txt", dtype=dtype, device=device,
                          method_dir=folder / "method", **quick[1])
    return train, decode


def run(args):
    for r in selected_runs(args.preset, args.size, args.sample, args.methods):
        for dtype in args.dtypes:
            folder = args.out / r.method / dtype
            if (folder / "times.json").exists():
                print(f"{r.method} {dtype}: done before", flush=True)
                continue
            folder.mkdir(parents=True, exist_ok=True)
            times = {"run": r.id, "dtype": dtype, "device": args.device}
            for step, argv in zip(("train", "decode"), commands(r, dtype, args.device, folder, args.smoke)):
                print("$ " + shlex.join(argv), flush=True)
                start = time.perf_counter()
                subprocess.run(argv, check=True, cwd=ROOT)
                times[f"{step}_s"] = round(time.perf_counter() - start, 1)
            if r.base_method.startswith("finetune") and not args.keep_weights:  # a whole model (as .gitignore's rule)
                for name in ("weights.safetensors", "alt.safetensors"):  # alt: the second selection rule's
                    (folder / "method" / name).unlink(missing_ok=True)
            import torch

            times["torch"] = torch.__version__
            with atomic_open(folder / "times.json") as f:
                json.dump(times, f, indent=1)


def grid_float32(r):
    """The grid's own finished run as the float32 arm on the CPU (`run`'s float32 commands on the CPU are the
    grid's but for the output folder): its method.json, scores and stage seconds, or None if not finished."""
    if not finished(r, ROOT / r.dir):
        return None
    (d,) = [d for d in decoded(r, ROOT / r.dir) if d["selection"] == "primary"]
    return (read_json(ROOT / r.method_dir / "method.json"), d["scores"],
            {"device": "cpu (the grid's run)", "train_s": d["train_s"], "decode_s": d["decode_s"]})


def report(args):
    rows = []
    for r in selected_runs(args.preset, args.size, args.sample):
        for dtype in DTYPES:
            folder = args.results / r.method / dtype
            if (folder / "times.json").exists():
                t = first_test(r)
                scores = folder / "test.scores.json"
                argv = with_options(t["score_cmd"], "--out", scores, hyp=folder / "test.hyp.txt")
                subprocess.run(argv, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
                arm = (json.loads((folder / "method" / "method.json").read_text()), json.loads(scores.read_text()),
                       json.loads((folder / "times.json").read_text()))
            elif dtype == "float32" and args.float32_from_grid:
                arm = grid_float32(r)
            else:
                arm = None
            if arm is None:
                continue
            method, score, times = arm
            rows.append({"run": r.id, "method": r.method, "dtype": dtype, "device": times["device"],
                         "best_step": method.get("best_step"), "best_dev_loss": method.get("best_dev_loss"),
                         **{k: v for k, v in score.items() if not isinstance(v, dict)},
                         "train_s": times["train_s"], "decode_s": times["decode_s"]})
    if not rows:
        raise InputError(f"{args.results}: no finished run (times.json) of `dtype_check.py run`")
    if args.csv:
        args.csv.parent.mkdir(parents=True, exist_ok=True)
        with atomic_open(args.csv) as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
            w.writeheader()
            w.writerows(rows)
    print(json.dumps(rows, indent=1))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("run", "report"):
        s = sub.add_parser(name)
        s.add_argument("--preset", default="cpu")
        s.add_argument("--size", type=int, default=100)
        s.add_argument("--sample", type=int, default=0)
    s = sub.choices["run"]
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--device", default="cuda")
    s.add_argument("--dtypes", nargs="+", choices=DTYPES, default=list(DTYPES))
    s.add_argument("--methods", nargs="+", default=None, help="method labels (default: every one of the cell)")
    s.add_argument("--keep-weights", action="store_true")
    s.add_argument("--smoke", action="store_true", help="2 training steps, 3 test inputs: tries the path only")
    s = sub.choices["report"]
    s.add_argument("results", type=Path, help="the --out folder of `run`")
    s.add_argument("--csv", type=Path, default=None)
    s.add_argument("--float32-from-grid", action="store_true",
                   help="where OUT has no float32 arm, take the grid's finished run (on the CPU its commands are "
                        "`run`'s float32 ones but for the output folder)")
    args = p.parse_args()
    try:
        run(args) if args.cmd == "run" else report(args)
    except InputError as e:
        print(f"dtype_check: {e}", file=sys.stderr)
        sys.exit(2)
    except subprocess.CalledProcessError as e:
        sys.exit(f"dtype_check: `{shlex.join(map(str, e.cmd))}` failed (exit {e.returncode})")


if __name__ == "__main__":
    main()
