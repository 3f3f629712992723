"""The reproducibility checklist (the items of the ACL 2021 and NeurIPS checklists a reader asks for), generated
from the finished runs (runs.py), the protocol table (prefixtune.protocol) and the data release pins
(data/releases.csv). Each function returns Markdown lines."""

import math
import numbers
from pathlib import Path

import pandas as pd

from ..registry import describe
from ..run_folder import cpu_label
from .runs import SELECTIONS


def md_table(head, rows) -> list:
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + [
        "| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]


def fmt(x, spec=".4g") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, str):
        return x
    if isinstance(x, (list, tuple)):
        return ", ".join(fmt(v, spec) for v in x)
    return format(x, spec) if isinstance(x, numbers.Number) else str(x)


def compute(runs: pd.DataFrame) -> list:
    """Machines (CPU, its speed-deciding flags, cores) and software versions, as each run's train stage recorded
    them (<output>.run.json)."""
    firsts = runs.drop_duplicates("run")
    seen = {}
    for run, m in zip(firsts.run, firsts.machine):
        key = (m.get("host", "not recorded"), m.get("cpu", "not recorded (its run.json predates machine records)"),
               f"{m['cpu_family']} / {m['cpu_model']}" if "cpu_family" in m else "–",
               " ".join(m.get("cpu_flags", [])) or "–", m.get("cores", "–"), m.get("python", "–"),
               m.get("torch", "–"), m.get("transformers", "–"))
        seen.setdefault(key, []).append(run)
    rows = []
    for k, r in seen.items():
        named = k[1].startswith("not recorded") and len(r) <= 3  # the few runs without a machine record, by name
        rows.append([*k, f"{len(r)}: {', '.join(r)}" if named else len(r)])
    return md_table(["host", "CPU", "family / model", "flags", "cores", "Python", "torch", "transformers",
                     "runs (train stage)"], rows)


def parameters(runs: pd.DataFrame) -> list:
    rows = []
    runs = runs.drop_duplicates("run")
    for (model, method, kept), g in runs.groupby(["model", "method", "trainable_params"], sort=False, dropna=False):
        inits = ", ".join(sorted({str(i) for i in g.init.dropna()})) or "–"
        p = ", ".join(sorted({f"{x:g}" for x in g.trained_prefix_len.dropna()})) or "–"
        rows.append([describe(model), method, inits, p, fmt(kept, ","), fmt(g.base_params.iloc[0], ","),
                     f"{100 * g.trainable_fraction.iloc[0]:.3f}%"])
    order = list(dict.fromkeys(runs.method))  # a method's rows together (stable: inits in the order first seen)
    rows.sort(key=lambda row: order.index(row[1]))
    return md_table(["model", "method", "init", "P", "trainable (kept) parameters", "base model parameters",
                     "fraction"], rows)


def times(runs: pd.DataFrame) -> list:
    """Minutes per stage, mean over the finished runs of each cell on one CPU (a grid continued across sessions
    runs on different machines, several-fold apart in speed: a mean over both would describe neither), and the
    total."""
    one = runs.drop_duplicates(["run", "test", "selection"])
    one = one.assign(cpu=[cpu_label(m) for m in one.machine])
    rows, total = [], 0.0
    for (cpu, method, size), g in one.groupby(["cpu", "method", "size"], sort=False):
        train = g.drop_duplicates("run").train_s
        total += train.sum(skipna=True) + g.decode_s.sum(skipna=True) + g.score_s.sum(skipna=True)
        rows.append([cpu, method, size, g.run.nunique(), f"{train.mean() / 60:.1f}",
                     f"{g.groupby('run').decode_s.sum().mean() / 60:.1f}",
                     f"{g.groupby('run').score_s.sum().mean() / 60:.1f}"])
    return md_table(["CPU", "method", "size", "runs", "train (min)", "decode, all sets (min)",
                     "score, all sets (min)"], rows) + [
        "", f"Total over the {one.run.nunique()} finished runs: {total / 3600:.2f} hours of wall-clock time."]


def mean_std(values: pd.Series, spec: str) -> str:
    """"mean ± std" over runs, both to the same decimals; the mean alone for one run (no spread to show)."""
    if values.isna().all():
        return "–"
    return format(values.mean(), spec) + (f" ± {format(values.std(ddof=1), spec)}" if values.count() > 1 else "")


def dev_beside_test(runs: pd.DataFrame, metric: str, scale_of) -> list:
    """Per cell and selection rule: the dev loss of the kept step (model selection's number) beside the decoded
    set's score (mean ± std over runs; dev loss to 3 decimals, the score to 2 on the paper's scale)."""
    rows = []
    keys = ["experiment", "dataset", "method", "size", "init", "test", "selection"]
    for key, g in runs.groupby(keys, sort=False, dropna=False):
        vals = pd.Series([s.get(metric, math.nan) * scale_of(t) for s, t in zip(g.scores, g.task)], dtype=float)
        dev = g.kept_dev_loss.astype(float)
        rows.append([*(fmt(k) for k in key[:-1]), SELECTIONS.get(key[-1], key[-1]), len(g),
                     mean_std(dev, ".3f"), mean_std(vals, ".2f"),
                     ", ".join(f"{fmt(k)}/{fmt(s)}" for k, s in zip(g.kept_step, g.steps))])
    return md_table([*keys[:-2], "decoded set", "selection", "runs", "dev loss at the kept step",
                     f"{metric} on the decoded set", "kept step / budget"], rows)


def hyperparameters(protocol_rows: list, preset: str) -> list:
    """Each setting of the paper's protocol this preset runs, its value, and how it was chosen."""
    rows = []
    for r in protocol_rows:
        ours = r.get(f"ours_{preset}")
        if ours is None:
            continue
        status = r[f"{preset}_status"]
        how = ("the paper and the authors' code agree" if r["same"] else
               f"the {r['basis']}" if status == "same" and r["basis"] else
               "the paper" if status == "same" else status.replace("differs: ", "ours, not the paper's: "))
        where = " ".join(fmt(r.get(k)) for k in ("experiment", "dataset", "method") if r.get(k) is not None)
        where += f" n = {r['size']}" if r.get("size") is not None else ""
        rows.append([where or "all", r["setting"], fmt(ours, "g"), fmt(r["paper"], "g"), fmt(r["authors"], "g"), how])
    return md_table(["runs", "setting", "ours", "paper", "authors' code", "how it was chosen"], rows)


def meanings(protocol_rows: list, preset: str) -> list:
    """What each setting of `hyperparameters`' table means (prefixtune.protocol.meaning)."""
    from ..protocol import meaning

    shown = dict.fromkeys(r["setting"] for r in protocol_rows if r.get(f"ours_{preset}") is not None)
    return md_table(["setting", "meaning"], [[s, fmt(meaning(s))] for s in shown])


def searched(label) -> str:
    """scripts/tune-lr's method label in words: adapter:0.001 is an adapter with 0.1% of the parameters."""
    kind, _, share = str(label).partition(":")
    try:
        return f"{kind} with {float(share):.1%} of the parameters" if share else kind
    except ValueError:
        return str(label)


def dev_searches(folder) -> list:
    """The learning-rate searches on a low-data dev set (scripts/tune-lr's CSVs in results/<preset>/tuning/):
    what was tried, on what, and which value had the lowest dev loss."""
    lines = []
    for path in sorted(Path(folder).glob("*.csv")):
        df = pd.read_csv(path)
        if not {"method", "lr", "dev_loss"} <= set(df.columns):
            continue
        for method, g in df.groupby("method", sort=False):
            best = g.loc[g.dev_loss.idxmin()]
            on = ", ".join(f"{k} {g[k].iloc[0]}" for k in ("size", "sample") if k in g.columns)
            on += f"; {g.steps.iloc[0]} optimizer steps per lr" if "steps" in g.columns else ""
            on += (f"; training loss {g.loss.iloc[0]}" if "loss" in g.columns else
                   "; the training loss it used not recorded in the file (params.yaml's comment on the preset says)")
            lines.append(f"- {path}: {searched(method)}, lr tried " + ", ".join(f"{x:g}" for x in g.lr)
                         + f" (training subsample {on}); lowest dev loss {best.dev_loss:.3f} at lr {best.lr:g}")
    return lines or ["- none (every setting above comes from the paper or the authors' code)"]


def data_pins(releases: dict, sources) -> list:
    rows = [[name, s.path, s.url, s.sha256 or "not pinned"] for name in sources for s in releases.get(name, [])]
    return md_table(["dataset", "file", "release URL", "sha256 (checked on download)"], rows)
