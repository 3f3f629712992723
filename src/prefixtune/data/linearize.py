"""`prefixtune linearize`: a raw release -> source/target JSONL, reference files and experiment splits.

Writes into --out (built in a temporary folder, renamed into place only when every file is done):
  {train,dev,test}.jsonl   train: one line per (input, reference); dev/test: one line per distinct input
                           (target = first reference). Lines: id, source, target, refs (+ WebNLG category, seen)
  {dev,test}.refs.txt      reference groups separated by blank lines, in input order (E2E challenge format)
  lowdata/{train,dev}-n{SIZE}-s{SAMPLE}.jsonl   low-data subsets (see splits.py; XSum's dev from validation)
  WebNLG: test_seen.* and test_unseen.* (scores S and U; test.* is A); seen = category in the training files
  XSum:   extrapolation/{news-to-sports,within-news,bbc-news-to-sports}/{train,test}.jsonl (+ test.refs.txt)
          built only from sources that carry topics; otherwise the split is skipped and the reason printed
  manifest.json            line counts, skipped splits with reasons, notes
"""

from pathlib import Path

from tqdm import tqdm

from ..errors import InputError
from ..files import atomic_dir, write_json, write_jsonl
from . import DATASETS, jsonl, module
from .common import Item
from .splits import lowdata

HIDDEN = ("eid",)  # reader bookkeeping, kept out of the JSONL lines


def add_arguments(p):
    p.add_argument("--dataset", required=True, choices=DATASETS + ("jsonl",),
                   help="a built-in dataset, or jsonl: a user's own files (--train, --dev, --test)")
    p.add_argument("--raw", help="folder written by `prefixtune download` (built-in datasets)")
    for split in jsonl.SPLITS:
        p.add_argument(f"--{split}", help=f"--dataset jsonl: the {split} file (see prefixtune.data.jsonl)")
    p.add_argument("--out", required=True, help="output folder (replaced atomically)")
    p.add_argument("--sizes", type=int, nargs="+", default=[50, 100, 200, 500], help="low-data sizes")
    p.add_argument("--samples", type=int, default=5, help="low-data subsets per size")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-source-tokens", type=int, default=None,
                   help="XSum: keep the first N whitespace tokens of each document (default: all)")


def _row(item, target, refs=None, ref_index=None):
    """One JSONL line; train lines get id `{input id}-r{reference index}` so ids stay unique."""
    row = {"id": item.id if ref_index is None else f"{item.id}-r{ref_index}",
           "source": item.source, "target": target, "refs": refs or item.refs}
    row.update((k, v) for k, v in item.meta.items() if k not in HIDDEN)
    return row


class Writer:
    """Writes the output files into the temporary folder and keeps the manifest."""

    def __init__(self, root, dataset):
        self.root = Path(root)
        self.manifest = {"dataset": dataset, "counts": {}, "skipped": {}, "notes": []}

    def _jsonl(self, name, rows):
        self.manifest["counts"][name] = write_jsonl(self.root / name, rows)

    def train(self, name, items):
        self._jsonl(name, (_row(it, ref, it.refs, j) for it in tqdm(items, desc=name, disable=None)
                           for j, ref in enumerate(it.refs)))

    def pairs(self, name, pairs):
        """Train-format lines for (item, chosen refs) pairs."""
        self._jsonl(name, (_row(it, ref, it.refs, it.refs.index(ref)) for it, refs in pairs for ref in refs))

    def eval(self, name, items, refs_file=True):
        items = list(items)
        self._jsonl(name + ".jsonl", (_row(it, it.refs[0]) for it in items))
        if refs_file:
            with open(self.root / (name + ".refs.txt"), "w", encoding="utf-8") as f:
                f.write("\n\n".join("\n".join(it.refs) for it in items) + ("\n" if items else ""))

    def lowdata(self, items, args, dev_items=None):
        for size in args.sizes:
            for s in range(args.samples):
                try:
                    train, dev = lowdata(items, size, s, args.seed, dev_items=dev_items)
                except ValueError as e:
                    self.skip(f"lowdata n{size}", str(e))
                    break
                self.pairs(f"lowdata/train-n{size}-s{s}.jsonl", train)
                self.eval(f"lowdata/dev-n{size}-s{s}", [Item(it.id, it.source, refs, it.meta) for it, refs in dev],
                          refs_file=False)

    def skip(self, split, reason):
        self.manifest["skipped"][split] = reason

    def note(self, text):
        self.manifest["notes"].append(text)


def run(args):
    out = Path(args.out)
    files = {split: getattr(args, split) for split in jsonl.SPLITS}
    if args.dataset == "jsonl":
        if args.raw:
            raise InputError("--raw: not for --dataset jsonl (name the files with --train, --dev, --test)")
        builder, source = jsonl.build, files
    else:
        given = [f"--{k}" for k, v in files.items() if v]
        if given:
            raise InputError(f"{given[0]}: only for --dataset jsonl")
        if not args.raw:
            raise InputError(f"--raw: required for --dataset {args.dataset}")
        source = Path(args.raw)
        if not source.is_dir():
            raise InputError(f"{source}: no such folder; run `prefixtune download --dataset {args.dataset} "
                             f"--out {source}`")
        builder = module(args.dataset).build  # each dataset's module builds its files
    with atomic_dir(out) as tmp:
        w = Writer(tmp, args.dataset)
        builder(source, w, args)
        write_json(tmp / "manifest.json", w.manifest)
    m = w.manifest
    for name, count in m["counts"].items():
        if not name.startswith("lowdata/"):
            print(f"{out / name}: {count} lines")
    low = [k for k in m["counts"] if k.startswith("lowdata/")]
    if low:
        print(f"{out / 'lowdata'}: {len(low)} files")
    for split, reason in m["skipped"].items():
        print(f"skipped {split}: {reason}")
    for note in m["notes"]:
        print(f"note: {note}")
