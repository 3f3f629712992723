"""`prefixtune <stage> ...`: one thin command per pipeline stage.

Each stage lives in its own module, which exposes `add_arguments(parser)` and `run(args)`.
An InputError becomes one line on stderr and exit status 2.
"""

import argparse
import importlib
import sys

from .errors import InputError

STAGES = {
    "download": ("prefixtune.data.download", "fetch a dataset's official release (or a local mirror)"),
    "linearize": ("prefixtune.data.linearize", "turn a raw release into source/target JSONL and splits"),
    "train": ("prefixtune.train", "train one method on one JSONL file"),
    "decode": ("prefixtune.decode", "generate outputs with a trained method (beam search)"),
    "score": ("prefixtune.score", "score hypotheses against references with the official metrics"),
    "aggregate": ("prefixtune.aggregate", "collect scores into results tables (CSV)"),
    "plot": ("prefixtune.plot", "draw the results figures (PNG)"),
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
    try:
        modules[args.stage].run(args)
    except InputError as e:
        print(f"prefixtune: error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
