"""`prefixtune testset`: the test slice a run decodes and scores: its inputs and their reference groups.

    prefixtune testset --input test.jsonl --refs test.refs.txt [--sample N --seed S] [--first M]
                       --out slice.jsonl --out-refs slice.refs.txt

- `--sample N --seed S`: N inputs drawn at random without replacement, in the order drawn, as the authors drew
  their 1,500-article XSum test subset for the low-data runs (`np.random.seed(S)`, then
  `np.random.choice(len, N, replace=False)`: transformers/examples/seq2seq/lowdata_gen.py:30, :47, :63
  @7544769; their seed is not recorded, ours is params.yaml's data.split_seed);
- `--first M`: then the first M of them (params.yaml's data.test_limit: a smaller, cheaper slice).

The reference file holds groups separated by one blank line, one per input (what linearize writes); the slice
keeps each input with its group. Both outputs are written atomically. Bad input: one line, exit 2.
"""

from pathlib import Path

import numpy as np

from .errors import InputError, where
from .files import atomic_open


def add_arguments(p):
    p.add_argument("--input", required=True, help="the whole test set (JSONL, one input per line)")
    p.add_argument("--refs", required=True, help="its reference groups, separated by blank lines")
    p.add_argument("--sample", type=int, default=None, help="draw this many inputs at random (default: all)")
    p.add_argument("--seed", type=int, default=0, help="the seed of --sample's draw (default 0)")
    p.add_argument("--first", type=int, default=None, help="then keep the first this many (default: all)")
    p.add_argument("--out", required=True, help="the slice's inputs (JSONL)")
    p.add_argument("--out-refs", required=True, help="the slice's reference groups")


def pick(total: int, sample: int | None, seed: int, first: int | None) -> list[int]:
    """Indices of the slice: `sample` of range(total) drawn as numpy's legacy global generator draws them (the
    authors' call), then the first `first`."""
    order = list(range(total)) if sample is None else np.random.RandomState(seed).choice(total, sample,
                                                                                          replace=False).tolist()
    return order if first is None else order[:first]


def read_text(path) -> list[str]:
    """The stripped lines of a UTF-8 file (without its trailing blank lines); InputError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        lines = [line.strip() for line in path.read_text(encoding="utf-8-sig").splitlines()]
    except UnicodeDecodeError:
        raise InputError(f"{path}: not valid UTF-8") from None
    while lines and not lines[-1]:
        lines.pop()
    if not lines:
        raise InputError(f"{path}: empty file")
    return lines


def reference_groups(path) -> list[list[str]]:
    """Groups separated by one blank line, as `prefixtune score` reads them (score.read_groups). Read here, not
    imported from score.py: a slice's code would then include the metrics, and an edit of a metric would cut the
    slices again and, behind them, re-run every decode."""
    groups = [[]]
    for number, line in enumerate(read_text(path), start=1):
        if line:
            groups[-1].append(line)
        elif groups[-1]:
            groups.append([])
        else:
            raise InputError(f"{where(path, number)}: empty reference group (two blank lines in a row, or one at "
                             f"the start)")
    return groups


def run(args):
    for flag, n in (("--sample", args.sample), ("--first", args.first)):
        if n is not None and n < 1:
            raise InputError(f"{flag} {n}: must be a positive number of inputs")
    inputs = [line for line in read_text(args.input) if line]
    groups = reference_groups(args.refs)
    if len(groups) != len(inputs):
        raise InputError(f"{args.refs}: {len(groups)} reference groups for the {len(inputs)} inputs of {args.input}")
    if args.sample is not None and args.sample > len(inputs):
        raise InputError(f"--sample {args.sample}: more than the {len(inputs)} inputs of {args.input}")
    keep = pick(len(inputs), args.sample, args.seed, args.first)
    with atomic_open(Path(args.out)) as f, atomic_open(Path(args.out_refs)) as g:
        f.write("".join(inputs[i] + "\n" for i in keep))
        g.write("\n\n".join("\n".join(groups[i]) for i in keep) + ("\n" if keep else ""))
    print(f"testset: {len(keep)} of the {len(inputs)} inputs of {args.input} -> {args.out}")
