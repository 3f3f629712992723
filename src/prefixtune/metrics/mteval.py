"""BLEU and NIST exactly as NIST's mteval-v13a.pl computes them for the E2E NLG challenge.

The E2E script (tuetschek/e2e-metrics, measure_scores.py) writes the outputs and references as SGML, one
"reference system" per reference position, padding inputs that have fewer references with empty segments,
and runs `mteval-v13a-sig.pl -r REF -s SRC -t TST` with default options. What follows reproduces that run:

- Tokenization: mteval's default (non-international) `tokenization`, which sacrebleu's `Tokenizer13a`
  reproduces; it lowercases first (no `-c`) with `tr/[A-Z]/[a-z]/`, i.e. ASCII letters only, which is why we
  lowercase here by hand and do not use sacrebleu's `lowercase=True` (Python's `str.lower` also folds
  non-ASCII letters).
- BLEU (0-1 scale, 4-grams): corpus-level clipped n-gram counts; effective reference length = sum over
  segments of the *closest* reference length, ties going to the shorter one (v13's default
  `--brevity-penalty closest`, sub `brevity_penalty_closest`); a reference of length 0 (a padding segment) is
  skipped unless it is the first reference, whose length seeds the search (`return $currentLength if
  (!$referenceSentenceLength)`). Smoothing as `bleu_score` (the default; `--no-smoothing` not given): an n-gram
  order with zero matches counts 1/(2^k * total) with k = 1, 2, ... for successive such orders, an order with no
  test n-grams counts 1. On real corpora no order has zero matches, so corpus BLEU is unsmoothed in practice.
  sacrebleu (`smooth_method='exp'`) agrees except on those padding references: it lets an empty reference be
  the closest one.
- NIST (5-grams): information weights from all reference segments, info(w1..wn) =
  log2(count(w1..wn-1) / count(w1..wn)), with the total number of reference words for unigrams
  (`compute_ngram_info`), including its quirk that a history that is the single token "0" is false in Perl
  and falls back to the total word count. Score = sum_n (matched info / test n-grams) times the length
  penalty exp(-beta * log^2(min(1, L_sys / L_ref))), beta = -log(0.5)/log(1.5)^2, where L_ref is the total
  number of reference words divided by the mean number of non-empty references per input (`score_system`:
  `nist_score($cum_ref_count / $cum_seg_count, ...)`, `score_segment` counting `$ref_seg ne ''`), so the E2E
  padding segments do not count. The penalty only bites when the outputs are shorter than the references,
  e.g. when some outputs are empty. No library does this (NLTK's corpus_nist differs in tokenization, weights
  and length penalty), hence this hand-written module.
"""

import math
from collections import Counter

from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a

MAX_BLEU, MAX_NIST = 4, 5
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_tokenizer = Tokenizer13a()


def tokenize(text: str, preserve_case: bool = False) -> list[str]:
    """mteval-v13a's default tokenization (lowercasing ASCII letters unless `preserve_case`)."""
    if not preserve_case:
        text = text.translate(_ASCII_LOWER)
    return _tokenizer(text).split()


def _ngrams(words, max_n):
    return Counter(tuple(words[i:i + n]) for n in range(1, max_n + 1) for i in range(len(words) - n + 1))


def _closest_ref_length(hyp_len, ref_lens):
    """mteval-v13a `score_segment` + `brevity_penalty_closest`, in the references' SGML system order."""
    current = ref_lens[0]
    for r in ref_lens[1:]:
        if not r:  # empty (padding) reference: skipped
            continue
        if abs(hyp_len - r) < abs(hyp_len - current) or (
                abs(hyp_len - r) == abs(hyp_len - current) and r < current):
            current = r
    return current


def _system_order(n_refs):
    """Order in which mteval visits the reference systems: `sort keys` of ref, or ref_0, ref_1, ref_10, ..."""
    if n_refs == 1:
        return [0]
    return sorted(range(n_refs), key=lambda i: f"ref_{i}")


def bleu_nist(hyps: list[str], refs: list[list[str]], preserve_case: bool = False) -> dict:
    """Corpus BLEU (0-1) and NIST of `hyps` against `refs`, as mteval-v13a run by the E2E script."""
    n_sys = max(len(group) for group in refs)  # reference "systems" of the E2E script's SGML (padded)
    order = _system_order(n_sys)
    padded = [list(group) + [""] * (n_sys - len(group)) for group in refs]
    ref_toks = [[tokenize(padded_group[i], preserve_case) for i in order] for padded_group in padded]
    hyp_toks = [tokenize(h, preserve_case) for h in hyps]

    # NIST information weights from every reference segment (compute_ngram_info).
    ref_ngrams = [[_ngrams(words, MAX_NIST) for words in group] for group in ref_toks]
    counts, total_words = Counter(), 0
    for group, group_ngrams in zip(ref_toks, ref_ngrams):
        for words, ngrams in zip(group, group_ngrams):
            total_words += len(words)
            counts.update(ngrams)

    def info(ngram):
        history = ngram[:-1]
        # Perl's `$mgram ? ... : ...`: an empty history, or the history "0", is false.
        denom = total_words if not history or history == ("0",) else counts[history]
        return -math.log(counts[ngram] / denom) / math.log(2)

    match = [0] * (MAX_NIST + 1)
    total = [0] * (MAX_NIST + 1)
    match_info = [0.0] * (MAX_NIST + 1)
    ref_words, ref_len, ref_count = 0, 0, 0
    for words, group, group_ngrams in zip(hyp_toks, ref_toks, ref_ngrams):
        hyp_ngrams = _ngrams(words, MAX_NIST)
        max_ref = {}  # largest count of each of the output's n-grams in any one reference
        for ngrams in group_ngrams:
            for ngram in hyp_ngrams:
                c = ngrams.get(ngram, 0)
                if c > max_ref.get(ngram, 0):
                    max_ref[ngram] = c
        for ngram, c in hyp_ngrams.items():
            if ngram in max_ref:
                m = min(c, max_ref[ngram])
                match[len(ngram)] += m
                match_info[len(ngram)] += info(ngram) * m
        for n in range(1, MAX_NIST + 1):
            total[n] += max(len(words) - n + 1, 0)
        ref_words += sum(len(r) for r in group)
        ref_count += sum(1 for r in group if r)  # score_segment's $nrefs: non-empty references
        ref_len += _closest_ref_length(len(words), [len(r) for r in group])

    # bleu_score (smoothed, the default)
    log_sum, smooth = 0.0, 1
    for n in range(1, MAX_BLEU + 1):
        if total[n] == 0:
            continue
        if match[n] == 0:
            smooth *= 2
            log_sum += math.log(1 / (smooth * total[n]))
        else:
            log_sum += math.log(match[n] / total[n])
    bp = math.exp(min(0.0, 1 - ref_len / total[1])) if total[1] > 0 else 0.0
    bleu = math.exp(log_sum / MAX_BLEU) * bp

    # nist_score
    refs_per_input = ref_count / len(hyp_toks)
    ratio = total[1] / (ref_words / refs_per_input) if ref_words else 0.0
    if ratio >= 1:
        penalty = 1.0
    elif ratio <= 0:
        penalty = 0.0
    else:
        beta = -math.log(0.5) / math.log(1.5) ** 2
        penalty = math.exp(-beta * math.log(ratio) ** 2)
    nist = sum(match_info[n] / max(total[n], 1) for n in range(1, MAX_NIST + 1)) * penalty
    return {"BLEU": bleu, "NIST": nist}
