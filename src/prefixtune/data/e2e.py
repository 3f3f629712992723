"""E2E NLG challenge CSV (`mr`,`ref`) -> one Item per distinct MR, references in file order.

MR `name[The Eagle], eatType[coffee shop]` linearizes as the paper's `name : The Eagle | Type : coffee shop`.
"""

import csv
import re
from pathlib import Path

from ..errors import InputError, where
from .common import Item, clean

DATASET = "e2e"  # the dataset this module reads and builds (`prefixtune linearize --dataset`)

FILES = {"train": "trainset.csv", "dev": "devset.csv", "test": "testset_w_refs.csv"}
# The paper's attribute names (as in the prefix-tuning repo's E2E source files).
KEYS = {"eatType": "Type", "priceRange": "price", "familyFriendly": "family friendly"}
SLOT = re.compile(r"\s*([^\[\],]+?)\s*\[([^\]]*)\]\s*(?:,|$)")


def linearize_mr(mr, path, line):
    """'name[X], eatType[pub]' -> 'name : X | Type : pub'."""
    slots, pos = [], 0
    while pos < len(mr):
        m = SLOT.match(mr, pos)
        if not m:
            raise InputError(f"{where(path, line)}: malformed MR {mr!r}")
        slots.append(f"{KEYS.get(m.group(1), m.group(1))} : {m.group(2).strip()}")
        pos = m.end()
    if not slots:
        raise InputError(f"{where(path, line)}: empty MR")
    return " | ".join(slots)


def rows(path):
    """Yield (line, mr, ref) from an E2E CSV, streaming; errors name file:line."""
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    line = 1
    try:
        # utf-8-sig: the official test file starts with a BOM.
        with open(path, encoding="utf-8-sig", newline="") as f:
            reader = csv.reader(f, strict=True)
            header = next(reader, None)
            if header is None:
                raise InputError(f"{where(path, 1)}: empty file, expected columns mr,ref")
            for col in ("mr", "ref"):
                if col not in header:
                    raise InputError(f"{where(path, 1)}: missing column '{col}' (header: {','.join(header)})")
            i_mr, i_ref = header.index("mr"), header.index("ref")
            line = reader.line_num + 1
            for row in reader:
                if row:
                    if len(row) != len(header):
                        raise InputError(f"{where(path, line)}: {len(row)} fields, expected {len(header)}")
                    ref = clean(row[i_ref])
                    if not ref:
                        raise InputError(f"{where(path, line)}: empty reference")
                    yield line, row[i_mr].strip(), ref
                line = reader.line_num + 1
    except csv.Error as e:
        raise InputError(f"{where(path, line)}: malformed CSV ({e})") from None
    except UnicodeDecodeError:
        raise InputError(f"{where(path, line)}: not valid UTF-8") from None


def read(path, split):
    """Items in order of each MR's first appearance; ids `{split}-{index}`."""
    groups = {}
    for line, mr, ref in rows(path):
        if mr not in groups:
            groups[mr] = Item(f"{split}-{len(groups)}", linearize_mr(mr, path, line), [])
        groups[mr].refs.append(ref)
    yield from groups.values()


def build(raw, w, args):
    """train/dev/test and the low-data subsets from the release's three CSV files (`w`: linearize.Writer)."""
    items = {split: list(read(Path(raw, name), split)) for split, name in FILES.items()}
    w.train("train.jsonl", items["train"])
    w.eval("dev", items["dev"])
    w.eval("test", items["test"])
    w.lowdata(items["train"], args)
