"""`prefixtune aggregate`: every run's scores -> results tables (CSV) and DVC metrics files.

    prefixtune aggregate --params params.yaml [--overlay JSON] --preset cpu --runs runs/cpu
                         --tables results/cpu/tables --metrics results/cpu/metrics

It expands the same grid as the pipeline (prefixtune.params; --overlay is Snakemake's --config) and
reads, for every run and test set, `runs/<preset>/<id>/<test>.scores.json` (what `prefixtune score --out`
writes) and `runs/<preset>/<id>/method/method.json` (trainable_fraction). A missing or unreadable
file is an InputError naming it.

Each experiment's runs go to its table: results/tables/{main,lowdata,extrapolation,ablations}.csv
(all four are always written; a table with no runs has only its header), every run's resolved settings to
settings.csv (as `prefixtune params show --json`), every low-data run's train and dev loss per step to
curves.csv, and every scored run, unaveraged, to runs.csv (paired comparisons need the runs, not only the
means). One row per
(experiment, dataset, method, size, prefix_len, init, test) with `n` (runs averaged: samples x
seeds), then every metric the scorer printed as the mean over those runs and `<metric>_std` (sample
standard deviation; empty when n = 1), then trainable_fraction (mean). No wall-clock times: the same
scores give byte-identical tables (times: scripts/run-times).
results/metrics/<table>.json (one file per table, all four always written) holds the mean of each row's
headline metric (BLEU; ROUGE-1/2/L for XSum), row label -> metric, so that `dvc metrics show` prints one
readable row per table; the CSVs hold every metric.
"""

import json
import math
from pathlib import Path

import pandas as pd

from . import params as P
from .errors import InputError
from .files import atomic_open, write_json
from .registry import describe
from .run_folder import decoded, read_json

KEYS = ["experiment", "dataset", "model", "method", "size", "prefix_len", "init", "test", "selection"]
RUN_KEYS = ["sample", "seed", "run", "kept_step"]  # what tells the runs of one cell apart (runs.csv only)
EXTRA = ["trainable_fraction"]  # wall-clock times are not results: they live in <output>.run.json (cli.py)


def add_arguments(p):
    p.add_argument("--params", default="params.yaml", help="params file (default params.yaml)")
    p.add_argument("--overlay", default=None, help="JSON deep-merged over params.yaml (Snakemake --config)")
    p.add_argument("--preset", default=None, help="the preset whose runs these are (default: params.yaml's)")
    p.add_argument("--runs", default="runs", help="folder holding <run id>/ of this preset (runs/<preset>)")
    p.add_argument("--tables", default="results/cpu/tables", help="output folder for the CSV tables")
    p.add_argument("--metrics", default="results/cpu/metrics", help="folder for the DVC metrics files (one per table)")


def _flat(obj, prefix=""):
    """Numeric leaves of a (possibly nested) scores object; None becomes NaN (a metric with no data)."""
    out = {}
    for k, v in obj.items():
        name = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flat(v, name + "/"))
        elif v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)):
            out[name] = math.nan if v is None else float(v)
    return out


def collect(grid, runs_dir="runs"):
    """table name -> (DataFrame with one row per (experiment, run, test set), its metric names in order)."""
    rows = {t: [] for t in P.TABLES}
    metric_order = {t: [] for t in P.TABLES}  # the metrics the scorer printed for this table's runs
    for run in grid.runs.values():
        for d in decoded(run, Path(runs_dir) / run.id):
            scores = _flat(d["scores"])
            for exp in run.experiments:
                table = grid.settings["experiments"][exp]["table"]
                metric_order[table] += [m for m in scores if m not in metric_order[table]]
                rows[table].append({
                    "experiment": exp, "dataset": run.dataset, "model": describe(run.settings["model"]),
                    "method": run.method, "size": run.size, "prefix_len": run.prefix_len, "init": run.init,
                    "test": d["test"], "selection": d["selection"], "sample": run.sample, "seed": run.seed,
                    "run": run.id, "kept_step": d["kept_step"], **scores,
                    "trainable_fraction": d["trainable_fraction"],
                })
    return {t: (pd.DataFrame(r, columns=KEYS + RUN_KEYS + metric_order[t] + EXTRA), metric_order[t])
            for t, r in rows.items()}


CURVE_KEYS = ["run", "dataset", "method", "size", "sample", "seed", "step", "loss", "token_loss", "dev_loss",
              "best_step", "alt_best_step"]


def training_curves(grid, runs_dir) -> pd.DataFrame:
    """Every low-data run's training log (method/log.jsonl: train loss per optimizer step, as the objective and
    per target token, dev loss per target token where it was evaluated) with its best step (method.json), one row
    per step: what `plot` draws per run."""
    rows = []
    for rid, run in grid.runs.items():
        if "lowdata" not in run.tables:
            continue
        method = Path(runs_dir) / rid / "method"
        info = read_json(method / "method.json")
        best, alt = info.get("best_step"), (info.get("alt") or {}).get("best_step")
        log = method / "log.jsonl"
        if not log.is_file():
            raise InputError(f"{log}: missing (has this run been trained?)")
        for line in log.read_text(encoding="utf-8").splitlines():
            step = json.loads(line)
            rows.append({"run": rid, "dataset": run.dataset, "method": run.method, "size": run.size,
                         "sample": run.sample, "seed": run.seed, "step": step["step"], "loss": step["loss"],
                         "token_loss": step.get("token_loss"), "dev_loss": step.get("dev_loss"), "best_step": best,
                         "alt_best_step": alt})
    return pd.DataFrame(rows, columns=CURVE_KEYS)


def summarize(df: pd.DataFrame, metrics: list) -> pd.DataFrame:
    """Mean and std over the runs of each cell (samples x seeds)."""
    cols = KEYS + ["n"] + [c for m in metrics for c in (m, f"{m}_std")] + EXTRA
    if df.empty:
        return pd.DataFrame(columns=cols)
    key = df[KEYS].astype(object).where(df[KEYS].notna(), "")  # groupby drops NaN keys; keep them as ""
    values = df[metrics + EXTRA].apply(pd.to_numeric, errors="coerce")
    g = values.groupby([key[k] for k in KEYS], sort=False)
    mean, std = g.mean(), g.std(ddof=1)
    out = mean[[]].copy()
    out["n"] = g.size()
    for m in metrics:
        out[m], out[f"{m}_std"] = mean[m], std[m]
    for e in EXTRA:
        out[e] = mean[e]
    out = out.reset_index()
    # sizes sort numerically with "full" last; cells keep the grid's order otherwise
    out["_size"] = out["size"].map(lambda s: math.inf if s == "full" else float(s))
    out["_plen"] = out["prefix_len"].map(lambda p: -1.0 if p == "" else float(p))
    out = out.sort_values(["experiment", "dataset", "method", "_size", "_plen", "init", "test", "selection"],
                          key=lambda c: c if c.name in ("_size", "_plen") else c.astype(str), kind="stable")
    out = out.drop(columns=["_size", "_plen"])
    out["prefix_len"] = out["prefix_len"].map(lambda v: "" if v == "" else int(v))
    return out[cols].reset_index(drop=True)


HEADLINE = ("BLEU", "rouge1", "rouge2", "rougeL")  # what the metrics files keep of each row


def headline(table: str, tab: pd.DataFrame) -> dict:
    """A table's metrics file: row label (without the table's own name) -> its headline metrics."""
    keep = [m for m in HEADLINE if m in tab.columns]
    return {label(r).removeprefix(f"{table}/"): {m: round(float(r[m]), 6) for m in keep if not pd.isna(r[m])}
            for _, r in tab.iterrows()}


def label(row) -> str:
    parts = [row["experiment"], row["dataset"], row["method"], f"n{row['size']}" if row["size"] != "full" else "full"]
    if row["prefix_len"] != "":
        parts.append(f"p{row['prefix_len']}-{row['init']}")
    return "/".join(map(str, parts + [row["test"]] + ([] if row["selection"] == "primary" else [row["selection"]])))


def grid_of(args):
    """The grid that --params, --overlay (Snakemake's --config, as JSON) and --preset name."""
    overlay = None
    if args.overlay:
        try:
            overlay = json.loads(args.overlay)
        except json.JSONDecodeError as e:
            raise InputError(f"--overlay: not valid JSON: {e}") from None
    if args.preset:
        overlay = P.merge(overlay or {}, {"preset": args.preset})
    return P.build(args.params, overlay)


def run(args):
    grid = grid_of(args)
    out_dir = Path(args.tables)
    summary, every_run = {}, []
    for table, (df, metrics) in collect(grid, args.runs).items():
        every_run.append(df)
        tab = summarize(df, metrics)
        with atomic_open(out_dir / f"{table}.csv") as f:
            tab.to_csv(f, index=False, float_format="%.6g")
        summary[table] = headline(table, tab)
        print(f"{out_dir / f'{table}.csv'}: {len(tab)} rows from {len(df)} scored runs")
    runs = pd.concat([d for d in every_run if len(d)] or [every_run[0]], ignore_index=True)
    with atomic_open(out_dir / "runs.csv") as f:
        runs.to_csv(f, index=False, float_format="%.6g")
    print(f"{out_dir / 'runs.csv'}: {len(runs)} scored runs")
    curves = training_curves(grid, args.runs)
    with atomic_open(out_dir / "curves.csv") as f:
        curves.to_csv(f, index=False, float_format="%.6g")
    settings = pd.DataFrame([{k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in P.run_record(r).items()}
                             for r in grid.runs.values()])
    with atomic_open(out_dir / "settings.csv") as f:
        settings.to_csv(f, index=False)
    for table, rows in summary.items():
        write_json(Path(args.metrics) / f"{table}.json", rows)
