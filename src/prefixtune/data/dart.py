"""DART v1.1.1 (JSON or XML release files) -> one Item per entry, triples as `| s : r : o | ...`.

The JSON files are a list of {tripleset: [[s, r, o], ...], annotations: [{text}, ...]}; the XML files
use the WebNLG layout. For each split the JSON file is read if present, else the XML one.
"""

import json
from pathlib import Path

from ..errors import InputError, where
from .common import Item, clean, entry_refs, iter_xml_entries, linearize_triples, split_triple

DATASET = "dart"  # the dataset this module reads and builds (`prefixtune linearize --dataset`)

NAME = "dart-v1.1.1-full-{split}.{ext}"


def find(raw, split):
    """The release file for a split (JSON preferred), or None."""
    for ext in ("json", "xml"):
        path = Path(raw, NAME.format(split=split, ext=ext))
        if path.is_file():
            return path
    return None


def read_xml(path, split, notes):
    for n, elem in enumerate(iter_xml_entries(path)):
        eid = elem.get("eid") or str(n + 1)
        triples = [split_triple(t.text, path, eid) for t in elem.iter("mtriple")]
        if not triples:
            raise InputError(f"{where(path, entry=eid)}: no <mtriple>")
        yield Item(f"{split}-{n}", linearize_triples(triples), entry_refs(elem, path, eid, notes),
                   {"eid": eid})


def read_json(path, split, notes):
    # The release is one JSON array (not JSON lines), so it is parsed whole (a few MB per split).
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise InputError(f"{where(path, e.lineno)}: malformed JSON ({e.msg})") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not valid UTF-8") from None
    if not isinstance(data, list):
        raise InputError(f"{path}: expected a JSON list of entries")
    for n, entry in enumerate(data):
        if not isinstance(entry, dict):
            raise InputError(f"{where(path, entry=n)}: entry is not an object")
        for key in ("tripleset", "annotations"):
            if key not in entry:
                raise InputError(f"{where(path, entry=n)}: missing field '{key}'")
        triples = []
        for t in entry["tripleset"]:
            if not (isinstance(t, list) and len(t) == 3 and all(isinstance(x, str) and x.strip() for x in t)):
                raise InputError(f"{where(path, entry=n)}: triple is not [subject, relation, object]: {t!r}")
            triples.append(tuple(x.strip() for x in t))
        if not triples:
            raise InputError(f"{where(path, entry=n)}: empty 'tripleset'")
        texts = [clean(a.get("text")) if isinstance(a, dict) else "" for a in entry["annotations"]]
        refs = [t for t in texts if t]
        if not refs:
            raise InputError(f"{where(path, entry=n)}: empty reference (no non-empty annotation 'text')")
        if len(refs) < len(texts):
            notes.append(f"{where(path, entry=n)}: dropped {len(texts) - len(refs)} empty annotation(s)")
        yield Item(f"{split}-{n}", linearize_triples(triples), refs, {"eid": str(n)})


def read(raw, split, notes):
    path = find(raw, split)
    if path is None:
        raise InputError(f"{Path(raw, NAME.format(split=split, ext='json'))}: no such file (nor .xml)")
    yield from (read_json if path.suffix == ".json" else read_xml)(path, split, notes)


def build(raw, w, args):
    """train (when the release has it), dev, test and the low-data subsets."""
    notes = w.manifest["notes"]
    if find(raw, "train") is None:
        w.skip("train", f"no DART training file in {raw} (dart-v1.1.1-full-train.json): train.jsonl and "
                        "low-data splits not written")
        train = None
    else:
        train = list(read(raw, "train", notes))
        w.train("train.jsonl", train)
    w.eval("dev", read(raw, "dev", notes))
    w.eval("test", read(raw, "test", notes))
    if train is not None:
        w.lowdata(train, args)
