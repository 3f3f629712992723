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

from tqdm import tqdm

from ..errors import InputError, where
from ..files import read_jsonl
from .common import Item, clean

DATASET = "xsum"  # the dataset this module reads and builds (`prefixtune linearize --dataset`)
TRAIN_NEWS = ("world", "uk", "business")  # within-news: train on these BBC news sections, test on the rest

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


def _article_item(art, max_tokens, topic=None):
    meta = {"topic": topic} if topic is not None else {}
    return Item(art["id"], truncate(art["document"], max_tokens), [art["summary"]], meta)


def build(raw, w, args):
    """The official splits (or the sample when only it is here), low-data subsets and the extrapolation
    splits (see `build_topics`)."""
    raw, n = Path(raw), args.max_source_tokens
    split_path, sample_path = raw / SPLIT_FILE, raw / SAMPLE
    ids = read_split_ids(split_path) if split_path.is_file() else None
    # Streams the articles; only the (truncated) text is kept.
    articles = [dict(a, document=truncate(a["document"], n)) for a in
                tqdm(iter_articles(raw), desc="articles", disable=None)]
    full = ids is not None and any(a["id"] in ids["train"] for a in articles)
    if full:
        by_split = {k: [_article_item(a, None) for a in articles if a["id"] in ids[k]] for k in ids}
        for k, name in (("train", "train"), ("validation", "dev"), ("test", "test")):
            missing = len(ids[k]) - len(by_split[k])
            if missing:
                w.note(f"{missing} of {len(ids[k])} official {k} articles are not in {raw}")
        w.train("train.jsonl", by_split["train"])
        w.eval("dev", by_split["validation"])
        w.eval("test", by_split["test"])
        w.lowdata(by_split["train"], args, dev_items=by_split["validation"])  # dev from validation, as the authors
    elif sample_path.is_file():
        sample = [Item(r["id"], truncate(r["document"], n), [r["summary"]]) for r in read_sample(sample_path)]
        w.eval("test", sample)
        empty = [it.id for it in sample if not it.source]
        if empty:
            w.note(f"{len(empty)} sample article(s) with an empty document kept (ids {', '.join(empty[:5])})")
        where_ids = ""
        if ids is not None:
            counts = {k: sum(it.id in v for it in sample) for k, v in ids.items()}
            where_ids = f" (its ids by official split: {counts})"
        w.note(f"test.jsonl is the {len(sample)}-article sample {SAMPLE}{where_ids}")
        for split in ("train", "dev", "lowdata"):
            w.skip(split, f"the full XSum release (training articles) is not in {raw}; only the sample is")
    else:
        raise InputError(f"{raw}: no XSum articles, archive or {SAMPLE}; run `prefixtune download --dataset xsum`")
    build_topics(raw, w, articles, sample_path, n)


def build_topics(raw, w, articles, sample_path, n):
    """The paper's extrapolation splits, only from sources that carry topics."""
    if sample_path.is_file():
        w.note(f"{SAMPLE} carries no topics (no URL or section): no topic split is built from it")
    topics = [(a, news_topic(a["section"])) for a in articles]
    news = [(a, t) for a, t in topics if isinstance(t, tuple)]
    sport = [a for a, t in topics if t == "sport"]
    # news-to-sports: train on news articles, test on sport (topics from the article URLs' BBC section).
    splits = {
        "news-to-sports": ([_article_item(a, None, "news/" + t[1]) for a, t in news],
                           [_article_item(a, None, a["section"].strip("/")) for a in sport]),
        # within-news: train on world, UK and business news, test on the other news sections.
        "within-news": ([_article_item(a, None, "news/" + t[1]) for a, t in news if t[1].startswith(TRAIN_NEWS)],
                        [_article_item(a, None, "news/" + t[1]) for a, t in news if not t[1].startswith(TRAIN_NEWS)]),
    }
    for name, (train, test) in splits.items():
        if train and test:
            _topic_split(w, name, train, test)
            w.note(f"extrapolation/{name}: from the raw XSum articles' URL sections ({len(train)} train, "
                   f"{len(test)} test)")
        else:
            w.skip(f"extrapolation/{name}", f"no raw XSum articles with URL sections for both sides in {raw}")
    bbc_dir = raw / BBC_DIR
    if not bbc_dir.is_dir():
        w.skip("extrapolation/bbc-news-to-sports", f"no BBC News Summary corpus in {bbc_dir}")
        return
    rows = [Item(f"bbc-{p.stem}-{line}", truncate(doc, n), [summ], {"topic": cat})
            for p in sorted(bbc_dir.glob("*.csv")) for line, doc, summ, cat in read_bbc(p)]
    _topic_split(w, "bbc-news-to-sports", [r for r in rows if r.meta["topic"] != "sport"],
                 [r for r in rows if r.meta["topic"] == "sport"])
    w.note("extrapolation/bbc-news-to-sports: from the BBC News Summary categories (train: business, "
           "entertainment, politics, tech; test: sport)")
    w.skip("extrapolation/bbc-within-news", "BBC News Summary categories have no world/UK news sections")


def _topic_split(w, name, train, test):
    w.train(f"extrapolation/{name}/train.jsonl", train)
    w.eval(f"extrapolation/{name}/test", test)
