"""BLEU (0-100) exactly as Moses' scripts/generic/multi-bleu.perl, the BLEU of the DART and WebNLG evaluations.

multi-bleu.perl does no tokenization: it splits on whitespace (`split`). With `-lc` it applies Perl's `lc` to
byte strings, which folds ASCII letters only (the script reads its files without a UTF-8 layer), so we lowercase
ASCII letters only. Per input it takes the closest reference length (ties to the shorter), clips n-gram
counts by the maximum count in any one reference, and at corpus level uses no smoothing: an order with no
match makes BLEU 0. References are parallel files, so an input with fewer references than another has empty
lines in some files, and those are references of length 0 to the script: they can be the "closest" length
for a very short output. We keep that: groups are padded to the largest group size with empty references.

sacrebleu cannot stand in: its 13a/none tokenizers differ in details (`none` splits on Unicode whitespace),
it drops empty references, and its `lowercase` folds non-ASCII letters.
The WebNLG challenge runs `multi-bleu.perl -lc`; DART's run_eval_on_dart.sh runs it without `-lc`.
"""

import math
import re
from collections import Counter

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_SPACE = re.compile(r"[ \t\n\r\f\v]+")  # Perl's \s on byte strings


def _words(text, lowercase):
    if lowercase:
        text = text.translate(_ASCII_LOWER)
    return [w for w in _SPACE.split(text) if w]


def _ngrams(words, n):
    return Counter(tuple(words[i:i + n]) for i in range(len(words) - n + 1))


def corpus_bleu(hyps: list[str], refs: list[list[str]], lowercase: bool) -> dict:
    """{'BLEU': 0-100, 'precisions': [p1..p4] (0-100), 'BP', 'hyp_len', 'ref_len'} as multi-bleu.perl."""
    width = max(len(g) for g in refs)
    correct, total = [0] * 5, [0] * 5
    hyp_len = ref_len = 0
    for hyp, group in zip(hyps, refs):
        words = _words(hyp, lowercase)
        group = list(group) + [""] * (width - len(group))
        hyp_ngrams = [_ngrams(words, n) for n in range(5)]
        closest_diff, closest_len = 9999, 9999
        max_ref = [dict() for _ in range(5)]  # largest count of each output n-gram in any one reference
        for ref in group:
            rw = _words(ref, lowercase)
            diff = abs(len(words) - len(rw))
            if diff < closest_diff:
                closest_diff, closest_len = diff, len(rw)
            elif diff == closest_diff and len(rw) < closest_len:
                closest_len = len(rw)
            for n in range(1, min(4, len(rw)) + 1):
                ref_ngrams = _ngrams(rw, n)
                for ngram in hyp_ngrams[n]:
                    max_ref[n][ngram] = max(max_ref[n].get(ngram, 0), ref_ngrams.get(ngram, 0))
        hyp_len += len(words)
        ref_len += closest_len
        for n in range(1, 5):
            for ngram, c in hyp_ngrams[n].items():
                total[n] += c
                correct[n] += min(c, max_ref[n].get(ngram, 0))
    prec = [correct[n] / total[n] if total[n] else 0.0 for n in range(1, 5)]
    if ref_len == 0:
        return {"BLEU": 0.0, "precisions": [0.0] * 4, "BP": 0.0, "hyp_len": hyp_len, "ref_len": 0}
    if hyp_len == 0:  # the Perl script dies dividing by zero here
        bp = 0.0
    else:
        bp = math.exp(1 - ref_len / hyp_len) if hyp_len < ref_len else 1.0
    # my_log: log(0) is -9999999999, so any order without a match gives BLEU 0.
    bleu = bp * math.exp(sum(math.log(p) if p else -9999999999 for p in prec) / 4)
    return {"BLEU": 100 * bleu, "precisions": [100 * p for p in prec], "BP": bp,
            "hyp_len": hyp_len, "ref_len": ref_len}
