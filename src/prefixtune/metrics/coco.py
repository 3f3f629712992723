"""METEOR 1.5, ROUGE-L and CIDEr through pycocoevalcap, as the E2E challenge's measure_scores.py runs them.

The E2E script builds COCO caption objects and calls `COCOEvalCap.evaluate()`: every output and reference is
PTB-tokenized and lowercased by Stanford CoreNLP 3.4.1's PTBTokenizer (`-preserveLines -lowerCase`, the jar
shipped with pycocoevalcap), punctuation tokens are dropped, then METEOR (meteor-1.5.jar, `-stdio -l en -norm`,
corpus score from the summed statistics), ROUGE-L (LCS F-measure with beta = 1.2, best precision and recall over
the references, averaged over inputs) and CIDEr (CIDEr-D: tf-idf of 1-4-grams with document frequencies from
this reference set, Gaussian length penalty, clipping, x10, averaged) are computed. We call the same
pycocoevalcap classes on the same tokenized text, so the definitions are theirs. One deviation: pycocoevalcap's
ROUGE-L divides by zero on an empty output (the E2E script crashes); we score an empty output 0.

DART and WebNLG run METEOR 1.5 on the raw (untokenized, cased) text, `-l en -norm`: `meteor_raw` sends the raw
text to the same jar.

SPICE is never used (it downloads Stanford CoreNLP at run time).
"""

import shutil

from ..errors import InputError


def _need_java():
    if shutil.which("java") is None:
        raise InputError("java: not found on PATH (METEOR 1.5 and the PTB tokenizer are Java programs)")


class Meteor:
    """One running meteor-1.5.jar (`java -jar -Xmx2G meteor-1.5.jar - - -stdio -l en -norm`).

    `segment_stats(hyps, refs)` returns one statistics line per input; `score(stats)` the corpus METEOR of any
    subset of them, computed by the jar from the summed statistics (what pycocoevalcap's compute_score does).
    Starting the JVM takes seconds: build one and reuse it.
    """

    def __init__(self):
        _need_java()
        from pycocoevalcap.meteor.meteor import Meteor as CocoMeteor
        self._m = CocoMeteor()

    def segment_stats(self, hyps, refs):
        with self._m.lock:
            return [self._m._stat(h, [r for r in group if r]) for h, group in zip(hyps, refs)]

    def score(self, stats):
        if not stats:
            return 0.0
        p = self._m.meteor_p
        with self._m.lock:
            p.stdin.write(("EVAL ||| " + " ||| ".join(stats) + "\n").encode())
            p.stdin.flush()
            for _ in stats:  # segment scores
                p.stdout.readline()
            return float(p.stdout.readline().strip())

    def close(self):
        p = self._m.meteor_p
        if p.poll() is None:
            p.stdin.close()
            p.kill()
            p.wait()


def ptb_tokenize(texts: list[str]) -> list[str]:
    """pycocoevalcap's PTBTokenizer: lowercase PTB tokens without punctuation, one string per text."""
    _need_java()
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer
    # The wrapper writes the texts one per line and reads lines back; an empty text must not be last (the
    # tokenizer drops trailing empty lines), so the texts are passed with a non-empty sentinel at the end.
    items = {i: [{"caption": t}] for i, t in enumerate(texts)}
    items[len(texts)] = [{"caption": "sentinel"}]
    out = PTBTokenizer().tokenize(items)
    if len(out) != len(items):
        raise RuntimeError("PTB tokenizer returned fewer lines than it was given")
    return [out[i][0] for i in range(len(texts))]


def coco_scores(hyps: list[str], refs: list[list[str]], meteor: Meteor) -> dict:
    """METEOR, ROUGE_L and CIDEr as the E2E script computes them (0-1, 0-1, CIDEr-D scale)."""
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    refs = [[r for r in group if r] for group in refs]
    flat = list(hyps) + [r for group in refs for r in group]
    tok = ptb_tokenize(flat)
    tok_hyps, pos, tok_refs = tok[:len(hyps)], len(hyps), []
    for group in refs:
        tok_refs.append(tok[pos:pos + len(group)])
        pos += len(group)
    gts = {i: group for i, group in enumerate(tok_refs)}
    res = {i: [h] for i, h in enumerate(tok_hyps)}

    rouge = Rouge()
    rouge_l = sum(rouge.calc_score([h], g) if h.split() else 0.0 for h, g in zip(tok_hyps, tok_refs))
    cider, _ = Cider().compute_score(gts, res)
    return {
        "METEOR": meteor.score(meteor.segment_stats(tok_hyps, tok_refs)),
        "ROUGE_L": rouge_l / len(hyps),
        "CIDEr": float(cider),
    }
