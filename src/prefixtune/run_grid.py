"""Run a preset's grid through DVC one run at a time, so that it can stop at any point and be continued, on
this machine or on a fresh clone, without redoing a finished run.

    PREFIXTUNE_DATA_MIRROR=../shared/data .venv/bin/python scripts/run-grid [--preset cpu] [--stop-after MIN]

A run is finished when every <test>.scores.json it decodes exists (for the default preset they are committed with the rest of
what the tables need: see .gitignore) and `dvc status` finds none of its stages changed since dvc.lock (a run
whose code, data or settings changed since it ran is run again: results follow the code). The order follows
params.yaml's experiments (the low-data grid, then the init runs it does not share), and within one pairs runs
early: subsample s0 of every size and method first, then s1, ... so that a stopped grid leaves complete
comparisons. Each unfinished run is
`dvc repro -s` of its train, decode and score stages (the data stages first, as DVC would); a finished run is
never handed to DVC, since a fresh clone lacks its fine-tuned weights, which DVC would take for a change.
When every run is finished, the aggregate, plot and reproduce stages run. --stop-after: start no new run after that
many minutes (a session that must end on time stops between runs). --experiment: run only that experiment's
runs (e.g. `init`, whose "table-to-text:" runs are the low-data grid's n = 100 runs), to finish one comparison
first; the others are still counted, and the report stages wait for all of them. --each CMD: a shell command
after each finished run (RUN_ID set), e.g. one that commits it, so that one call can run a whole session's runs.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from tqdm import tqdm

from . import params as P
from .params.dvc import pipeline_file, stage_name

BIN = Path(sys.executable).parent  # the environment this script runs in: its dvc and prefixtune come first
ENV = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}


def dvc_repro(root, file, *stages, single=True):
    cmd = ["dvc", "repro", *(["-s"] if single else []), *(f"{file}:{s}" for s in stages)]
    tqdm.write("$ " + " ".join(cmd))
    if not shutil.which("dvc", path=ENV["PATH"]):
        sys.exit(f"run-grid: no `dvc` in {BIN} or on PATH; install the project as the README says")
    done = subprocess.run(cmd, cwd=root, env=ENV)
    if done.returncode:
        sys.exit(f"run-grid: `{' '.join(cmd)}` failed (exit {done.returncode}); fix it and run again to continue")


def each(root, cmd, run):
    """--each: `cmd` in a shell in `root`, with RUN_ID set to the run that has just finished."""
    tqdm.write(f"$ RUN_ID={run.id} {cmd}")
    done = subprocess.run(cmd, shell=True, cwd=root, env={**ENV, "RUN_ID": run.id}, check=False)
    if done.returncode:
        sys.exit(f"run-grid: --each `{cmd}` failed (exit {done.returncode}) after run {run.id}; the run is "
                 "finished, run again to continue")


def stages_of(run) -> list:
    stages = [stage_name("train", run.id)]
    for test in run.tests:
        stages += [stage_name("decode", f"{run.id}/{test}"), stage_name("score", f"{run.id}/{test}")]
    return stages


def stale(root, file, runs) -> set:
    """Ids of `runs` with a stage whose command, code, data or params changed since dvc.lock (`dvc status`).
    Missing outputs do not count: a fresh clone lacks the fine-tuned weights (not committed), and the scores
    that the tables read are there."""
    names = {s: r for r in runs for s in stages_of(r)}
    if not names:
        return set()
    # the whole pipeline file, not one target per stage: DVC re-reads dvc.lock for every target it is given,
    # which made this call take minutes (quadratic in the runs); once for the file takes seconds
    done = subprocess.run(["dvc", "status", "--json", str(file)], cwd=root, env=ENV, capture_output=True,
                          text=True)
    if done.returncode:
        sys.exit(f"run-grid: `dvc status` failed: {' '.join(done.stderr.split())[:300]}")
    status = json.loads(done.stdout or "{}")
    # keys are stage names for ./dvc.yaml, "pipelines/<preset>/dvc.yaml:<name>" for the others
    out = set()
    for stage, changes in status.items():
        run = names.get(stage.rpartition(":")[2])
        if run is not None and any(_changed(c, run.dir) for c in changes):
            out.add(run.id)
    return out


def _changed(entry, own: str) -> bool:
    """One `dvc status` entry of a run's stage: a changed command, or a modified or new dependency or
    parameter. Not counted: the stage's outputs, the run's own files as dependencies (under `own`: the
    method directory decode reads is the train stage's output, judged there), and a dependency that is only
    missing (data not yet made on a fresh clone; the download stages pin it by checksum)."""
    if isinstance(entry, str):  # "changed command", "always changed"
        return True
    deps = entry.get("changed deps", {})
    return bool(set(entry) - {"changed deps", "changed outs"}) or any(
        isinstance(v, dict) or (v != "deleted" and not path.startswith(own + "/"))  # a dict: params of a file
        for path, v in deps.items())


def unfinished(root, file, runs) -> list:
    """Runs without scores, or whose results are stale (the code or settings changed since they ran)."""
    scored = [r for r in runs if all((root / t["scores"]).is_file() for t in r.tests.values())]
    old = stale(root, file, scored)
    return [r for r in runs if r not in scored or r.id in old]


def main(root: Path):
    """Run the grid of the repository at `root` (scripts/run-grid passes its own checkout)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default=None, help="default: params.yaml's preset")
    p.add_argument("--stop-after", type=float, default=None, metavar="MIN",
                   help="start no new run after this many minutes")
    p.add_argument("--max-runs", type=int, default=None, metavar="N", help="run at most N runs this time")
    p.add_argument("--experiment", default=None, metavar="NAME",
                   help="run only the runs of this experiment of the preset (params.yaml `experiments`)")
    p.add_argument("--each", default=None, metavar="CMD",
                   help="a shell command run in the repository after each finished run, with RUN_ID set (e.g. "
                        "one that commits the run); its failure stops the grid")
    args = p.parse_args()
    doc = P.load_doc(root / "params.yaml")
    default = doc.get("preset", "cpu")
    grid = P.build(root / "params.yaml", {"preset": args.preset} if args.preset else None)
    file = pipeline_file(grid.preset, default)
    if not (root / file).is_file():
        P.render(root / "params.yaml", [grid.preset])
    order = {m: i for i, m in enumerate(dict.fromkeys(r.method for r in grid.runs.values()))}
    exps = {e: i for i, e in enumerate(grid.settings["experiments"])}  # params.yaml's order: lowdata, then init

    def pairs_early(r):  # subsample s0 of every size and method first, then s1, ...
        return r.sample, r.seed, str(r.size).zfill(8), order[r.method], r.id

    runs = sorted(grid.runs.values(), key=lambda r: (exps[r.experiments[0]], pairs_early(r)))
    if args.experiment is not None and args.experiment not in exps:
        p.exit(2, f"run-grid: error: --experiment {args.experiment}: preset {grid.preset} has no such experiment "
                  f"(it has {', '.join(exps)})\n")
    todo = stale_runs = unfinished(root, file, runs)
    print(f"{grid.preset}: {len(runs) - len(todo)} of {len(runs)} runs finished and current, {len(todo)} to run")
    if args.experiment is not None:
        todo = sorted((r for r in todo if args.experiment in r.experiments), key=pairs_early)
        print(f"{grid.preset}: --experiment {args.experiment}: {len(todo)} of them")
    start = time.monotonic()
    if todo:  # the shared stages, with their upstream (download, linearize, test slices)
        dvc_repro(root, file, "grid", *(stage_name("linearize", s) for s in grid.linearize),
                  *(stage_name("testset", s) for s in grid.testsets), single=False)
    done = []
    for i, r in enumerate(tqdm(todo, desc=f"runs of {grid.preset}", unit="run")):
        if args.stop_after is not None and time.monotonic() - start > 60 * args.stop_after:
            tqdm.write(f"run-grid: stopped after {args.stop_after:g} minutes; run again to continue")
            break
        if args.max_runs is not None and i >= args.max_runs:
            break
        dvc_repro(root, file, *stages_of(r))
        done.append(r)
        if args.each:
            each(root, args.each, r)
    left = [r for r in stale_runs if r not in done]  # a run DVC has just run is current: no second `dvc status`
    if left:
        print(f"{grid.preset}: {len(runs) - len(left)} of {len(runs)} runs finished; run again to continue")
        return
    dvc_repro(root, file, "aggregate", "plot", "reproduce")
    print(f"{grid.preset}: all {len(runs)} runs finished; tables, figures and the reproduction report in {grid.results}")
