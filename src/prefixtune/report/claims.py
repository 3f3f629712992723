"""The claims ledger: each qualitative claim of the paper (docs/claims.yaml), its experiment, and its verdict.

A claim compares two sides that differ in one field (`compare`: the method or the init), on runs paired by
`pair_on` (e.g. dataset, size, training subsample, seed), with the metric on the paper's scale (numbers.py). The
paired differences d = a - b give a 95% interval by Student's t (prefixtune.verdict.paired_t). Rules:

  better       holds: the interval lies above 0; reversed: below 0; not resolved: it contains 0
  comparable   holds: the interval lies inside ±margin; does not hold: it lies outside; not resolved otherwise
  not_worse    holds: the interval lies above -margin; does not hold: below it; not resolved otherwise
  peak         the prefix length with the best mean score, against the paper's threshold, once every length the
               experiment plans has 3 runs (no pairs: one mean per length)

`only` (optional) keeps the runs whose fields have the given values (e.g. dataset: webnlg).

Until every pair the preset plans for a comparison has finished (and at least 3), the verdict is "pending": a
claim pooled over sizes is not judged on the first sizes in. A verdict on a model other than the paper's is a
proxy's: it reads as a finding on that model, not as a judgement of the paper. Each selection rule the runs
decode (the authors' and, where trained, the second) gets its own verdict.
"""

import math

import pandas as pd

from ..errors import InputError
from ..registry import describe
from ..verdict import MIN_PAIRS, better, paired_t
from .numbers import short, value
from .runs import SELECTIONS

RULES = ("better", "comparable", "not_worse", "peak")


def sides(x) -> list:
    return list(x) if isinstance(x, list) else [x]


def judge(rule: str, low: float, high: float, margin: float | None) -> str:
    if rule == "better":
        return better(low, high)
    if rule == "comparable":
        if -margin < low and high < margin:
            return "holds"
        return "does not hold" if low >= margin or high <= -margin else "not resolved"
    return "holds" if low > -margin else "does not hold" if high < -margin else "not resolved"  # not_worse


def scored(runs: pd.DataFrame, claim: dict) -> pd.DataFrame:
    """The claim's experiment's runs with `v`, the claim's metric on the paper's scale."""
    sub = runs[runs.experiment == claim["experiment"]].copy()
    for field, wanted in (claim.get("only") or {}).items():
        sub = sub[sub[field] == wanted]
    split = claim.get("split", "test")
    sub["v"] = [value(s, t, claim["metric"], split) for s, t in zip(sub.scores, sub.task)]
    return sub


def paired(sub: pd.DataFrame, claim: dict, a, b) -> pd.DataFrame:
    """The pairs of runs of side a and side b (one row each: their keys and d = a - b)."""
    keys = [*claim["pair_on"], "test", "selection"]
    field = claim["compare"]
    left = sub[sub[field] == a][[*keys, "v"]]
    right = sub[sub[field] == b][[*keys, "v"]]
    try:
        both = left.merge(right, on=keys, suffixes=("_a", "_b"), validate="one_to_one")
    except pd.errors.MergeError:
        raise InputError(f"docs/claims.yaml: claim {claim['id']}: pair_on {claim['pair_on']} pairs more than one run "
                         f"of {a} with one of {b}; name the fields that tell runs apart") from None
    return both.assign(d=both.v_a - both.v_b).dropna(subset=["d"])


def verdicts(claims: list, runs: pd.DataFrame, grid, paper_claims: dict, paper_models: dict) -> pd.DataFrame:
    """One row per claim, comparison (a vs b) and selection rule: pairs, mean difference, interval, verdict.
    `grid`: the preset's grid (what it runs, finished or not); `runs`: its finished runs (runs.py)."""
    rows = []
    for c in claims:
        base = {"claim": c["id"], "text": c["claim"], "where": c["where"], "experiment": c["experiment"],
                "metric": c["metric"], "rule": c["rule"], "margin": c.get("margin", math.nan), "proxy": False,
                "paper": (paper_claims.get(c.get("paper")) or {}).get("value", math.nan)}
        mine = [r for r in grid.runs.values() if c["experiment"] in r.experiments
                and all(getattr(r, k) == v for k, v in (c.get("only") or {}).items())]
        planned = {getattr(r, c["compare"]) for r in mine}
        if not planned:
            rows.append({**base, "a": ", ".join(map(str, sides(c.get("a", "")))),
                         "b": ", ".join(map(str, sides(c.get("b", "")))), "verdict": "not run in this preset"})
            continue
        sub = scored(runs, c)
        models = sorted({short(r.settings["model"]) for r in mine})  # what the preset runs, finished or not
        paper = sorted({short(paper_models[r.dataset]) for r in mine if r.dataset in paper_models})
        base["model"] = "; ".join(sorted({describe(r.settings["model"]) for r in mine}))  # the exact model
        base["proxy"] = models != paper
        if c["rule"] == "peak":
            rows += peaks(sub, c, base, planned)
            continue
        def cells(side):  # the pair keys the preset plans for one side, finished or not
            return {tuple(getattr(r, k) for k in c["pair_on"]) for r in mine if getattr(r, c["compare"]) == side}

        for a in sides(c["a"]):
            for b in sides(c["b"]):
                pairs = paired(sub, c, a, b)
                needed = max(MIN_PAIRS, len(cells(a) & cells(b)))
                absent = [x for x in (a, b) if x not in planned]
                if absent:
                    rows.append({**base, "a": a, "b": b, "verdict": f"not run in this preset (no {c['compare']} "
                                                                   f"{', '.join(map(str, absent))})"})
                    continue
                if pairs.empty:
                    rows.append({**base, "a": a, "b": b, "pairs": 0, "verdict": f"pending (0 of {needed} pairs)"})
                    continue
                for (test, sel), g in pairs.groupby(["test", "selection"], sort=False):
                    v = paired_t(g.d, a, b)
                    pending = v.n < needed  # no interval: one on the first sizes in would read as a result
                    rows.append({**base, "a": a, "b": b, "test": test, "selection": SELECTIONS.get(sel, sel),
                                 "pairs": v.n, "mean_difference": v.mean, "low": math.nan if pending else v.low,
                                 "high": math.nan if pending else v.high,
                                 "verdict": f"pending ({v.n} of {needed} pairs)" if pending
                                 else judge(c["rule"], v.low, v.high, c.get("margin"))})
    return pd.DataFrame(rows)


def peaks(sub: pd.DataFrame, claim: dict, base: dict, planned: set) -> list:
    """The prefix length with the best mean score, per dataset, set and selection rule, once every planned length
    has MIN_PAIRS runs."""
    out = []
    lengths = sorted(p for p in planned if p is not None)
    for (ds, test, sel), g in sub.groupby(["dataset", "test", "selection"], sort=False):
        counts = g.dropna(subset=["v"]).groupby("prefix_len").size()
        short_of = [p for p in lengths if counts.get(p, 0) < MIN_PAIRS]
        row = {**base, "a": ds, "test": test, "selection": SELECTIONS.get(sel, sel), "pairs": int(counts.min())}
        if short_of:
            out.append({**row, "verdict": f"pending (fewer than {MIN_PAIRS} runs at P = "
                                          f"{', '.join(f'{p:g}' for p in short_of)})"})
            continue
        means = g.groupby("prefix_len").v.mean()
        best = means.idxmax()
        text = f"best at P = {best:g} of {', '.join(f'{p:g}' for p in means.index)}"
        if not math.isnan(base["paper"]):
            text += " (the paper's threshold)" if best == base["paper"] else f" (the paper: {base['paper']:g})"
        out.append({**row, "verdict": text})
    return out or [{**base, "verdict": f"pending (no finished run of {claim['experiment']})"}]
