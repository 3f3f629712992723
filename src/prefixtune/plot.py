"""`prefixtune plot`: the results figures (PNG) from the aggregated tables.

    prefixtune plot --tables results/cpu/tables --out results/cpu/plots

Draws, when the tables hold the data (the same rule as prefixtune.params.expected_plots):
  lowdata_<dataset>.png  lowdata.csv: the headline metric(s) vs training size per method, log-x,
                         error bars = std over samples x seeds (the paper's Figure 3); a row of panels per
                         selection rule where the runs were decoded under both
  lowdata_<dataset>.csv  its first panel as data (the authors' rule): size, then one column per method (mean),
                         which dvc.yaml declares as a DVC plot (`dvc plots diff` overlays two experiments' curves)
  training_<dataset>.png curves.csv: train loss (lines) and dev loss (dots) per step of every low-data run,
                         one panel per method and size, a ring where the authors' rule kept the parameters, a
                         square where the second rule did
  prefix_length.png      ablations.csv cells whose prefix length varies: metric vs prefix length
                         (Figure 4)
  init.png               ablations.csv cells whose init varies: metric per init word (Figure 5); a second,
                         hatched bar per init for the second selection rule where there is one
A figure with no data is not drawn (and an old one is removed). BLEU on a 0-1 scale (the E2E
scripts) is shown x100, as in the paper.
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
import pandas as pd  # noqa: E402

from .errors import InputError  # noqa: E402
from .files import atomic_open, atomic_path  # noqa: E402
from .registry import METHODS, base_method  # noqa: E402
from .report.runs import SELECTIONS  # noqa: E402

# Headline metrics per figure, first found wins per panel: table-to-text BLEU and ROUGE-L, XSum ROUGE-1/2.
PANELS = [("BLEU", "BLEU_A"), ("ROUGE_L", "METEOR", "TER"), ("rouge1",), ("rouge2",)]
VARIANT = {"adapter-3": ("tab:olive", "v")}  # a second label of one method (adapter-0.1 keeps adapter's style)
FIGURES = ("lowdata_*.png", "lowdata_*.csv", "training_*.png", "prefix_length.png", "init.png")
CAPTIONS = {  # what each figure shows, for the reports that embed it (reproduce.py, report/results_doc.py)
    "lowdata": "The low-data curve (the paper's Figure 3 on this preset's model): mean ± std per size; where both "
               "selection rules were decoded, a row of panels per rule, each from that rule's decodes.",
    "training": f"Train and dev loss of every low-data run; ring: the step kept under the {SELECTIONS['primary']}; "
                f"square: the step kept under {SELECTIONS['alt']}.",
    "prefix_length": "Score vs prefix length (the paper's Figure 4).",
    "init": "Score per prefix initialization, random first (the paper's Figure 5; its n = 100 setting is Figure 8): "
            f"solid bars: the {SELECTIONS['primary']}; hatched: {SELECTIONS['alt']}; mean ± std over the runs.",
}


def caption_of(path) -> str:
    """The caption of a figure file: its name, or its kind before `_<dataset>` (lowdata_e2e.png, and
    lowdata_my_data.png for a dataset named my_data -> CAPTIONS["lowdata"])."""
    stem = Path(path).stem
    return next(text for kind, text in CAPTIONS.items() if stem == kind or stem.startswith(f"{kind}_"))


def add_arguments(p):
    p.add_argument("--tables", default="results/cpu/tables", help="folder with the aggregate CSV tables")
    p.add_argument("--out", default="results/cpu/plots", help="folder for the PNG figures")


def read_table(path) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: missing (run `prefixtune aggregate` first)")
    df = pd.read_csv(path, keep_default_na=False, na_values=[""])
    for k in ("experiment", "dataset", "method", "size", "prefix_len", "init", "test", "n"):
        if k not in df.columns:
            raise InputError(f"{path}: no column '{k}'")
    df["size"] = df["size"].astype(str)
    return df


def metrics_of(df) -> list:
    """The headline metrics present (one per panel), e.g. ['BLEU', 'ROUGE_L'] or ['rouge1', 'rouge2']."""
    out = []
    for options in PANELS:
        for m in options:
            if m in df.columns and df[m].notna().any():
                out.append(m)
                break
    return out


def main_test(df, selection="primary"):
    """One test set per cell: `test` if present (WebNLG's S/U are metric columns), else the first one; the
    decodes of one selection rule (by default the first: the authors')."""
    if "selection" in df.columns:
        df = df[df["selection"].astype(str) == selection]
    tests = list(dict.fromkeys(df["test"].astype(str)))
    return df[df["test"].astype(str) == ("test" if "test" in tests else tests[0])] if tests else df


def rules_in(df) -> list:
    """The selection rules whose decodes the table holds, the authors' first (["primary"] for a table without
    the column)."""
    have = set(df["selection"].astype(str)) if "selection" in df.columns else {"primary"}
    return [r for r in SELECTIONS if r in have]


def scaled(df, m):
    """(values, std, axis label): BLEU reported on 0-1 is drawn x100."""
    k = 100.0 if m.startswith("BLEU") and df[m].max() <= 1.0 else 1.0
    std = df[f"{m}_std"] if f"{m}_std" in df.columns else pd.Series(0.0, index=df.index)
    return df[m] * k, std.fillna(0.0) * k, f"{m} (x100)" if k != 1.0 else m


def varying(df, key):
    """Cells (experiment, dataset, method, size) in which `key` takes several values."""
    if df.empty:
        return []
    groups = df.groupby(["experiment", "dataset", "method", "size"], sort=False)[key]
    return [g for g, v in groups if v.nunique(dropna=True) > 1]


def caption(d, per) -> tuple[str, str]:
    """What a figure's title says of its data: "mean ± std over N runs per <per>", and a second line naming the
    model and the decoded set ("" when the table has no model column)."""
    n = d["n"].max() if len(d) else 0
    about = f"\n{d['model'].iloc[0]}, {d['test'].iloc[0]} set" if len(d) and "model" in d else ""
    return f"mean ± std over {n} run{'s' if n != 1 else ''} per {per}", about


def _save(fig, path):
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    print(f"wrote {path}")


def _style(label):
    """(color, marker) of a method label: the registry's for its method (registry.py)."""
    if label in VARIANT:
        return VARIANT[label]
    base = base_method(label)
    return (METHODS[base].color, METHODS[base].marker) if base else (None, "o")


def plot_lowdata(df, dataset, path):
    low = df[(df["dataset"] == dataset) & (df["size"] != "full")]
    rules = rules_in(low)
    d = main_test(low)
    ms = metrics_of(d)
    # a row per selection rule, sharing each metric's y axis, so that a reader sees whether the picture depends
    # on how often the dev loss was looked at
    fig, axes = plt.subplots(len(rules), len(ms), figsize=(5.2 * len(ms), 3.6 * len(rules) + 0.4), squeeze=False,
                             sharey="col")
    methods = list(dict.fromkeys(d["method"]))
    sizes = sorted(d["size"].astype(int).unique())
    for row, rule in zip(axes, rules):
        dr = main_test(low, rule)
        for ax, m in zip(row, ms):
            for i, method in enumerate(methods):
                # methods side by side around each size (x is log-scaled), so that their error bars do not overlap
                g = dr[dr["method"] == method]
                g = g.assign(_x=g["size"].astype(int) * 1.04 ** (i - (len(methods) - 1) / 2)).sort_values("_x")
                y, err, ylabel = scaled(g, m)
                color, marker = _style(method)
                ax.errorbar(g["_x"], y, yerr=err, label=method, color=color, marker=marker, capsize=3,
                            linewidth=1.5)
            ax.set_xscale("log")
            ax.set_xticks(sizes, [str(s) for s in sizes])
            ax.minorticks_off()
            ax.set_xlabel("training examples")
            ax.set_ylabel(ylabel)
            ax.grid(alpha=0.3)
            if len(rules) > 1:
                ax.set_title(f"selected by: {SELECTIONS[rule]}", fontsize=9)
    if ms:  # one legend for the figure, below the panels, where it covers no point
        fig.legend(*axes[0][0].get_legend_handles_labels(), title="method", loc="upper center",
                   bbox_to_anchor=(0.5, 0.02), ncol=len(methods), frameon=False)
    spread, about = caption(d, "point")
    fig.suptitle(f"{dataset}: low-data ({spread}){about}", fontsize=10)
    fig.tight_layout()
    _save(fig, path)
    if ms:  # the first panel's curves as data, one column per method: what DVC's plots read
        y, _, _ = scaled(d, ms[0])
        wide = d.assign(size=d["size"].astype(int), _y=y).pivot_table(index="size", columns="method", values="_y",
                                                                       sort=False)
        with atomic_open(path.with_suffix(".csv")) as f:
            wide[methods].sort_index().to_csv(f, float_format="%.6g")
        print(f"wrote {path.with_suffix('.csv')}")


def plot_training(curves, dataset, path):
    """Train and dev loss of every low-data run of `dataset`: a panel per (method, size), a line per run."""
    d = curves[curves["dataset"] == dataset]
    methods = list(dict.fromkeys(d["method"]))
    sizes = sorted(d["size"].astype(int).unique())
    fig, axes = plt.subplots(len(methods), len(sizes), figsize=(3.2 * len(sizes), 2.6 * len(methods)),
                             squeeze=False, sharey="row")
    for i, method in enumerate(methods):
        color = _style(method)[0]
        for j, size in enumerate(sizes):
            ax = axes[i][j]
            for _, g in d[(d["method"] == method) & (d["size"].astype(int) == size)].groupby("run", sort=False):
                train = g["token_loss"] if g["token_loss"].notna().all() else g["loss"]  # per token, as dev
                ax.plot(g["step"], train, color=color, alpha=0.35, linewidth=0.8)
                dev = g.dropna(subset=["dev_loss"])
                ax.plot(dev["step"], dev["dev_loss"], color=color, marker=".", linewidth=1.2)
                best = dev[dev["step"] == g["best_step"].iloc[0]]
                ax.plot(best["step"], best["dev_loss"], "o", markersize=9, markerfacecolor="none", color="black")
                if "alt_best_step" in g and g["alt_best_step"].notna().all():  # the second rule's kept step
                    alt = dev[dev["step"] == g["alt_best_step"].iloc[0]]
                    ax.plot(alt["step"], alt["dev_loss"], "s", markersize=6, markerfacecolor="none",
                            color="dimgray")
            ax.set_title(f"{method}, n={size}", fontsize=9)
            ax.grid(alpha=0.3)
            if i == len(methods) - 1:
                ax.set_xlabel("optimizer step")
            if j == 0:
                ax.set_ylabel("loss per target token")
    alt = "alt_best_step" in d and d["alt_best_step"].notna().any()
    kept = (f"kept step: ring = {SELECTIONS['primary']}, square = {SELECTIONS['alt']}" if alt
            else "kept step (ring)")
    fig.suptitle(f"{dataset}: train loss (faint), dev loss (dots), one line per run; {kept}")
    fig.tight_layout()
    _save(fig, path)


def plot_prefix_length(df, path):
    cells = varying(df, "prefix_len")
    sub = main_test(df[df.set_index(["experiment", "dataset", "method", "size"]).index.isin(cells)])
    datasets = list(dict.fromkeys(sub["dataset"]))
    fig, axes = plt.subplots(1, len(datasets), figsize=(5.2 * len(datasets), 4), squeeze=False)
    for ax, ds in zip(axes[0], datasets):
        d = sub[sub["dataset"] == ds]
        m = metrics_of(d)[0]
        for (method, size), g in d.groupby(["method", "size"], sort=False):
            g = g.sort_values("prefix_len")
            y, err, ylabel = scaled(g, m)
            color, marker = _style(method)
            ax.errorbar(g["prefix_len"], y, yerr=err, marker=marker, color=color, capsize=3,
                        label=f"{method} ({'full data' if size == 'full' else f'n={size}'})")
        lengths = sorted(d["prefix_len"].dropna().astype(int).unique())
        ax.set_xticks(lengths, [str(x) for x in lengths])
        ax.set_xlabel("prefix length (virtual tokens)")
        ax.set_ylabel(ylabel)
        ax.set_title(ds)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle("Prefix length")
    _save(fig, path)


def plot_init(df, path):
    cells = df[df.set_index(["experiment", "dataset", "method", "size"]).index.isin(varying(df, "init"))]
    rules = rules_in(cells)
    sub = main_test(cells)
    groups = list(sub.groupby(["dataset", "method", "size"], sort=False))
    width = 0.8 / len(rules)
    fig, axes = plt.subplots(1, len(groups), squeeze=False,
                             figsize=(max(5.2, 0.7 * len(rules) * sub["init"].nunique() + 2) * len(groups), 4))
    by_rule = {rule: main_test(cells, rule) for rule in rules}
    for ax, ((ds, method, size), g) in zip(axes[0], groups):
        m = metrics_of(g)[0]
        inits = sorted(dict.fromkeys(g["init"]), key=lambda i: i != "random")  # random first
        for k, r in enumerate(by_rule.values()):  # a bar per rule and init: the authors' solid, the second hatched
            r = r[(r["dataset"] == ds) & (r["method"] == method) & (r["size"] == size)].set_index("init")
            y, err, ylabel = scaled(r.loc[inits], m)
            ax.bar([i + (k - (len(rules) - 1) / 2) * width for i in range(len(inits))], y, width=width, yerr=err,
                   color=["tab:gray" if i == "random" else "tab:blue" for i in inits], capsize=3,
                   hatch="//" if k else None, edgecolor="white" if k else None)
        p = g.set_index("init")["prefix_len"]
        ax.set_xticks(range(len(inits)), [f"{i} (P = {p[i]:g})" if pd.notna(p[i]) else f"{i} (P = its token count)"
                                          for i in inits], rotation=30, ha="right")
        ax.set_xlabel("prefix initialization (random, or activations of a real word)")
        ax.set_ylabel(ylabel)
        ax.set_title(f"{ds}, {method}, {'full data' if size == 'full' else f'n={size}'}")
        ax.grid(alpha=0.3, axis="y")
        if len(rules) > 1:  # legend patches in neither bar colour: the hatch alone tells the rule
            ax.legend([Patch(facecolor="lightgray", edgecolor="black", hatch="//" if k else None)
                       for k in range(len(rules))], [f"selected by: {SELECTIONS[r]}" for r in rules],
                      loc="lower right", fontsize=8)
    spread, about = caption(sub, "bar")
    fig.suptitle(f"Prefix initialization ({spread}){about}", fontsize=10, y=1.06)  # above the panel titles
    _save(fig, path)


def run(args):
    tables, out = Path(args.tables), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for pattern in FIGURES:  # figures whose data is gone must not linger
        for old in out.glob(pattern):
            old.unlink()
    low = read_table(tables / "lowdata.csv")
    for ds in dict.fromkeys(low.loc[low["size"] != "full", "dataset"]):
        plot_lowdata(low, ds, out / f"lowdata_{ds}.png")
    if (tables / "curves.csv").is_file():
        curves = pd.read_csv(tables / "curves.csv")
        for ds in dict.fromkeys(curves.loc[curves["size"].astype(str) != "full", "dataset"]):
            plot_training(curves[curves["size"].astype(str) != "full"], ds, out / f"training_{ds}.png")
    abl = read_table(tables / "ablations.csv")
    if varying(abl, "prefix_len"):
        plot_prefix_length(abl, out / "prefix_length.png")
    if varying(abl, "init"):
        plot_init(abl, out / "init.png")
