"""The finished runs of a grid as one table: a row per (run, experiment it belongs to, decoded set)."""

import math
from pathlib import Path

import pandas as pd

from ..run_folder import decoded, finished, machine

SELECTIONS = {"primary": "authors' rule", "alt": "every tenth of the budget"}  # the names the reports give the rules

COLUMNS = ["run", "experiment", "dataset", "task", "model", "method", "size", "sample", "seed", "prefix_len", "init",
           "test", "selection", "kept_step", "kept_dev_loss", "steps", "trained_prefix_len", "trainable_params",
           "base_params",
           "trainable_fraction", "train_s", "decode_s", "score_s", "machine", "scores"]


def load(grid, runs_dir) -> pd.DataFrame:
    """Every finished run of `grid` (all its decoded sets scored) read from `runs_dir` (runs/<preset>); `scores`
    holds each set's scores object as the scorer wrote it."""
    rows = []
    for run in grid.runs.values():
        folder = Path(runs_dir) / run.id
        if not finished(run, folder):
            continue
        where = machine(folder / "method")
        for d in decoded(run, folder):
            for exp in run.experiments:
                rows.append({
                    "run": run.id, "experiment": exp, "dataset": run.dataset,
                    "task": grid.settings["datasets"][run.dataset].get("task", run.dataset),
                    "model": run.settings["model"], "method": run.method, "size": run.size, "sample": run.sample,
                    "seed": run.seed, "prefix_len": math.nan if run.prefix_len is None else run.prefix_len,
                    "init": run.init, "test": d["test"], "selection": d["selection"], "kept_step": d["kept_step"],
                    "kept_dev_loss": d["kept_dev_loss"], "steps": d["steps_run"],
                    "trained_prefix_len": d["trained_prefix_len"],
                    "trainable_params": d["trainable_params"], "base_params": d["base_params"],
                    "trainable_fraction": d["trainable_fraction"], "train_s": d["train_s"],
                    "decode_s": d["decode_s"], "score_s": d["score_s"], "machine": where, "scores": d["scores"]})
    return pd.DataFrame(rows, columns=COLUMNS)
