# The grid of params.yaml's preset (+ --config/--configfile) and the helpers the rules use.
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
TESTS = {f"{rid}/{test}": t for rid, r in RUNS.items() for test, t in r.tests.items()}
RESULTS = GRID.results
LOGS = f"logs/{PRESET}"

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


def test_data(wc, key):
    """A test set's inputs or references: a slice file (testset rule) or a linearize output."""
    return TESTS[f"{wc.run}/{wc.test}"][key]
