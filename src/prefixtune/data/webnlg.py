"""WebNLG challenge 2017 XML -> one Item per <entry> (modified triples, all <lex> references).

Triples linearize as `| s : r : o | ...` with entity underscores as spaces (the paper's format).
Every Item carries `category`; `seen` (category among the training categories) is set by the caller,
which derives the seen set from the training files rather than hard-coding it.
"""

import re
from pathlib import Path

from ..errors import InputError, where
from .common import Item, entry_refs, iter_xml_entries, linearize_triples, split_triple

DATASET = "webnlg"  # the dataset this module reads and builds (`prefixtune linearize --dataset`)

TEST_FILE = "test/testdata_with_lex.xml"


def split_files(raw, split):
    """The train or dev XML files (`{split}/Ntriples/*.xml`), ordered by triple count then name."""
    files = list(Path(raw, split).glob("*triples/*.xml"))
    if not files:
        raise InputError(f"{Path(raw, split)}: no WebNLG files (*triples/*.xml); "
                         "run `prefixtune download --dataset webnlg`")
    return sorted(files, key=lambda p: (int(re.match(r"\d+", p.parent.name).group()), p.name))


def read_file(path, split, notes, start=0):
    """Yield Items of one XML file; ids `{split}-{n}` continue from `start`."""
    n = start
    for elem in iter_xml_entries(path):
        eid, category = elem.get("eid"), elem.get("category")
        if not eid or not category:
            raise InputError(f"{where(path, entry=eid or n + 1)}: <entry> lacks 'eid' or 'category'")
        triples = [split_triple(t.text, path, eid) for t in elem.iter("mtriple")]
        if not triples:
            raise InputError(f"{where(path, entry=eid)}: no <mtriple>")
        triples = [(s.replace("_", " "), r, o.replace("_", " ")) for s, r, o in triples]
        refs = entry_refs(elem, path, eid, notes)
        yield Item(f"{split}-{n}", linearize_triples(triples), refs, {"category": category, "eid": eid})
        n += 1


def read(raw, split, notes):
    """All Items of a split: train/dev from the per-size files, test from testdata_with_lex.xml."""
    if split == "test":
        yield from read_file(Path(raw, TEST_FILE), split, notes)
        return
    n = 0
    for path in split_files(raw, split):
        for item in read_file(path, split, notes, start=n):
            n += 1
            yield item


def build(raw, w, args):
    """train/dev/test, test_seen/test_unseen (seen: categories of the training files) and low-data subsets."""
    notes = w.manifest["notes"]
    train = list(read(raw, "train", notes))
    dev = list(read(raw, "dev", notes))
    test = list(read(raw, "test", notes))
    seen = sorted({it.meta["category"] for it in train})
    for it in train + dev + test:
        it.meta["seen"] = it.meta["category"] in seen
    w.manifest["seen_categories"] = seen
    w.manifest["unseen_categories"] = sorted({it.meta["category"] for it in test} - set(seen))
    w.note(f"seen categories (from the training files): {len(seen)}; the nine main ones plus any 1-triple-only ones")
    w.train("train.jsonl", train)
    w.eval("dev", dev)
    w.eval("test", test)
    w.eval("test_seen", [it for it in test if it.meta["seen"]])
    w.eval("test_unseen", [it for it in test if not it.meta["seen"]])
    w.lowdata(train, args)
