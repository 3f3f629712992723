"""Every number the paper prints beside ours from the same experiment.

docs/paper_results.yaml holds each cell of the paper's tables with its experiment, dataset, model, method, split
and metric. A cell is matched to the runs of the same experiment, dataset, method (and P where the row names
one, and the parameter share where the label prints one: XSum's PREFIX(2%) and PREFIX(0.1%) are two rows), on
the same set, with the authors' selection rule, and read on the paper's scale: the E2E scorer prints
BLEU, METEOR and ROUGE-L as fractions where the paper prints points (x 100); the other scorers print what the
paper prints (BLEU and ROUGE in points, WebNLG and DART METEOR and TER as fractions; metrics/).

Status of a number:
  reproduced within ε   our model is the paper's and |ours - paper| <= ε (EPSILON, on the paper's scale)
  differs by more than ε
  proxy: <model>        the preset runs this cell on another model (the cpu preset): beside it, not judged
  not run in this preset, not run (the paper's <model>; no preset runs it), not computed (<metric>)
"""

import math

import pandas as pd

# Our scorers' names for the paper's metrics (XSum's ROUGE-L is rouge-score's rougeL).
COLUMNS = {"bleu": "BLEU", "nist": "NIST", "meteor": "METEOR", "rouge_l": "ROUGE_L", "cider": "CIDEr", "ter": "TER",
           "rouge_1": "rouge1", "rouge_2": "rouge2"}
NOT_COMPUTED = ("mover", "bert", "bleurt")  # MoverScore, BERTScore, BLEURT: not among this pipeline's scorers
WEBNLG_PARTS = {"test_seen": "_S", "test_unseen": "_U", "test_all": "_A", "test": "_A"}  # footnote 8: S, U, A
PERCENT_FROM_FRACTION = {("e2e", "bleu"), ("e2e", "meteor"), ("e2e", "rouge_l")}  # E2E script: 0-1; paper: x 100
# ε on the paper's scale: points for metrics printed 0-100 (a hundredth of that where the paper prints a fraction:
# WebNLG and DART METEOR and TER); NIST and CIDEr on their own scales. Chosen here, not by the paper: about the
# spread of the paper's own seeds is unknown, so these are round bounds a reader can tighten.
EPSILON = {"bleu": 1.0, "nist": 0.1, "meteor": 1.0, "rouge_l": 1.0, "rouge_1": 1.0, "rouge_2": 1.0, "cider": 0.05,
           "ter": 1.0}
FRACTION_PRINTED = {("webnlg", "meteor"), ("webnlg", "ter"), ("dart", "meteor"), ("dart", "ter")}


def column(task: str, metric: str, split: str) -> str | None:
    """Our scores' key for the paper's metric on a set (None: not computed here)."""
    if metric in NOT_COMPUTED:
        return None
    name = "rougeL" if (task, metric) == ("xsum", "rouge_l") else COLUMNS[metric]
    return name + WEBNLG_PARTS.get(split, "") if task == "webnlg" else name


def scale(task: str, metric: str) -> float:
    """The factor that puts our scorer's value on the paper's scale."""
    return 100.0 if (task, metric) in PERCENT_FROM_FRACTION else 1.0


def epsilon(task: str, metric: str) -> float:
    return EPSILON[metric] / (100 if (task, metric) in FRACTION_PRINTED else 1)


def our_test(split: str) -> str:
    """The decoded set that holds a paper split: dev, or the test set (WebNLG's S/U/A are parts of one)."""
    return "dev" if split == "dev" else "test"


def value(scores: dict, task: str, metric: str, split: str) -> float:
    """A run's score for the paper's metric, on the paper's scale (nan where not computed or not there)."""
    key = column(task, metric, split)
    v = scores.get(key) if key else None
    return math.nan if v is None else float(v) * scale(task, metric)


def share(printed) -> float | None:
    """The parameter share a row label prints ("2%" -> 0.02), or None."""
    return float(str(printed).rstrip("%")) / 100 if printed else None


def same_share(fraction: float, printed: float) -> bool:
    """Whether a run's trainable fraction is the share a row prints, as the paper rounds it (0.07% of GPT-2 medium
    is its "0.1%"): within a factor of 2.5, which keeps the paper's 0.1% and 2% (or 3%) rows apart."""
    return printed / 2.5 <= fraction <= printed * 2.5


def short(model: str) -> str:
    return model.rsplit("/", 1)[-1]  # facebook/bart-large -> bart-large


def compare(paper: list, runs: pd.DataFrame, settings: dict, paper_models: dict, describe,
            planned: set = frozenset()) -> pd.DataFrame:
    """One row per paper number: the paper's value, ours (mean, std, n over the matching runs), the difference and
    the status. `runs`: the finished runs; `planned`: (experiment, dataset, method, decoded set) of every run the
    preset has, finished or not; `settings`: the preset's resolved settings (experiments, datasets);
    `paper_models`: dataset -> the model params.yaml's defaults give it (the paper's, e.g. gpt2-medium);
    `describe`: model name -> its exact description."""
    default_models = {ds: short(m) for ds, m in paper_models.items()}
    rows = []
    for num in paper:
        ds, exp, metric, split = num["dataset"], num["experiment"], num["metric"], num["split"]
        task = settings["datasets"].get(ds, {}).get("task", ds)
        row = {k: num[k] for k in ("id", "table", "page", "dataset", "model", "method", "row", "column", "split")}
        row.update(metric=metric, paper=num["value"], ours=math.nan, ours_std=math.nan, n=0, difference=math.nan,
                   epsilon=math.nan, our_model="")
        mine = runs[(runs.experiment == exp) & (runs.dataset == ds) & (runs.method == num["method"])
                    & (runs.test == our_test(split)) & (runs.selection == "primary")]
        finished = not mine.empty
        if num.get("prefix_len") is not None:
            mine = mine[mine.prefix_len == num["prefix_len"]]
        printed = share(num.get("params"))
        if printed and num["model"] == default_models.get(ds):  # e.g. XSum's PREFIX(2%) and PREFIX(0.1%) rows
            mine = mine[mine.trainable_fraction.map(lambda f: same_share(f, printed)).astype(bool)]
        ours = pd.Series([value(s, task, metric, split) for s in mine.scores], dtype=float).dropna()
        if metric in NOT_COMPUTED:
            row["status"] = f"not computed ({metric})"
        elif "Lewis" in str(num["row"]):
            row["status"] = "quoted by the paper from Lewis et al. (2020); not run"
        elif num["model"] != default_models.get(ds, num["model"]) or num["method"] == "sota":
            row["status"] = f"not run (the paper's {num['model']}; no preset runs it)"
        elif exp not in settings["experiments"]:
            row["status"] = "not run in this preset"
        elif not finished and (exp, ds, num["method"], our_test(split)) in planned:
            row["status"] = "pending (its runs have not finished)"
        elif mine.empty:
            row["status"] = ("not run in this preset (its runs do not decode the dev set)" if split == "dev"
                             else f"not run in this preset (no run with {num['params']} trainable parameters)"
                             if printed else "not run in this preset")
        elif ours.empty:
            row["status"] = f"not computed on this set ({column(task, metric, split)} missing)"
        else:
            model = short(mine.model.iloc[0])
            row.update(ours=ours.mean(), ours_std=ours.std(ddof=1) if len(ours) > 1 else math.nan, n=len(ours),
                       difference=ours.mean() - num["value"], our_model=describe(mine.model.iloc[0]))
            if model != num["model"]:
                row["status"] = f"proxy: {model}"
            else:
                row["epsilon"] = epsilon(task, metric)
                row["status"] = ("reproduced within ε" if abs(row["difference"]) <= row["epsilon"]
                                 else "differs by more than ε")
        rows.append(row)
    return pd.DataFrame(rows)
