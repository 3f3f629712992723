"""`prefixtune <stage> ...`: one thin command per pipeline stage.

Each stage lives in its own module, which exposes `add_arguments(parser)` and `run(args)`.
An InputError becomes one line on stderr and exit status 2.

Provenance: a stage with an `--out` writes `<out>.run.json` beside it when it succeeds: the command, its
wall-clock seconds and the CPU seconds it used (their ratio shows whether other work shared the cores), the
git commit of the code, the host, its CPU (model name, AVX2 / AVX-512 / BF16 flags, cores) and the versions of
Python, torch and transformers (machine.py). It is not one of the stage's outputs (no DVC
or Snakemake output names it), so the outputs themselves stay byte-identical from one run to the next and
re-running unchanged work leaves dvc.lock unchanged; scripts/run-times collects the times.
"""

import argparse
import importlib
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

from .errors import InputError

STAGES = {
    "download": ("prefixtune.data.download", "fetch a dataset's official release (or a local mirror)"),
    "linearize": ("prefixtune.data.linearize", "turn a raw release into source/target JSONL and splits"),
    "testset": ("prefixtune.testset", "cut the test slice a run decodes: a seeded random sample, the first N"),
    "train": ("prefixtune.train", "train one method on one JSONL file"),
    "decode": ("prefixtune.decode", "generate outputs with a trained method (beam search)"),
    "score": ("prefixtune.score", "score hypotheses against references with the official metrics"),
    "aggregate": ("prefixtune.aggregate", "collect scores into results tables (CSV)"),
    "plot": ("prefixtune.plot", "draw the results figures (PNG)"),
    "reproduce": ("prefixtune.reproduce", "write the reproduction report: the paper's numbers and claims beside ours"),
    "params": ("prefixtune.params", "check params.yaml, show the run grid, render dvc.yaml"),
    "export": ("prefixtune.export", "write a trained prefix as a PEFT prefix-tuning checkpoint"),
    "import": ("prefixtune.import_", "read a PEFT prefix-tuning checkpoint as a method directory"),
}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="prefixtune", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="stage", required=True, metavar="STAGE")
    modules = {}
    wanted = (argv if argv is not None else sys.argv[1:])[:1]
    for name, (module_name, help_text) in STAGES.items():
        p = sub.add_parser(name, help=help_text)
        # Import only the stage being run (and all of them for --help): heavy imports stay lazy.
        if not wanted or wanted[0] in (name, "-h", "--help"):
            modules[name] = importlib.import_module(module_name)
            modules[name].add_arguments(p)
    args = parser.parse_args(argv)
    recorded = bool(getattr(args, "out", None)) and args.stage != "params"  # stages with an output to record
    t0, commit = time.perf_counter(), git_commit() if recorded else None  # the code when the stage started
    try:
        modules[args.stage].run(args)
        if recorded:
            record_run(Path(args.out), args.stage, argv, time.perf_counter() - t0, commit)
    except InputError as e:
        print(f"prefixtune: error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)


def git_commit() -> str | None:
    """The commit of this package's checkout (with "+dirty" when its files differ from it), or None."""
    root = Path(__file__).resolve().parents[2]
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "src"], cwd=root,
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if rev.returncode:
        return None
    return rev.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def record_run(out: Path, stage: str, argv, seconds: float, commit: str | None):
    from . import machine
    from .files import write_json

    usage = resource.getrusage(resource.RUSAGE_SELF)  # CPU time: below seconds x threads when others shared it
    write_json(out.with_name(out.name + ".run.json"),
               {"stage": stage, "argv": ["prefixtune", *(argv if argv is not None else sys.argv[1:])],
                "seconds": round(seconds, 3), "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 3),
                "git_commit": commit, "host": platform.node(), **machine.describe(),
                "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})


if __name__ == "__main__":
    main()
