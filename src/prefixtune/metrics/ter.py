"""TER on a 0-1 scale as tercom 0.7.25 with default options (the DART and WebNLG evaluations run
`java -jar tercom.7.25.jar -h HYP -r REF`): sacrebleu's TER, a reimplementation of tercom whose defaults
(case-insensitive, no normalization, punctuation kept) are tercom's. Per input, the edits to the closest
reference over the average reference length, summed over the corpus. tercom prints TER as a fraction;
sacrebleu reports it x100, hence the division.

Speed, written by hand: sacrebleu's TER scores one shift candidate at a time with a pure-Python edit
distance (its `BeamEditDistance`, a tuple per matrix cell): about 270 s for the DART test set. Here
`_shift` is sacrebleu's `_shift` line for line (the same candidates, in the same order, under the same
1000-candidate limit, ranked by the same tuple), except that it scores all of a step's candidates at once:
`_costs` runs sacrebleu's beam dynamic program for a batch of same-length hypotheses with numpy (the same
beam per row, cells outside it infinite, insertions along a row as a running minimum). The trace of the
hypothesis being shifted is read back from its cost rows with sacrebleu's preference (no-op/substitution,
then deletion, then insertion). Inputs are spread over processes.
`tests/test_score.py::test_ter_fast_equals_sacrebleu` checks the result against sacrebleu's own TER.
"""

import functools
import math
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor

import numpy as np
from sacrebleu.metrics import lib_ter
from sacrebleu.metrics.ter import TER

_INF, _BEAM, _LIMIT = lib_ter._INT_INFINITY, lib_ter._BEAM_WIDTH, lib_ter._MAX_SHIFT_CANDIDATES


@functools.lru_cache(maxsize=4096)
def _band(n_h, n_r):
    """Per hypothesis position i = 1..n_h: the reference columns [lo, hi) that sacrebleu's beam computes."""
    ratio = n_r / n_h if n_h else 1
    beam = math.ceil(ratio / 2 + _BEAM) if _BEAM < ratio / 2 else _BEAM
    out = []
    for i in range(1, n_h + 1):
        diag = math.floor(i * ratio)
        out.append((max(0, diag - beam), n_r + 1 if i == n_h else min(n_r + 1, diag + beam)))
    return tuple(out)


def _costs(hyps, ref):
    """The edit-distance matrix (n_h + 1) x K x (n_r + 1) of K same-length hypotheses (int array K x n_h)
    against `ref` (int array), as sacrebleu's beam fills it: infinite outside the beam.

    Computed as u = cost - column, in which a row is one running minimum: substitution/no-op from
    u[i-1, j-1] + differ - 1, deletion from u[i-1, j] + 1, insertion from u[i, j-1] (+1 cost, +1 column)."""
    K, n_h = hyps.shape
    cols = np.arange(len(ref) + 1)
    u = np.full((n_h + 1, K, len(cols)), _INF, dtype=np.int64)
    u[0] = 0  # row 0: insert the reference, cost j at column j
    diag = (hyps[:, :, None] != ref[None, None, :]) - 1  # K x n_h x n_r: -1 where the words match, else 0
    for i, (lo, hi) in enumerate(_band(n_h, len(ref)), start=1):
        up, row, a = u[i - 1], u[i, :, lo:hi], max(lo, 1)
        np.minimum(up[:, a - 1: hi - 1] + diag[:, i - 1, a - 1: hi - 1], up[:, a:hi] + 1, out=row[:, a - lo:])
        if lo == 0:
            row[:, 0] = up[:, 0] + 1  # column 0: deletions only
        np.minimum.accumulate(row, axis=1, out=row)
    # Cells that no path reaches hold about infinity, as in sacrebleu (there, exactly infinity); they are
    # never below a real cost, so the costs and the trace through real cells are the same.
    return u + cols


def _trace(rows, hyp, ref):
    """sacrebleu's trace (ops from the hypothesis' point of view) of one hypothesis, from its cost matrix."""
    trace, i, j = [], len(hyp), len(ref)
    while i > 0 or j > 0:
        if j == 0:
            op = "d"
        elif i == 0:
            op = "i"
        else:  # the first strictly smallest of substitution/no-op, deletion, insertion
            same = hyp[i - 1] == ref[j - 1]
            best, op = rows[i - 1, j - 1] + (not same), " " if same else "s"
            if rows[i - 1, j] + 1 < best:
                best, op = rows[i - 1, j] + 1, "d"
            if rows[i, j - 1] + 1 < best:
                op = "i"
        trace.append(op)
        i, j = (i - 1, j - 1) if op in " s" else (i, j - 1) if op == "i" else (i - 1, j)
    return "".join(reversed(trace))


def _shifted_pairs(words_h, words_r):
    """sacrebleu's `_find_shifted_pairs`, the same triples in the same order, visiting only the reference
    positions that hold the hypothesis word (sacrebleu tries every pair of positions)."""
    where = {}
    for start_r, word in enumerate(words_r):
        where.setdefault(word, []).append(start_r)
    n_h, n_r = len(words_h), len(words_r)
    for start_h, word in enumerate(words_h):
        for start_r in where.get(word, ()):
            if abs(start_r - start_h) > lib_ter._MAX_SHIFT_DIST:
                continue
            length = 0
            while words_h[start_h + length] == words_r[start_r + length] and length < lib_ter._MAX_SHIFT_SIZE:
                length += 1
                yield start_h, start_r, length
                if n_h == start_h + length or n_r == start_r + length:
                    break


def _shift(words_h, words_r, ids_h, ids_r, rows, checked):
    """sacrebleu's `_shift` (same candidates, order, limit and ranking), the candidates scored in one batch.
    `rows`: the cost matrix of `ids_h`. Returns the best shift's (gain, words, ids, cost matrix), the
    candidates checked so far and the edit distance of `words_h`."""
    pre_score = int(rows[-1, len(ids_r)])
    align, ref_err, hyp_err = lib_ter.trace_to_alignment(lib_ter._flip_trace(_trace(rows, ids_h, ids_r)))
    cands = []
    for start_h, start_r, length in _shifted_pairs(words_h, words_r):
        if sum(hyp_err[start_h: start_h + length]) == 0 or sum(ref_err[start_r: start_r + length]) == 0:
            continue
        if start_h <= align[start_r] < start_h + length:
            continue
        prev_idx = -1
        for offset in range(-1, length):
            if start_r + offset == -1:
                idx = 0
            elif start_r + offset in align:
                idx = align[start_r + offset] + 1
            else:
                break
            if idx == prev_idx:
                continue
            prev_idx = idx
            cands.append((start_h, length, idx))
            checked += 1
        if checked >= _LIMIT:
            break
    if not cands:
        return 0, None, None, None, checked, pre_score
    shifted = np.array([lib_ter._perform_shift(ids_h, s, n, t) for s, n, t in cands])
    costs = _costs(shifted, ids_r)
    # sacrebleu ranks (score, length, -start, -target, shifted words); the words never decide, as equal
    # (length, start, target) is the same shift
    best = max((pre_score - int(d), n, -s, -t, k) for k, (d, (s, n, t)) in enumerate(zip(costs[-1, :, -1], cands)))
    s, n, t = cands[best[4]]
    return (best[0], lib_ter._perform_shift(words_h, s, n, t), shifted[best[4]].tolist(), costs[:, best[4]],
            checked, pre_score)


def _edits(words_hyp, words_ref):
    """(edits, reference length): sacrebleu's `translation_edit_rate`."""
    if not words_ref:
        return len(words_hyp), 0
    vocab = {w: k for k, w in enumerate(dict.fromkeys(words_ref + words_hyp))}
    ids_h, ids_r = [vocab[w] for w in words_hyp], np.array([vocab[w] for w in words_ref])
    rows = _costs(np.array(ids_h, dtype=np.int64).reshape(1, -1), ids_r)[:, 0]
    shifts, checked = 0, 0
    while True:
        delta, words, ids, costs, checked, distance = _shift(words_hyp, words_ref, ids_h, ids_r, rows, checked)
        if checked >= _LIMIT or delta <= 0:  # the shift is not made: `distance` is that of words_hyp
            break
        shifts, words_hyp, ids_h, rows = shifts + 1, words, ids, costs
    return shifts + distance, len(words_ref)


def _segment(args):
    """[fewest edits, average reference length] of one input, as sacrebleu's `_compute_segment_statistics`."""
    hyp, refs = args
    metric = TER()
    words_hyp = metric._preprocess_segment(hyp).split()
    stats = [_edits(words_hyp, metric._preprocess_segment(r).split()) for r in refs]
    return [min(e for e, _ in stats), sum(n for _, n in stats) / len(refs)]


def segment_stats(hyps: list[str], refs: list[list[str]], workers: int | None = None) -> list[list[float]]:
    """Per input: [edits, average reference length]; '' marks a missing reference. Sum any subset of them
    with `ter_from_stats`. Inputs are spread over `workers` processes (default: the usable cores)."""
    jobs = [(h, [r for r in g if r]) for h, g in zip(hyps, refs)]
    workers = workers or len(os.sched_getaffinity(0))
    if workers == 1 or len(jobs) < 64:
        return [_segment(j) for j in jobs]
    # fork (where there is one): spawn would re-run a caller's script that lacks `if __name__ == "__main__"`
    fork = "fork" in multiprocessing.get_all_start_methods()
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork" if fork else None)) as pool:
        return list(pool.map(_segment, jobs, chunksize=16))


def ter_from_stats(stats: list[list[float]]) -> float:
    """Corpus TER from per-input stats, as sacrebleu's `_compute_score_from_stats`."""
    edits, ref_len = sum(s[0] for s in stats), sum(s[1] for s in stats)
    return edits / ref_len if ref_len > 0 else (1.0 if edits > 0 else 0.0)


def corpus_ter(hyps: list[str], refs: list[list[str]]) -> float:
    return ter_from_stats(segment_stats(hyps, refs))
