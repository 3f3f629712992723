"""The stage table: every job of one preset's DAG, described once, for DVC and Snakemake alike.

A Stage is one job: the `prefixtune` stage it runs (`kind`), which source, test slice, run or run/test it
is for (`key`), its command, the files it reads (`deps`; the project code it runs is `code`), the files or
folders it writes (`outs`) and its log. dvc.py renders the table into dvc.yaml; the Snakemake rules read
their inputs, commands and logs from it, and their outputs where no wildcard is needed
(workflow/rules/common.smk: `stage`); tests/test_pipeline.py checks that both engines' DAGs are this table.

What only one engine needs stays in that engine's wiring:
- DVC: the first stage (`grid`) fails when the rendered files are stale, and linearize waits for it; each
  run's train and decode stages name their settings in runs.yaml (`params:`, for `dvc exp show`); the
  scores and the tables' headline metrics are `metrics:`; nothing of a run goes to DVC's cache; DVC prints
  each command's output itself (the logs are Snakemake's).
- Snakemake: a stage that reads a file inside a run's method folder depends on the folder (Snakemake tracks
  a directory output whole); the tables and figures carry `report:` captions.
"""

import json
import re
import shlex
from dataclasses import dataclass

from ..code_deps import code_deps
from .grid import TABLES, Grid

KINDS = ("download", "linearize", "testset", "train", "decode", "score", "aggregate", "plot", "reproduce")


def stage_name(kind, key):
    return f"{kind}_" + re.sub(r"[^A-Za-z0-9_\-]", "_", key.replace("/", "_"))


@dataclass(frozen=True)
class Stage:
    kind: str  # one of KINDS: the `prefixtune` command it runs
    key: str  # source, test slice, run id or "<run id>/<test>"; "" for aggregate and plot
    cmd: str
    deps: tuple  # the files (or folders) it reads
    outs: tuple  # the files (or folders) it writes
    log: str
    code: tuple = ()  # the project files it runs (code.code_deps): editing one re-runs it

    @property
    def name(self) -> str:
        """Its DVC stage name: e.g. train_e2e_prefix_n50-s0-seed0; aggregate, plot."""
        return stage_name(self.kind, self.key) if self.key else self.kind


def aggregate_cmd(grid: Grid, overlay: dict | None = None) -> str:
    """`overlay`: Snakemake's --config, handed on so that aggregate expands the same grid."""
    p, res = grid.preset, grid.results
    return (f"prefixtune aggregate --params params.yaml --preset {p} --runs runs/{p} --tables {res}/tables "
            f"--metrics {res}/metrics" + (f" --overlay {shlex.quote(json.dumps(overlay, sort_keys=True))}"
                                           if overlay else ""))


def tables(grid: Grid) -> tuple:
    """What aggregate writes: a CSV per table, every run, every run's settings, the low-data training curves."""
    return tuple(f"{grid.results}/tables/{t}.csv" for t in (*TABLES, "runs", "settings", "curves"))


def metrics(grid: Grid) -> tuple:
    """The headline metric of each table's rows (DVC metrics)."""
    return tuple(f"{grid.results}/metrics/{t}.json" for t in TABLES)


def figures(grid: Grid) -> tuple:
    """What plot writes: the figures, and each low-data figure's curves as CSV."""
    curves = [p[: -len(".png")] + ".csv" for p in grid.plots if p.rsplit("/", 1)[-1].startswith("lowdata_")]
    return (*grid.plots, *curves)


PAPER_DOCS = ("docs/paper_results.yaml", "docs/claims.yaml", "docs/paper_settings.yaml")  # what reproduce compares


def reproduce_cmd(grid: Grid, overlay: dict | None = None) -> str:
    return (f"prefixtune reproduce --params params.yaml --preset {grid.preset} --runs runs/{grid.preset} "
            f"--out {grid.results}/reproduction.md" + (f" --overlay {shlex.quote(json.dumps(overlay, sort_keys=True))}"
                                                       if overlay else ""))


def reproduction(grid: Grid) -> tuple:
    """What reproduce writes: the report, the paper's numbers beside ours, the claims' verdicts."""
    return tuple(f"{grid.results}/{f}" for f in ("reproduction.md", "reproduction.csv", "claims.csv"))


def table(grid: Grid, overlay: dict | None = None) -> list[Stage]:
    """Every stage of the preset, upstream first."""
    logs = f"logs/{grid.preset}"
    code = {kind: tuple(code_deps(kind)) for kind in KINDS}
    out = [Stage("download", s, cmd, (), (f"data/raw/{s}",), f"logs/download/{s}.log", code["download"])
           for s, cmd in grid.downloads.items()]
    out += [Stage("linearize", s, cmd, tuple(grid.linearize_deps[s]), tuple(grid.data_files(s)),
                  f"{logs}/linearize/{s}.log", code["linearize"]) for s, cmd in grid.linearize.items()]
    out += [Stage("testset", slug, t["cmd"], (t["src_input"], t["src_refs"]), (t["input"], t["refs"]),
                  f"{logs}/testset/{slug}.log", code["testset"]) for slug, t in grid.testsets.items()]
    for rid, r in grid.runs.items():
        out.append(Stage("train", rid, r.train_cmd, (r.train_file, *([r.dev_file] if r.dev_file else [])),
                         (r.method_dir,), f"{logs}/train/{rid}.log", code["train"]))
        for test, t in r.tests.items():
            key = f"{rid}/{test}"
            first = (r.tests[t["test"]]["hyp"],) if t["selection"] == "alt" else ()  # copied when the same step
            out.append(Stage("decode", key, t["decode_cmd"], (r.method_dir, t["input"], *first), (t["hyp"],),
                             f"{logs}/decode/{key}.log", code["decode"]))
            out.append(Stage("score", key, t["score_cmd"], (t["hyp"], t["refs"]), (t["scores"],),
                             f"{logs}/score/{key}.log", code["score"]))
    runs = grid.runs.values()
    reads = [*grid.scores(), *(f"{r.method_dir}/method.json" for r in runs),  # the trainable fraction
             *(f"{r.method_dir}/log.jsonl" for r in runs if "lowdata" in r.tables)]  # curves.csv
    out.append(Stage("aggregate", "", aggregate_cmd(grid, overlay), ("params.yaml", *reads),
                     (*tables(grid), *metrics(grid)), f"{logs}/aggregate.log", code["aggregate"]))
    drawn = tuple(f for f in tables(grid) if not f.endswith(("/runs.csv", "/settings.csv")))  # what plot reads
    out.append(Stage("plot", "", f"prefixtune plot --tables {grid.results}/tables --out {grid.results}/plots",
                     drawn, figures(grid), f"{logs}/plot.log", code["plot"]))
    out.append(Stage("reproduce", "", reproduce_cmd(grid, overlay),
                     ("params.yaml", *PAPER_DOCS, *grid.scores(), *(f"{r.method_dir}/method.json" for r in runs)),
                     reproduction(grid), f"{logs}/reproduce.log", code["reproduce"]))
    return out
