"""ROUGE-1, ROUGE-2, ROUGE-L F1 (x100) with Google's rouge-score, Porter stemming on (the XSum setting).

rouge-score tokenizes by lowercasing and keeping [a-z0-9] runs. With several references an input gets its best
F1 over them (`score_multi`). The corpus score is the plain mean of per-input F1; rouge-score's
BootstrapAggregator would report the median of bootstrap means instead, which is not exactly the mean.
rougeL is sentence-level LCS (not rougeLsum).
"""

from rouge_score import rouge_scorer

KEYS = ("rouge1", "rouge2", "rougeL")


def corpus_rouge(hyps: list[str], refs: list[list[str]]) -> dict:
    scorer = rouge_scorer.RougeScorer(list(KEYS), use_stemmer=True)
    sums = dict.fromkeys(KEYS, 0.0)
    for hyp, group in zip(hyps, refs):
        scores = scorer.score_multi([r for r in group if r], hyp)
        for k in KEYS:
            sums[k] += scores[k].fmeasure
    return {k: 100 * sums[k] / len(hyps) for k in KEYS}
