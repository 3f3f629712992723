"""The prefixtune DAG for Snakemake (DVC runs the same grid from dvc.yaml; see README).

    download -> linearize -> [testset] -> train -> decode -> score -> aggregate -> plot

Every rule is a thin call of `prefixtune <stage>` whose command line comes from the run grid that
prefixtune.params expands from params.yaml, so both engines run exactly the same commands.

    snakemake --cores 2                              # params.yaml's preset (cpu)
    snakemake --cores 2 --config preset=paper        # another preset
    snakemake --cores 2 --configfile wider.yaml      # deep-merged over params.yaml, e.g.
                                                     #   presets: {cpu: {data: {test_limit: 200}}}
    snakemake --profile workflow/profiles/local      # the same, with the local profile's options

A rule re-runs when its inputs are newer or its command (params) changed, so changing one setting
re-runs only the runs it reaches, and the tables and plots.
"""

import os
import re
import sys
from pathlib import Path

from prefixtune import params as P

GRID = P.build("params.yaml", overlay=config)  # InputError names params.yaml and the bad key
SETTINGS = GRID.settings
RUNS = GRID.runs
TESTS = {f"{rid}/{test}": t for rid, r in RUNS.items() for test, t in r.tests.items()}

# Shell commands call `prefixtune` from the environment that runs Snakemake.
os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")


def choice(names):
    """A wildcard constraint that matches exactly these names."""
    return "|".join(map(re.escape, sorted(names))) or "(?!)"


def threads(rule):
    return P.resources(SETTINGS, rule).get("cpus", 1)


def resources(rule):
    """params.yaml resources.<rule> as Snakemake resources (cpus become threads; gpus -> gpu)."""
    res = P.resources(SETTINGS, rule)
    out = {k: v for k, v in res.items() if k not in ("cpus", "gpus")}
    if res.get("gpus"):
        out["gpu"] = res["gpus"]
    return out


# Quick jobs that stay on the submitting host under a cluster executor (download may need the internet).
localrules:
    all,
    download,
    aggregate,
    plot,


wildcard_constraints:
    source=choice(GRID.linearize),
    slug=choice(GRID.testsets),
    run=choice(RUNS),
    test=r"[A-Za-z0-9_]+",


rule all:
    default_target: True
    input:
        GRID.scores(),
        expand("results/tables/{table}.csv", table=P.TABLES),
        expand("results/metrics/{table}.json", table=P.TABLES),
        GRID.plots,


include: "workflow/rules/download.smk"
include: "workflow/rules/linearize.smk"
include: "workflow/rules/testset.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/decode.smk"
include: "workflow/rules/score.smk"
include: "workflow/rules/aggregate.smk"
include: "workflow/rules/plot.smk"
