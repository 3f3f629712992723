"""XSum readers: the 1000-article sample (JSONL), the raw release articles, and the BBC News Summary CSV.

Raw articles come as the extraction script's `*.data` files (`[XSUM]URL[XSUM]`, `[XSUM]INTRODUCTION[XSUM]`,
`[XSUM]RESTBODY[XSUM]` sections) or the maintainers' archive of `*.summary` files (`[SN]URL[SN]`,
`[SN]FIRST-SENTENCE[SN]`, `[SN]RESTBODY[SN]`), read loose or straight from the .tar.gz, streaming.
The summary is the introduction (first sentence), the document the rest of the body.
The BBC section of an article is in its URL, e.g. .../www.bbc.co.uk/news/business-34195413 -> news/business.
"""

import csv
import json
import re
import tarfile
from pathlib import Path

from ..errors import InputError, where
from ..files import read_jsonl
from .common import clean

SAMPLE = "test-1000.jsonl"
SPLIT_FILE = "XSum-TRAINING-DEV-TEST-SPLIT-90-5-5.json"
ARCHIVE = "XSUM-EMNLP18-Summary-Data-Original.tar.gz"
BBC_DIR = "bbc_news_summary"
TAG = re.compile(r"^\[(?:XSUM|SN)\]([A-Z-]+)\[(?:XSUM|SN)\]\s*$", re.M)
URL_SECTION = re.compile(r"bbc\.co\.uk/(.+?)[-/]?(\d+)/?$")


def truncate(text, max_tokens):
    """The first `max_tokens` whitespace tokens of `text` (all of it if max_tokens is None)."""
    tokens = text.split()
    return " ".join(tokens if max_tokens is None else tokens[:max_tokens])


def read_sample(path):
    """Yield dicts id, document, summary from the JSONL sample; errors name file:line."""
    for line, row in read_jsonl(path, required=("id", "document", "summary")):
        if not clean(row["summary"]):
            raise InputError(f"{where(path, line)}: empty reference (summary)")
        # An empty document is not an error: the release has a few (photo galleries, e.g. id 32556640).
        yield {"id": str(row["id"]), "document": row["document"], "summary": clean(row["summary"])}


def read_split_ids(path):
    """{'train': set, 'validation': set, 'test': set} from the official split file."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except json.JSONDecodeError as e:
        raise InputError(f"{where(path, e.lineno)}: malformed JSON ({e.msg})") from None
    for key in ("train", "validation", "test"):
        if not isinstance(data.get(key), list):
            raise InputError(f"{where(path, entry=key)}: missing field '{key}' (a list of article ids)")
    return {k: set(map(str, data[k])) for k in ("train", "validation", "test")}


def parse_article(text, name):
    """Split one article file into its tagged sections -> dict id, url, section, document, summary."""
    parts = TAG.split(text)
    sections = {parts[i]: parts[i + 1].strip() for i in range(1, len(parts) - 1, 2)}
    url = sections.get("URL", "").strip()
    summary = clean(sections.get("INTRODUCTION", sections.get("FIRST-SENTENCE", "")))
    document = sections.get("RESTBODY", "")
    if not url:
        raise InputError(f"{name}: missing field 'URL'")
    if not summary:
        raise InputError(f"{name}: empty reference (INTRODUCTION/FIRST-SENTENCE)")
    if "RESTBODY" not in sections:
        raise InputError(f"{name}: missing field 'RESTBODY'")
    m = URL_SECTION.search(url)
    return {"id": m.group(2) if m else Path(name).stem, "url": url, "section": m.group(1) if m else None,
            "document": document, "summary": summary}


def _decode(data, name):
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{name}: not valid UTF-8") from None


def article_files(raw):
    """Loose article files under `raw` (`*.data`, `*.summary`), sorted."""
    return sorted(p for pattern in ("**/*.data", "**/*.summary") for p in Path(raw).glob(pattern))


def iter_articles(raw):
    """Yield every raw article under `raw`: loose files, then the archive if present (streamed)."""
    for path in article_files(raw):
        yield parse_article(_decode(path.read_bytes(), path), path)
    archive = Path(raw, ARCHIVE)
    if archive.is_file():
        try:
            with tarfile.open(archive, "r|gz") as tar:
                for member in tar:
                    if member.isfile() and member.name.endswith(".summary"):
                        name = f"{archive} [{member.name}]"
                        yield parse_article(_decode(tar.extractfile(member).read(), name), name)
        except (tarfile.TarError, EOFError, OSError) as e:
            raise InputError(f"{archive}: corrupt archive ({e})") from None


def news_topic(section):
    """Topic of a BBC section for the paper's splits: 'sport', ('news', sub) or None (other sites)."""
    if not section:
        return None
    top, _, sub = section.strip("/").partition("/")
    if top == "sport":
        return "sport"
    if top == "news" and sub:
        return ("news", sub)
    return None


def read_bbc(path):
    """Yield (line, document, summary, category) from a BBC News Summary CSV."""
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    line = 1
    try:
        with open(path, encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f, strict=True)
            for col in ("document", "summary", "categories"):
                if col not in (reader.fieldnames or []):
                    raise InputError(f"{where(path, 1)}: missing column '{col}'")
            line = reader.line_num + 1
            for row in reader:
                if None in row or None in row.values():
                    raise InputError(f"{where(path, line)}: wrong number of fields")
                if not clean(row["summary"]):
                    raise InputError(f"{where(path, line)}: empty reference (summary)")
                yield line, row["document"], clean(row["summary"]), row["categories"].strip()
                line = reader.line_num + 1
    except csv.Error as e:
        raise InputError(f"{where(path, line)}: malformed CSV ({e})") from None
    except UnicodeDecodeError:
        raise InputError(f"{where(path, line)}: not valid UTF-8") from None
