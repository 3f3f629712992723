"""params.yaml -> the run grid: the one definition of every experiment, for Snakemake and DVC alike.

params.yaml has three top-level keys:
  preset    the default preset: the one `dvc repro` (dvc.yaml) and a bare `snakemake` run
  defaults  settings shared by every preset
  presets   name -> overrides, deep-merged over `defaults` (mappings merge key by key; lists and scalars replace)

schema.py checks it against workflow/schemas/params.schema.yaml (names, types, ranges; errors name the
line); grid.py expands one preset into its runs, their files and their command lines (commands.py);
stages.py lists every job of the DAG (command, inputs, outputs, log): the one table that dvc.py renders
into the DVC pipelines and that the Snakefile's rules read (`build`, then `stage_table`).

Commands (`prefixtune params ...`):
  show [--preset P] [--json]  the effective settings and the runs (--json: one object per run)
  render [PRESET ...]         write dvc.yaml and runs.yaml (the default preset), pipelines/downloads/dvc.yaml,
                              and pipelines/PRESET/{dvc,runs}.yaml (named now or rendered before)
  use PRESET                  set `preset:` in params.yaml (keeping its comments), then render
  check [--out FILE]          fail unless the rendered files are up to date; write FILE if given
"""

import json
import re
from pathlib import Path

import yaml

from ..code_deps import code_deps  # noqa: F401 (the Snakefile's rules read it as P.code_deps)
from ..errors import InputError
from .dvc import check, render, stage_name  # noqa: F401
from .grid import PREFIX_METHODS, TABLES, Grid, Run, expand, expected_plots, parse_run_id, run_id, run_record, varying  # noqa: F401
from .schema import PARAMS, load, load_doc, merge, resolve, resources  # noqa: F401
from .stages import Stage, table as stage_table  # noqa: F401 (the Snakefile's rules read the stage table)


def build(path=PARAMS, overlay=None) -> Grid:
    """params.yaml (+ overlay, e.g. Snakemake's --config) -> the chosen preset's Grid."""
    return expand(load(path, overlay), where=Path(path))


def set_preset(name, path=PARAMS):
    """Rewrite the `preset:` line of params.yaml, keeping everything else (comments included)."""
    from ..files import atomic_open

    path = Path(path)
    text = path.read_text(encoding="utf-8")
    new, n = re.subn(r"(?m)^preset:[ \t]*[^#\n]*?([ \t]*(#.*)?)$", lambda m: f"preset: {name}{m.group(1)}", text,
                     count=1)
    if n != 1:
        raise InputError(f"{path}: no top-level 'preset:' line to change")
    resolve(yaml.safe_load(new), where=path)  # unknown preset -> error before writing
    with atomic_open(path) as f:
        f.write(new)


def add_arguments(p):
    p.add_argument("--params", default=str(PARAMS), help="params file (default params.yaml)")
    sub = p.add_subparsers(dest="action", required=True)
    s = sub.add_parser("show", help="print the effective settings and the runs")
    s.add_argument("--preset", default=None)
    s.add_argument("--json", action="store_true", help="one JSON object per run: its resolved settings")
    r = sub.add_parser("render", help="write the DVC pipeline files (the default preset's, and PRESET's)")
    r.add_argument("presets", nargs="*", metavar="PRESET", help="also render pipelines/PRESET/dvc.yaml")
    u = sub.add_parser("use", help="set params.yaml's default preset and render")
    u.add_argument("preset")
    c = sub.add_parser("check", help="fail unless the DVC pipeline files are up to date with params.yaml")
    c.add_argument("--out", default=None, help="file to write when the check passes")


def run(args):
    if args.action == "show":
        g = build(args.params, {"preset": args.preset} if args.preset else None)
        if args.json:
            print(json.dumps([run_record(r) for r in g.runs.values()], indent=1))
            return
        print(yaml.safe_dump(dict(g.settings), sort_keys=False), end="")
        print(f"# {len(g.runs)} runs, {len(g.scores())} scored test sets, plots: {', '.join(g.plots) or 'none'}")
        for rid, r in g.runs.items():
            print(f"{rid}  [{', '.join(r.experiments)}]")
    elif args.action in ("render", "use"):
        if args.action == "use":
            set_preset(args.preset, args.params)
        written = render(args.params, getattr(args, "presets", ()))
        print(f"preset: {load_doc(args.params).get('preset')}; wrote {', '.join(written)}")
    elif args.action == "check":
        check(args.params)
        if args.out:
            from ..files import atomic_open

            with atomic_open(args.out) as f:
                f.write("ok\n")
