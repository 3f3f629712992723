"""TER on a 0-1 scale as tercom 0.7.25 with default options (the DART and WebNLG evaluations run
`java -jar tercom.7.25.jar -h HYP -r REF`): sacrebleu's TER, a reimplementation of tercom whose defaults
(case-insensitive, no normalization, punctuation kept) are tercom's. Per input, the edits to the closest
reference over the average reference length, summed over the corpus. tercom prints TER as a fraction; sacrebleu
reports it x100, hence the division.
"""

from sacrebleu.metrics import TER


def corpus_ter(hyps: list[str], refs: list[list[str]]) -> float:
    width = max(len(g) for g in refs)
    # sacrebleu takes parallel reference streams; None marks an input's missing reference.
    streams = [[(g[i] if i < len(g) and g[i] else None) for g in refs] for i in range(width)]
    return TER().corpus_score(list(hyps), streams).score / 100
