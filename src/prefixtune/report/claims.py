"""The claims ledger: each qualitative claim of the paper (docs/claims.yaml), its experiment, and its verdict.

A claim compares two sides that differ in one field (`compare`: the method or the init), on runs paired by
`pair_on` (e.g. dataset, size, training subsample, seed), with the metric on the paper's scale (numbers.py). The
paired differences d = a - b give a 95% interval by Student's t (prefixtune.verdict.paired_t). Rules:

  better       holds: the interval lies above 0; reversed: below 0; not resolved: it contains 0
  comparable   holds: the interval lies inside ±margin; does not hold: it lies outside; not resolved otherwise
  not_worse    holds unless the interval lies below 0 (then: does not hold)
  peak         the prefix length with the best mean score, against the paper's threshold (no pairs: one mean
               per length)

Below 3 pairs the verdict is "pending". A verdict on a model other than the paper's is a proxy's: it reads as a
finding on that model, not as a judgement of the paper. Each selection rule the runs decode (the authors' and,
where trained, the second) gets its own verdict.
"""

import math

import pandas as pd

from ..verdict import MIN_PAIRS, paired_t
from .numbers import short, value

RULES = ("better", "comparable", "not_worse", "peak")
SELECTIONS = {"primary": "authors' rule", "alt": "second rule"}


def sides(x) -> list:
    return list(x) if isinstance(x, list) else [x]


def judge(rule: str, low: float, high: float, margin: float | None) -> str:
    if rule == "better":
        return "holds" if low > 0 else "reversed" if high < 0 else "not resolved"
    if rule == "comparable":
        if -margin < low and high < margin:
            return "holds"
        return "does not hold" if low >= margin or high <= -margin else "not resolved"
    return "does not hold" if high < 0 else "holds"  # not_worse


def scored(runs: pd.DataFrame, claim: dict) -> pd.DataFrame:
    """The claim's experiment's runs with `v`, the claim's metric on the paper's scale."""
    sub = runs[runs.experiment == claim["experiment"]].copy()
    split = claim.get("split", "test")
    sub["v"] = [value(s, t, claim["metric"], split) for s, t in zip(sub.scores, sub.task)]
    return sub


def paired(sub: pd.DataFrame, claim: dict, a, b) -> pd.DataFrame:
    """The pairs of runs of side a and side b (one row each: their keys and d = a - b)."""
    keys = [*claim["pair_on"], "test", "selection"]
    field = claim["compare"]
    left = sub[sub[field] == a][[*keys, "v"]]
    right = sub[sub[field] == b][[*keys, "v"]]
    both = left.merge(right, on=keys, suffixes=("_a", "_b"))
    return both.assign(d=both.v_a - both.v_b).dropna(subset=["d"])


def verdicts(claims: list, runs: pd.DataFrame, grid, paper_claims: dict, paper_models: dict) -> pd.DataFrame:
    """One row per claim, comparison (a vs b) and selection rule: pairs, mean difference, interval, verdict.
    `grid`: the preset's grid (what it runs, finished or not); `runs`: its finished runs (runs.py)."""
    rows = []
    for c in claims:
        base = {"claim": c["id"], "text": c["claim"], "where": c["where"], "experiment": c["experiment"],
                "metric": c["metric"], "rule": c["rule"], "proxy": False,
                "paper": (paper_claims.get(c.get("paper")) or {}).get("value", math.nan)}
        planned = {getattr(r, c["compare"]) for r in grid.runs.values() if c["experiment"] in r.experiments}
        if not planned:
            rows.append({**base, "a": ", ".join(map(str, sides(c.get("a", "")))),
                         "b": ", ".join(map(str, sides(c.get("b", "")))), "verdict": "not run in this preset"})
            continue
        sub = scored(runs, c)
        models = sorted({short(m) for m in sub.model})
        paper = sorted({short(paper_models[d]) for d in sub.dataset if d in paper_models})
        base["model"] = ", ".join(models)
        base["proxy"] = bool(models) and models != paper
        if c["rule"] == "peak":
            rows += peaks(sub, c, base)
            continue
        for a in sides(c["a"]):
            for b in sides(c["b"]):
                pairs = paired(sub, c, a, b)
                absent = [x for x in (a, b) if x not in planned]
                if absent:
                    rows.append({**base, "a": a, "b": b, "verdict": f"not run in this preset (no {c['compare']} "
                                                                   f"{', '.join(map(str, absent))})"})
                    continue
                if pairs.empty:
                    rows.append({**base, "a": a, "b": b, "pairs": 0, "verdict": f"pending (0 of {MIN_PAIRS} pairs)"})
                    continue
                for sel, g in pairs.groupby("selection", sort=False):
                    v = paired_t(g.d, a, b)
                    text = (f"pending ({v.n} of {MIN_PAIRS} pairs)" if v.n < MIN_PAIRS
                            else judge(c["rule"], v.low, v.high, c.get("margin")))
                    rows.append({**base, "a": a, "b": b, "selection": SELECTIONS.get(sel, sel), "pairs": v.n,
                                 "mean_difference": v.mean, "low": v.low, "high": v.high, "verdict": text})
    return pd.DataFrame(rows)


def peaks(sub: pd.DataFrame, claim: dict, base: dict) -> list:
    """The prefix length with the best mean score, per dataset and selection rule."""
    out = []
    for (ds, sel), g in sub.groupby(["dataset", "selection"], sort=False):
        means = g.groupby("prefix_len").v.mean().dropna()
        if means.empty:
            continue
        best = means.idxmax()
        text = f"best at P = {best:g} of {', '.join(f'{p:g}' for p in means.index)}"
        if not math.isnan(base["paper"]):
            text += " (the paper's threshold)" if best == base["paper"] else f" (the paper: {base['paper']:g})"
        out.append({**base, "a": ds, "selection": SELECTIONS.get(sel, sel), "pairs": int(g.groupby("prefix_len").size().min()),
                    "verdict": text})
    return out or [{**base, "verdict": "not run in this preset"}]
