"""`prefixtune score`: score system outputs against references with each task's official metrics.

    prefixtune score --task {e2e,webnlg,dart,xsum} --hyp H --ref R [--ref R2 ...] [--categories C]
                     [--json] [--out scores.json]

Inputs (UTF-8; a leading BOM is ignored; lines are stripped of surrounding whitespace):
- `--hyp`: one output per line, in input order (an empty line is an empty output, scored as the official
  scripts score it; a file of N blank lines is N empty outputs).
- one `--ref`: reference groups separated by one blank line, in input order (the E2E challenge format, what
  linearize writes as {dev,test}.refs.txt). As in the E2E script, a file with no blank line whose line count
  equals the hypotheses' is read as one reference per input.
- several `--ref`: parallel files with one reference per line (the multi-bleu format); a line may be empty
  where an input has fewer references.
- `--categories` (webnlg only): the test.jsonl written by linearize (its `seen` field: true/false or
  "seen"/"unseen"), or a text file with one line per input holding `seen`, `unseen` or a WebNLG 2017
  category name. Adds S(een)/U(nseen)/A(ll) variants of every metric: BLEU_S, BLEU_U, BLEU_A, ...

Metrics (keys of the JSON object):
- e2e: BLEU (0-1) and NIST as mteval-v13a.pl; METEOR, ROUGE_L, CIDEr as the COCO caption code, all as the E2E
  challenge's measure_scores.py (see prefixtune.metrics.mteval and .coco).
- dart: BLEU as multi-bleu.perl (0-100, cased), METEOR 1.5 on raw text (0-1), TER as tercom (0-1).
- webnlg: the same with `multi-bleu.perl -lc` (lowercased BLEU), as the WebNLG challenge evaluation.
- xsum: rouge1, rouge2, rougeL F1 x 100 (rouge-score, stemming).

Prints one `NAME: value` line per metric; with --json the last line of output is the JSON object.
`--out` writes the same object atomically (a DVC metrics file). Bad input: one-line error, exit 2.
"""

import json
from pathlib import Path

from .errors import InputError, where
from .files import read_jsonl, write_json

TASKS = ("e2e", "webnlg", "dart", "xsum")
# WebNLG 2017 test categories: the 10 seen in training, the 5 unseen ones.
SEEN_CATEGORIES = {"Airport", "Astronaut", "Building", "City", "ComicsCharacter", "Food", "Monument",
                   "SportsTeam", "University", "WrittenWork"}
UNSEEN_CATEGORIES = {"Athlete", "Artist", "CelestialBody", "MeanOfTransportation", "Politician"}


def add_arguments(p):
    p.add_argument("--task", required=True, choices=TASKS)
    p.add_argument("--hyp", required=True, type=Path, help="system outputs, one per line")
    p.add_argument("--ref", required=True, type=Path, action="append",
                   help="one file of blank-line-separated reference groups, or several parallel files")
    p.add_argument("--categories", type=Path,
                   help="webnlg: test.jsonl (field 'seen') or one seen/unseen/category per line")
    p.add_argument("--json", action="store_true", help="print the scores as JSON on the last line")
    p.add_argument("--out", type=Path, help="also write the scores as JSON to this file (atomically)")


# ----------------------------------------------------------------------------------------- reading

def read_lines(path, blank_ok=False) -> list[str]:
    """Stripped lines of a UTF-8 text file; InputError for a missing or non-UTF-8 file, for a file with no
    lines, and (unless `blank_ok`: hypotheses, where a blank line is an empty output) for one with only
    blank lines."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    data = path.read_bytes()
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    out = []
    for number, raw in enumerate(lines, start=1):
        try:
            out.append(raw.decode("utf-8").strip())
        except UnicodeDecodeError:
            raise InputError(f"{where(path, number)}: not valid UTF-8") from None
    if not out or not (blank_ok or any(out)):
        raise InputError(f"{path}: empty file")
    return out


def read_groups(path) -> list[list[str]]:
    """Reference groups separated by one blank line (trailing blank lines are ignored)."""
    lines = read_lines(path)
    while lines and not lines[-1]:
        lines.pop()
    groups, current = [], []
    for number, line in enumerate(lines, start=1):
        if line:
            current.append(line)
        elif current:
            groups.append(current)
            current = []
        else:
            raise InputError(f"{where(path, number)}: empty reference group (blank line at the start of the "
                             f"file or two blank lines in a row)")
    groups.append(current)
    return groups


def read_references(paths, n_hyps) -> list[list[str]]:
    """The references of each input: a list of groups (parallel files: '' where a reference is missing)."""
    if len(paths) == 1:
        groups = read_groups(paths[0])
        if len(groups) == 1 and n_hyps > 1 and len(groups[0]) == n_hyps:
            groups = [[r] for r in groups[0]]  # a single-reference file (measure_scores.py does the same)
        if len(groups) != n_hyps:
            raise InputError(f"{paths[0]}: {len(groups)} reference groups, but the hypothesis file has "
                             f"{n_hyps} lines")
        return groups
    columns = []
    for path in paths:
        lines = read_lines(path)
        if len(lines) != n_hyps:
            raise InputError(f"{path}: {len(lines)} lines, but the hypothesis file has {n_hyps} lines")
        columns.append(lines)
    groups = [list(g) for g in zip(*columns)]
    for number, group in enumerate(groups, start=1):
        if not any(group):
            raise InputError(f"{where(paths[0], number)}: no reference for this input in any --ref file")
    return groups


def read_seen(path, n_hyps) -> list[bool]:
    """Seen (True) / unseen (False) per input, from test.jsonl or a one-flag-per-line text file."""
    path = Path(path)
    flags = []
    if path.suffix == ".jsonl":
        for number, row in read_jsonl(path, required=("seen",)):
            value = row["seen"]
            if isinstance(value, str) and value.lower() in ("seen", "unseen"):
                value = value.lower() == "seen"
            if not isinstance(value, bool):
                raise InputError(f"{where(path, number)}: 'seen' must be true/false or seen/unseen")
            flags.append(value)
    else:
        for number, line in enumerate(read_lines(path), start=1):
            if line.lower() in ("seen", "unseen"):
                flags.append(line.lower() == "seen")
            elif line in SEEN_CATEGORIES or line in UNSEEN_CATEGORIES:
                flags.append(line in SEEN_CATEGORIES)
            else:
                raise InputError(f"{where(path, number)}: expected 'seen', 'unseen' or a WebNLG category, "
                                 f"got {line!r}")
    if len(flags) != n_hyps:
        raise InputError(f"{path}: {len(flags)} entries, but the hypothesis file has {n_hyps} lines")
    return flags


# ----------------------------------------------------------------------------------------- scoring

def score(task, hyps, refs, seen=None, meteor=None) -> dict:
    """All metrics of `task` for `hyps` against `refs` (see the module docstring). `meteor`: a running
    prefixtune.metrics.coco.Meteor to reuse (one is started, and stopped, otherwise)."""
    if task == "xsum":
        from .metrics.rouge import corpus_rouge
        return corpus_rouge(hyps, refs)
    from .metrics.coco import Meteor
    own = meteor is None
    meteor = meteor or Meteor()
    try:
        if task == "e2e":
            from .metrics.coco import coco_scores
            from .metrics.mteval import bleu_nist
            out = bleu_nist(hyps, refs)
            out.update(coco_scores(hyps, refs, meteor))
            return {k: out[k] for k in ("BLEU", "NIST", "METEOR", "ROUGE_L", "CIDEr")}
        return _data_to_text(task, hyps, refs, seen, meteor)
    finally:
        if own:
            meteor.close()


def _data_to_text(task, hyps, refs, seen, meteor):
    from .metrics.multibleu import corpus_bleu
    from .metrics.ter import segment_stats, ter_from_stats
    lowercase = task == "webnlg"  # WebNLG challenge: multi-bleu.perl -lc; DART: cased
    stats = meteor.segment_stats(hyps, refs)
    ter_stats = segment_stats(hyps, refs)  # per input, once: the S/U/A parts are sums of them

    def metrics(index):
        h, r = [hyps[i] for i in index], [refs[i] for i in index]
        if not index:
            return {"BLEU": None, "METEOR": None, "TER": None}
        return {"BLEU": corpus_bleu(h, r, lowercase)["BLEU"],
                "METEOR": meteor.score([stats[i] for i in index]),
                "TER": ter_from_stats([ter_stats[i] for i in index])}

    everything = list(range(len(hyps)))
    out = metrics(everything)
    if seen is not None:
        parts = {"S": [i for i in everything if seen[i]], "U": [i for i in everything if not seen[i]],
                 "A": everything}
        whole = dict(out)
        for suffix, index in parts.items():
            part = whole if suffix == "A" else metrics(index)
            for name, value in part.items():
                out[f"{name}_{suffix}"] = value
    return out


def run(args):
    if args.categories is not None and args.task != "webnlg":
        raise InputError(f"{args.categories}: --categories is for --task webnlg only")
    hyps = read_lines(args.hyp, blank_ok=True)
    refs = read_references(args.ref, len(hyps))
    seen = read_seen(args.categories, len(hyps)) if args.categories is not None else None
    scores = score(args.task, hyps, refs, seen)
    for name, value in scores.items():
        print(f"{name}: {'n/a' if value is None else f'{value:.4f}'}")
    if args.out is not None:
        write_json(args.out, scores)
    if args.json:
        print(json.dumps(scores, sort_keys=False))
