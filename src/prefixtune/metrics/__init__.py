"""Metric families behind `prefixtune score`, one module each, every one matched to an official scorer.

- `mteval`:    BLEU and NIST as NIST's mteval-v13a.pl, the way the E2E challenge's measure_scores.py runs it.
- `multibleu`: BLEU as Moses' multi-bleu.perl (DART and WebNLG).
- `coco`:      PTB tokenization, METEOR 1.5, ROUGE-L and CIDEr through pycocoevalcap (the COCO caption code
               that the E2E script calls), and METEOR 1.5 on raw text (the DART/WebNLG way).
- `ter`:       TER as tercom 0.7.25 (sacrebleu's reimplementation).
- `rouge`:     ROUGE-1/2/L F1 with Google's rouge-score (XSum).

Every scorer takes `hyps: list[str]` and `refs: list[list[str]]` (the references of each input; an empty
string stands for a reference an input lacks in the parallel-file format).
"""
