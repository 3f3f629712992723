"""`prefixtune linearize`: a raw release -> source/target JSONL, reference files and experiment splits.

Writes into --out (built in a temporary folder, renamed into place only when every file is done):
  {train,dev,test}.jsonl   train: one line per (input, reference); dev/test: one line per distinct input
                           (target = first reference). Lines: id, source, target, refs (+ WebNLG category, seen)
  {dev,test}.refs.txt      reference groups separated by blank lines, in input order (E2E challenge format)
  lowdata/{train,dev}-n{SIZE}-s{SAMPLE}.jsonl   low-data subsets (see splits.py)
  WebNLG: test_seen.* and test_unseen.* (scores S and U; test.* is A); seen = category in the training files
  XSum:   extrapolation/{news-to-sports,within-news,bbc-news-to-sports}/{train,test}.jsonl (+ test.refs.txt)
          built only from sources that carry topics; otherwise the split is skipped and the reason printed
  manifest.json            line counts, skipped splits with reasons, notes
"""

from pathlib import Path

from tqdm import tqdm

from ..errors import InputError
from ..files import atomic_dir, write_json, write_jsonl
from . import DATASETS, dart, e2e, jsonl, webnlg, xsum
from .common import Item
from .splits import lowdata

HIDDEN = ("eid",)  # reader bookkeeping, kept out of the JSONL lines
TRAIN_NEWS = ("world", "uk", "business")  # within-news: train on these BBC news sections, test on the rest


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

    def lowdata(self, items, args):
        for size in args.sizes:
            for s in range(args.samples):
                try:
                    train, dev = lowdata(items, size, s, args.seed)
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


def build_e2e(raw, w, args):
    items = {split: list(e2e.read(Path(raw, name), split)) for split, name in e2e.FILES.items()}
    w.train("train.jsonl", items["train"])
    w.eval("dev", items["dev"])
    w.eval("test", items["test"])
    w.lowdata(items["train"], args)


def build_webnlg(raw, w, args):
    notes = w.manifest["notes"]
    train = list(webnlg.read(raw, "train", notes))
    dev = list(webnlg.read(raw, "dev", notes))
    test = list(webnlg.read(raw, "test", notes))
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


def build_dart(raw, w, args):
    notes = w.manifest["notes"]
    if dart.find(raw, "train") is None:
        w.skip("train", f"no DART training file in {raw} (dart-v1.1.1-full-train.json): train.jsonl and "
                        "low-data splits not written")
        train = None
    else:
        train = list(dart.read(raw, "train", notes))
        w.train("train.jsonl", train)
    w.eval("dev", dart.read(raw, "dev", notes))
    w.eval("test", dart.read(raw, "test", notes))
    if train is not None:
        w.lowdata(train, args)


def _article_item(art, max_tokens, topic=None):
    meta = {"topic": topic} if topic is not None else {}
    return Item(art["id"], xsum.truncate(art["document"], max_tokens), [art["summary"]], meta)


def build_xsum(raw, w, args):
    raw, n = Path(raw), args.max_source_tokens
    split_path, sample_path = raw / xsum.SPLIT_FILE, raw / xsum.SAMPLE
    ids = xsum.read_split_ids(split_path) if split_path.is_file() else None
    # Streams the articles; only the (truncated) text is kept.
    articles = [dict(a, document=xsum.truncate(a["document"], n)) for a in
                tqdm(xsum.iter_articles(raw), desc="articles", disable=None)]
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
        w.lowdata(by_split["train"], args)
    elif sample_path.is_file():
        sample = [Item(r["id"], xsum.truncate(r["document"], n), [r["summary"]]) for r in xsum.read_sample(sample_path)]
        w.eval("test", sample)
        empty = [it.id for it in sample if not it.source]
        if empty:
            w.note(f"{len(empty)} sample article(s) with an empty document kept (ids {', '.join(empty[:5])})")
        where_ids = ""
        if ids is not None:
            counts = {k: sum(it.id in v for it in sample) for k, v in ids.items()}
            where_ids = f" (its ids by official split: {counts})"
        w.note(f"test.jsonl is the {len(sample)}-article sample {xsum.SAMPLE}{where_ids}")
        for split in ("train", "dev", "lowdata"):
            w.skip(split, f"the full XSum release (training articles) is not in {raw}; only the sample is")
    else:
        raise InputError(f"{raw}: no XSum articles, archive or {xsum.SAMPLE}; run `prefixtune download --dataset xsum`")
    build_xsum_topics(raw, w, articles, sample_path, n)


def build_xsum_topics(raw, w, articles, sample_path, n):
    """The paper's extrapolation splits, only from sources that carry topics."""
    if sample_path.is_file():
        w.note(f"{xsum.SAMPLE} carries no topics (no URL or section): no topic split is built from it")
    topics = [(a, xsum.news_topic(a["section"])) for a in articles]
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
            w.note(f"extrapolation/{name}: from the raw XSum articles' URL sections ({len(train)} train, {len(test)} test)")
        else:
            w.skip(f"extrapolation/{name}", f"no raw XSum articles with URL sections for both sides in {raw}")
    bbc_dir = raw / xsum.BBC_DIR
    if not bbc_dir.is_dir():
        w.skip("extrapolation/bbc-news-to-sports", f"no BBC News Summary corpus in {bbc_dir}")
        return
    rows = [Item(f"bbc-{p.stem}-{line}", xsum.truncate(doc, n), [summ], {"topic": cat})
            for p in sorted(bbc_dir.glob("*.csv")) for line, doc, summ, cat in xsum.read_bbc(p)]
    _topic_split(w, "bbc-news-to-sports", [r for r in rows if r.meta["topic"] != "sport"],
                 [r for r in rows if r.meta["topic"] == "sport"])
    w.note("extrapolation/bbc-news-to-sports: from the BBC News Summary categories (train: business, "
           "entertainment, politics, tech; test: sport)")
    w.skip("extrapolation/bbc-within-news", "BBC News Summary categories have no world/UK news sections")


def _topic_split(w, name, train, test):
    w.train(f"extrapolation/{name}/train.jsonl", train)
    w.eval(f"extrapolation/{name}/test", test)


BUILDERS = {"e2e": build_e2e, "webnlg": build_webnlg, "dart": build_dart, "xsum": build_xsum}


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
        builder = BUILDERS[args.dataset]
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
