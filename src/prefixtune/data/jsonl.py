"""A user's own task: train/dev/test JSONL files named in params.yaml, through the same DAG.

    params.yaml:  datasets:
                    mytask: {files: {train: my/train.jsonl, dev: my/dev.jsonl, test: my/test.jsonl},
                             task: e2e, model: smollm2-135m}

Each line is a JSON object with `source` and `target` (non-empty strings) and, optionally, `refs`: all
references of that input (a list of non-empty strings; default [target]). Training lines with the same
source are one input with several references (as E2E's are), so low-data sizes count distinct inputs;
dev and test keep one input per line, in file order. `dev` is optional.

`task` picks one of the project's scorers (`prefixtune score --task`):
  e2e   the E2E challenge's five metrics (BLEU, NIST, METEOR, ROUGE-L, CIDEr)
  dart  multi-bleu BLEU (cased), METEOR, TER
  xsum  ROUGE-1/2/L (rouge-score, stemming)

Nothing is downloaded: `prefixtune linearize --dataset jsonl --train F --dev F --test F --out data/NAME`
writes the same files as for the built-in datasets (train/dev/test.jsonl, *.refs.txt, lowdata/), and the
DAG's linearize step depends on the user's files.
"""

from pathlib import Path

from ..errors import InputError, where
from ..files import read_jsonl
from .common import Item

SCORERS = ("e2e", "dart", "xsum")
SPLITS = ("train", "dev", "test")


def _text(value, path, line, key):
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{where(path, line)}: '{key}' must be a non-empty string")
    return value.strip()


def read(path, split) -> list[Item]:
    """The inputs of one file; train lines with equal sources merge into one input."""
    items, by_source = [], {}
    for line, row in read_jsonl(path, required=("source", "target")):
        source = _text(row["source"], path, line, "source")
        target = _text(row["target"], path, line, "target")
        refs = row.get("refs", [target])
        if not isinstance(refs, list) or not refs:
            raise InputError(f"{where(path, line)}: 'refs' must be a non-empty list of strings")
        refs = [_text(r, path, line, "refs") for r in refs]
        if split == "train" and source in by_source:
            by_source[source].refs.append(target)
            continue
        item = Item(f"{Path(path).stem}-{line}", source, refs if split != "train" else [target], {})
        items.append(item)
        by_source[source] = item
    if not items:
        raise InputError(f"{path}: no lines (empty file)")
    return items


def build(files: dict, w, args):
    """The linearize builder: `files` maps train/dev/test to paths (dev may be missing)."""
    for split in ("train", "test"):
        if not files.get(split):
            raise InputError(f"--{split}: required for --dataset jsonl")
    items = {split: read(files[split], split) for split in SPLITS if files.get(split)}
    w.train("train.jsonl", items["train"])
    if "dev" in items:
        w.eval("dev", items["dev"])
    else:
        w.skip("dev", "no --dev file")
    w.eval("test", items["test"])
    w.lowdata(items["train"], args)
    short = {k: v for k, v in w.manifest["skipped"].items() if k.startswith("lowdata")}
    if short:  # the grid asked for these sizes: training on them would fail later, less clearly
        split, reason = next(iter(short.items()))
        raise InputError(f"{files['train']}: {len(items['train'])} distinct inputs, too few for {split} ({reason})")
    w.note(f"user data: {', '.join(f'{k}={v}' for k, v in files.items() if v)}")
