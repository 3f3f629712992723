"""What every reader yields, and the pieces shared by the triple datasets (WebNLG, DART)."""

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from ..errors import InputError, where


@dataclass
class Item:
    """One distinct input with all of its references; `meta` holds extra fields (category, seen, topic)."""

    id: str
    source: str
    refs: list
    meta: dict = field(default_factory=dict)


def clean(text) -> str:
    """Collapse all whitespace (newlines included) to single spaces: references live on one line."""
    return " ".join((text or "").split())


def linearize_triples(triples) -> str:
    """`| s : r : o | s2 : r2 : o2`, the paper's table linearization for WebNLG and DART."""
    return " ".join(f"| {s} : {r} : {o}" for s, r, o in triples)


def split_triple(text, path, entry):
    """'s | r | o' -> (s, r, o); the object may itself contain ' | '."""
    parts = [p.strip() for p in (text or "").split(" | ", 2)]
    if len(parts) != 3 or not all(parts):
        raise InputError(f"{where(path, entry=entry)}: triple is not 'subject | relation | object': {text!r}")
    return tuple(parts)


def iter_xml_entries(path):
    """Yield each <entry> element of a WebNLG/DART benchmark file, streaming (iterparse).

    Malformed XML becomes an InputError naming file:line. Each entry is cleared after use.
    """
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        for _, elem in ET.iterparse(path, events=("end",)):
            if elem.tag == "entry":
                yield elem
                elem.clear()
    except ET.ParseError as e:
        raise InputError(f"{where(path, e.position[0])}: malformed XML ({e})") from None


def entry_refs(elem, path, entry, notes):
    """The non-empty <lex> texts of an entry. An entry with none is an error; an empty <lex> beside
    non-empty ones (the official DART test file has one, Id116) is dropped and recorded in `notes`."""
    lexes = elem.findall("lex")
    refs = [clean(lex.text) for lex in lexes]
    kept = [r for r in refs if r]
    if not kept:
        raise InputError(f"{where(path, entry=entry)}: empty reference (no non-empty <lex>)")
    if len(kept) < len(refs):
        notes.append(f"{where(path, entry=entry)}: dropped {len(refs) - len(kept)} empty <lex>")
    return kept
