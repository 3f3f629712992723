"""The verdict rule for a claim 'A beats B' on a handful of paired runs: Student's t.

Runs are paired by training subsample and seed; d_i = score(A) - score(B). With n >= 3 pairs, the 95%
confidence interval of the mean difference is mean ± t(0.975, n - 1) · sd / sqrt(n) (two-sided; scipy's
Student's t): with 3 pairs t is 4.30, not the 2 of a normal approximation, which would call noise a finding.
The wording reads as a finding on the runs at hand (a proxy model is not the paper's), not as a judgement of
the paper. `better` holds the words for 'A beats B' that docs/results.md and the claims ledger both print.
"""

import math
from dataclasses import dataclass

MIN_PAIRS = 3  # fewer: no verdict


@dataclass
class Verdict:
    n: int
    mean: float
    low: float  # the 95% interval of the mean difference (nan below MIN_PAIRS)
    high: float
    text: str


def better(low: float, high: float) -> str:
    """The verdict on 'A beats B' from the interval of A - B: holds above 0, reversed below 0, else not resolved."""
    return "holds" if low > 0 else "reversed" if high < 0 else "not resolved"


def paired_t(diffs, a: str = "A", b: str = "B", level: float = 0.95) -> Verdict:
    """The verdict on the paired differences `diffs` (A minus B; a sequence of numbers)."""
    from scipy.stats import t

    d = [float(x) for x in diffs]
    n = len(d)
    mean = sum(d) / n if n else math.nan
    if n < MIN_PAIRS:
        return Verdict(n, mean, math.nan, math.nan, f"pending ({n} of {MIN_PAIRS} pairs)")
    sd = math.sqrt(sum((x - mean) ** 2 for x in d) / (n - 1))
    half = t.ppf(0.5 + level / 2, n - 1) * sd / math.sqrt(n)
    low, high = mean - half, mean + half
    word = better(low, high)
    text = {"holds": f"{a} ahead on this proxy (the 95% interval lies above 0)",
            "reversed": f"{b} ahead on this proxy (the 95% interval lies below 0)",
            "not resolved": "no difference beyond noise on this proxy (the 95% interval contains 0)"}[word]
    return Verdict(n, mean, low, high, f"{word}: {text}")
