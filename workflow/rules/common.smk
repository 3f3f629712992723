# The grid of params.yaml's preset (+ --config/--configfile) and the helpers the rules use.
import posixpath
import re
import shlex
import sys
from pathlib import Path

from snakemake.utils import validate

from prefixtune import params as P

# --config / --configfile: a partial params.yaml deep-merged over it; checked against the same schema
# (errors there are the command line's), then the whole grid (errors name params.yaml and the line).
validate(config, "../schemas/params.schema.yaml")
GRID = P.build("params.yaml", overlay=config)
PRESET = GRID.preset
RUNS = GRID.runs
RESULTS = GRID.results
LOGS = f"logs/{PRESET}"

# Every job's command, inputs, outputs and log: the stage table that dvc.yaml is rendered from too
# (prefixtune.params.stages). A rule takes its command and inputs from it (and its outputs, where it has no
# wildcards); its output patterns are checked against it by tests/test_pipeline.py.
STAGES = {(s.kind, s.key): s for s in P.stage_table(GRID, overlay=config)}
METHOD_DIRS = {r.method_dir for r in RUNS.values()}

# Shell commands call `prefixtune` from the environment that runs Snakemake.
shell.prefix(f"set -euo pipefail; PATH={shlex.quote(str(Path(sys.executable).parent))}:$PATH; ")


def choice(names):
    """A wildcard constraint that matches exactly these names."""
    return "|".join(map(re.escape, sorted(names))) or "(?!)"


def threads(rule):
    return P.resources(GRID.settings, rule).get("cpus", 1)


def resources(rule):
    """params.yaml resources.<rule> as Snakemake resources (cpus become threads; gpus -> gpu)."""
    res = P.resources(GRID.settings, rule)
    out = {k: v for k, v in res.items() if k not in ("cpus", "gpus")}
    if res.get("gpus"):
        out["gpu"] = res["gpus"]
    return out


def stage(kind, key=""):
    return STAGES[kind, key]


def part(kind, key, flag=None):
    """A piece of a stage's command, as a rule's shell spells it out: the value after `flag`, or (no flag)
    the settings after the stage's files (after `--out VALUE`), quoted as the stage table's command has them,
    so that the rule's shell command is the table's, word for word (tests/test_pipeline.py checks it)."""
    argv = shlex.split(stage(kind, key).cmd)
    if flag is None:
        rest = shlex.join(argv[argv.index("--out") + 2:])
        return f" {rest}" if rest else ""
    return shlex.quote(argv[argv.index(flag) + 1])


def inputs(s):
    """A stage's inputs as Snakemake tracks them: a file inside a run's method folder is the folder (a
    directory output is tracked whole), once."""
    out = []
    for d in s.deps:
        d = posixpath.dirname(d) if posixpath.dirname(d) in METHOD_DIRS else d
        if d not in out:
            out.append(d)
    return out


CAPTIONS = {"runs": ("runs", "Tables"), "settings": ("settings", "Settings"), "curves": None}


def reported(path):
    """A table with its report caption (the tables and the settings), or the bare path."""
    name = Path(path).stem
    if path.endswith(".json") or CAPTIONS.get(name, ("table", "Tables")) is None:
        return path
    caption, category = CAPTIONS.get(name, ("table", "Tables"))
    return report(path, caption=f"../report/{caption}.rst", category=category, labels={"table": name})
