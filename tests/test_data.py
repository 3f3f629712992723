"""Datasets: download (mirror and loopback HTTP), linearize on the real releases, splits, bad input.

Uses the read-only mirror at ../shared/data (beside the repository); nothing of it is copied into the repo.
"""

import hashlib
import http.server
import json
import threading
from collections import Counter
from pathlib import Path

import pytest

from prefixtune import cli
from prefixtune.data import download, splits
from prefixtune.data.sources import Source

MIRROR = Path(__file__).resolve().parents[2] / "shared" / "data"
MIRROR_DIR = {"e2e": "e2e", "webnlg": "webnlg2017", "dart": "dart", "xsum": "xsum"}


def prefixtune(*argv):
    """Run the CLI in-process; returns the exit status (0 when it returns normally)."""
    try:
        cli.main([str(a) for a in argv])
    except SystemExit as e:
        return e.code
    return 0


def lines(path):
    return [json.loads(x) for x in Path(path).read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Each dataset downloaded from the mirror and linearized once for the whole module."""
    root = tmp_path_factory.mktemp("data")
    for name in ("e2e", "webnlg", "dart", "xsum"):
        assert prefixtune("download", "--dataset", name, "--out", root / "raw" / name, "--mirror", MIRROR) == 0
        assert prefixtune("linearize", "--dataset", name, "--raw", root / "raw" / name, "--out", root / name,
                          "--max-source-tokens", 400) == 0
    return root


# ---- sizes and formats on the real releases -------------------------------------------------------

def test_e2e_sizes_and_format(built):
    train, dev, test = (lines(built / "e2e" / f"{s}.jsonl") for s in ("train", "dev", "test"))
    assert len(train) == 42061 and len({r["source"] for r in train}) == 4862
    assert len(dev) == 547 and len(test) == 630
    assert sum(len(r["refs"]) for r in test) == 4693 and sum(len(r["refs"]) for r in dev) == 4672
    assert train[0]["source"] == ("name : The Vaults | Type : pub | price : more than £30 | "
                                  "customer rating : 5 out of 5 | near : Café Adriatic")
    assert train[0]["target"] == "The Vaults pub near Café Adriatic has a 5 star rating. Prices start at £30."
    assert len({r["id"] for r in train}) == len(train)
    assert all(r["target"] in r["refs"] for r in train) and all(r["target"] == r["refs"][0] for r in test)
    groups = (built / "e2e" / "test.refs.txt").read_text(encoding="utf-8").rstrip("\n").split("\n\n")
    assert [g.split("\n") for g in groups] == [r["refs"] for r in test]


def test_webnlg_sizes_seen_unseen_and_format(built):
    test = lines(built / "webnlg" / "test.jsonl")
    assert len(test) == 1862 and sum(not r["seen"] for r in test) == 891
    assert len(lines(built / "webnlg" / "test_unseen.jsonl")) == 891
    assert len(lines(built / "webnlg" / "test_seen.jsonl")) == 971
    unseen = {r["category"] for r in test if not r["seen"]}
    assert unseen == {"Artist", "Athlete", "CelestialBody", "MeanOfTransportation", "Politician"}
    train = lines(built / "webnlg" / "train.jsonl")
    assert all(r["seen"] for r in train) and not {r["category"] for r in train} & unseen
    assert test[0]["source"] == "| Abilene Regional Airport : cityServed : Abilene, Texas"
    assert test[0]["refs"] == ["Abilene, Texas is served by the Abilene regional airport.",
                               "Abilene Regional Airport serves the city of Abilene in Texas."]
    assert test[0]["category"] == "Airport" and test[0]["seen"] is True
    assert "_" not in train[0]["source"].split(" : ")[0]


def test_dart_sizes_and_format(built):
    test = lines(built / "dart" / "test.jsonl")
    assert len(test) == 5097 and len(lines(built / "dart" / "dev.jsonl")) == 2768
    assert test[0]["source"] == ("| Hawaii Five-O : NOTES : Episode: The Flight of the Jewels | "
                                 "[TABLECONTEXT] : [TITLE] : Jeff Daniels | [TABLECONTEXT] : TITLE : Hawaii Five-O")
    manifest = json.loads((built / "dart" / "manifest.json").read_text())
    assert "train" in manifest["skipped"]  # the mirror has no DART training file: said, not invented
    assert any("Id116" in n for n in manifest["notes"])  # the release's one empty <lex>, dropped and reported


def test_xsum_sample_and_truncation(built):
    test = lines(built / "xsum" / "test.jsonl")
    assert len(test) == 1000 and all(len(r["source"].split()) <= 400 for r in test)
    assert all(r["refs"] == [r["target"]] and r["target"] for r in test)


# ---- splits --------------------------------------------------------------------------------------

def test_lowdata_deterministic_and_disjoint(built, tmp_path):
    low = built / "e2e" / "lowdata"
    assert len(list(low.glob("train-n*-s*.jsonl"))) == 20 and len(list(low.glob("dev-n*-s*.jsonl"))) == 20
    for size in (50, 500):
        train, dev = lines(low / f"train-n{size}-s0.jsonl"), lines(low / f"dev-n{size}-s0.jsonl")
        assert len(train) == size and len({r["source"] for r in train}) == size
        assert len(dev) == -(-3 * size // 10)
        assert not {r["source"] for r in train} & {r["source"] for r in dev}
    assert lines(low / "train-n50-s0.jsonl") != lines(low / "train-n50-s1.jsonl")
    # Same (size, sample, seed): same bytes, whatever the other sizes asked for.
    assert prefixtune("linearize", "--dataset", "e2e", "--raw", built / "raw" / "e2e", "--out", tmp_path / "again",
                      "--sizes", "50", "--samples", "2") == 0
    for f in ("train-n50-s1.jsonl", "dev-n50-s1.jsonl"):
        assert (tmp_path / "again" / "lowdata" / f).read_bytes() == (low / f).read_bytes()
    assert not (tmp_path / "again" / "lowdata" / "train-n100-s0.jsonl").exists()


def test_lowdata_too_few_inputs():
    with pytest.raises(ValueError):
        splits.lowdata([], 50, 0, 0)


def test_lowdata_dev_from_another_split():
    """XSum's low-data dev subsets come from its validation split (the authors' lowdata_gen.py): 30% of the size,
    each with all its references; the training subset, distinct inputs of the training split."""
    from prefixtune.data.common import Item

    train_items = [Item(f"t{i}", f"train {i}", [f"a{i}", f"b{i}"]) for i in range(40)]
    dev_items = [Item(f"v{i}", f"val {i}", [f"r{i}"]) for i in range(12)]
    train, dev = splits.lowdata(train_items, 20, 1, 0, dev_items=dev_items)
    assert len(train) == 20 and len({it.id for it, _ in train}) == 20 and {it.id[0] for it, _ in train} == {"t"}
    assert len(dev) == 6 and {it.id[0] for it, _ in dev} == {"v"}
    assert all(refs == it.refs for it, refs in dev) and len({it.id for it, _ in dev}) == 6
    assert splits.lowdata(train_items, 20, 1, 0, dev_items=dev_items) == (train, dev)  # reproducible
    with pytest.raises(ValueError, match="5 dev inputs, need 6"):
        splits.lowdata(train_items, 20, 0, 0, dev_items=dev_items[:5])


def test_xsum_topic_splits(built):
    ex = built / "xsum" / "extrapolation"
    n2s_train, n2s_test = lines(ex / "news-to-sports" / "train.jsonl"), lines(ex / "news-to-sports" / "test.jsonl")
    assert n2s_train and n2s_test
    assert all(r["topic"].startswith("news/") for r in n2s_train)
    assert all(r["topic"].split("/")[0] == "sport" for r in n2s_test)
    wn_train, wn_test = lines(ex / "within-news" / "train.jsonl"), lines(ex / "within-news" / "test.jsonl")
    assert all(r["topic"].startswith(("news/world", "news/uk", "news/business")) for r in wn_train)
    assert wn_test and not any(r["topic"].startswith(("news/world", "news/uk", "news/business")) for r in wn_test)
    bbc_train, bbc_test = lines(ex / "bbc-news-to-sports" / "train.jsonl"), lines(ex / "bbc-news-to-sports" / "test.jsonl")
    assert Counter(r["topic"] for r in bbc_test) == {"sport": 511}
    assert set(r["topic"] for r in bbc_train) == {"business", "entertainment", "politics", "tech"}
    manifest = json.loads((built / "xsum" / "manifest.json").read_text())
    assert {"train", "dev", "extrapolation/bbc-within-news"} <= set(manifest["skipped"])
    assert any("carries no topics" in n for n in manifest["notes"])


# ---- bad input: exit 2, one line naming file and line/entry, no output ----------------------------

E2E_OK = 'mr,ref\n"name[A], eatType[pub]",A is a pub.\n'


def _e2e(root, train):
    root.mkdir()
    (root / "trainset.csv").write_text(train, encoding="utf-8")
    (root / "devset.csv").write_text(E2E_OK, encoding="utf-8")
    (root / "testset_w_refs.csv").write_text(E2E_OK, encoding="utf-8")


def _webnlg(root, test_xml):
    entry = ('<benchmark><entries><entry category="Airport" eid="Id1" size="1"><modifiedtripleset>'
             '<mtriple>A_b | c | D_e</mtriple></modifiedtripleset><lex lid="Id1">A b c D e.</lex></entry>'
             '</entries></benchmark>')
    for split in ("train", "dev"):
        (root / split / "1triples").mkdir(parents=True)
        (root / split / "1triples" / f"1triple_{split}.xml").write_text(entry, encoding="utf-8")
    (root / "test").mkdir()
    (root / "test" / "testdata_with_lex.xml").write_text(test_xml, encoding="utf-8")


def _dart(root, dev_json):
    root.mkdir()
    (root / "dart-v1.1.1-full-dev.json").write_text(dev_json, encoding="utf-8")
    (root / "dart-v1.1.1-full-test.xml").write_text("<benchmark><entries/></benchmark>", encoding="utf-8")


BAD = {
    "csv-malformed": ("e2e", lambda r: _e2e(r, E2E_OK + '"name[B], eatType[pub]","B is\n'), "trainset.csv:3"),
    "csv-missing-column": ("e2e", lambda r: _e2e(r, "mr,text\nname[A],A.\n"), "trainset.csv:1"),
    "csv-empty-reference": ("e2e", lambda r: _e2e(r, E2E_OK + '"name[B]",  \n'), "trainset.csv:3"),
    "xml-malformed": ("webnlg", lambda r: _webnlg(r, "<benchmark><entries>\n<entry category='x'>\n</benchmark>"),
                      "testdata_with_lex.xml:3"),
    "xml-empty-reference": ("webnlg", lambda r: _webnlg(r, '<benchmark><entries><entry category="City" eid="Id7">'
                                                           '<mtriple>a | b | c</mtriple><lex lid="Id1"> </lex>'
                                                           '</entry></entries></benchmark>'),
                            "testdata_with_lex.xml [Id7]"),
    "json-malformed": ("dart", lambda r: _dart(r, '[\n  {"tripleset": [["a", "b", "c"]],\n  "annotations": [}\n]'),
                       "dart-v1.1.1-full-dev.json:3"),
    "json-missing-field": ("dart", lambda r: _dart(r, '[{"tripleset": [["a", "b", "c"]], "annotations": '
                                                      '[{"text": "a b c"}]}, {"tripleset": [["a", "b", "c"]]}]'),
                           "dart-v1.1.1-full-dev.json [1]"),
    "jsonl-missing-field": ("xsum", lambda r: (r.mkdir(), (r / "test-1000.jsonl").write_text(
        '{"id": "1", "document": "d", "summary": "s"}\n{"id": "2", "document": "d"}\n')),
        "test-1000.jsonl:2"),
}


def _one_error_line(capsys, *needles):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("prefixtune: error: "), err
    for needle in needles:
        assert needle in err[0], err[0]


def _no_output(out):
    assert not out.exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}")]


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_linearize(case, tmp_path, capsys):
    dataset, make, needle = BAD[case]
    make(tmp_path / "raw")
    capsys.readouterr()
    assert prefixtune("linearize", "--dataset", dataset, "--raw", tmp_path / "raw", "--out", tmp_path / "out") == 2
    _one_error_line(capsys, needle)
    _no_output(tmp_path / "out")


def test_bad_checksum_in_mirror(tmp_path, capsys):
    mirror = tmp_path / "mirror" / "e2e"
    mirror.mkdir(parents=True)
    for f in (MIRROR / "e2e").iterdir():
        (mirror / f.name).write_bytes(f.read_bytes())
    with open(mirror / "devset.csv", "a", encoding="utf-8") as f:
        f.write('"name[X]",tampered\n')
    assert prefixtune("download", "--dataset", "e2e", "--out", tmp_path / "out", "--mirror", tmp_path / "mirror") == 2
    _one_error_line(capsys, "devset.csv", "checksum")
    _no_output(tmp_path / "out")


def test_mirror_from_environment_and_missing_required(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(download.ENV, str(MIRROR))
    assert prefixtune("download", "--dataset", "e2e", "--out", tmp_path / "e2e") == 0
    assert (tmp_path / "e2e" / "trainset.csv").read_bytes() == (MIRROR / "e2e" / "trainset.csv").read_bytes()
    (tmp_path / "empty" / "e2e").mkdir(parents=True)
    capsys.readouterr()
    assert prefixtune("download", "--dataset", "e2e", "--out", tmp_path / "x", "--mirror", tmp_path / "empty") == 2
    _one_error_line(capsys, "trainset.csv", "no such file")
    _no_output(tmp_path / "x")


# ---- the network path, against a loopback HTTP server -----------------------------------------------

@pytest.fixture
def server(tmp_path):
    """Serves tmp_path/www on 127.0.0.1; the first request for any path starting 'flaky' gets a 503."""
    www = tmp_path / "www"
    www.mkdir()
    seen = Counter()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=str(www), **kw)

        def do_GET(self):
            seen[self.path] += 1
            if self.path.startswith("/flaky") and seen[self.path] == 1:
                self.send_error(503, "try again")
                return
            super().do_GET()

        def log_message(self, *a):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield www, f"http://127.0.0.1:{httpd.server_address[1]}/", seen
    httpd.shutdown()
    httpd.server_close()


def _serve(www, name, data):
    (www / name).write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def test_download_over_http_with_retry(server, tmp_path, monkeypatch):
    www, url, seen = server
    monkeypatch.setattr(download, "RETRY_WAIT", 0)
    monkeypatch.delenv(download.ENV, raising=False)
    a, b = b"mr,ref\n" * 1000, b"flaky bytes"
    sources = [Source("trainset.csv", "e2e/trainset.csv", url + "trainset.csv", _serve(www, "trainset.csv", a)),
               Source("sub/flaky.txt", "e2e/flaky.txt", url + "flaky.txt", _serve(www, "flaky.txt", b)),
               Source("only-mirror.txt", "e2e/only-mirror.txt", None, None, required=False)]
    monkeypatch.setitem(download.SOURCES, "e2e", sources)
    assert prefixtune("download", "--dataset", "e2e", "--out", tmp_path / "out") == 0
    assert (tmp_path / "out" / "trainset.csv").read_bytes() == a
    assert (tmp_path / "out" / "sub" / "flaky.txt").read_bytes() == b
    assert seen["/flaky.txt"] == 2  # one 503, then the retry
    assert not (tmp_path / "out" / "only-mirror.txt").exists()
    assert not list((tmp_path / "out").rglob("*.part"))


def test_download_over_http_wrong_checksum(server, tmp_path, monkeypatch, capsys):
    www, url, _ = server
    monkeypatch.delenv(download.ENV, raising=False)
    _serve(www, "good.csv", b"good")
    _serve(www, "devset.csv", b"not the release")
    sources = [Source("good.csv", "e2e/good.csv", url + "good.csv", hashlib.sha256(b"good").hexdigest()),
               Source("devset.csv", "e2e/devset.csv", url + "devset.csv", "0" * 64)]
    monkeypatch.setitem(download.SOURCES, "e2e", sources)
    assert prefixtune("download", "--dataset", "e2e", "--out", tmp_path / "out") == 2
    _one_error_line(capsys, "devset.csv", "checksum")
    _no_output(tmp_path / "out")


def test_offline_without_mirror_says_how(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(download, "RETRY_WAIT", 0)
    monkeypatch.setattr(download, "RETRIES", 2)
    monkeypatch.delenv(download.ENV, raising=False)
    monkeypatch.setitem(download.SOURCES, "e2e", [Source("t.csv", "e2e/t.csv", "http://127.0.0.1:9/t.csv", None)])
    assert prefixtune("download", "--dataset", "e2e", "--out", tmp_path / "out") == 2
    _one_error_line(capsys, "--mirror", download.ENV)
    _no_output(tmp_path / "out")


# ---- a user's own JSONL files ----------------------------------------------------------------------

def _user_files(d, train, test=None):
    d.mkdir(exist_ok=True)
    (d / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in train))
    (d / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in (test or train[:2])))
    return ["--dataset", "jsonl", "--train", d / "train.jsonl", "--test", d / "test.jsonl"]


def test_user_jsonl_linearize(tmp_path):
    train = [{"source": f"s{i % 6}", "target": f"t{i}"} for i in range(12)]  # 6 inputs, 2 references each
    test = [{"source": "a", "target": "x", "refs": ["x", "y"]}, {"source": "b", "target": "z"}]
    args = _user_files(tmp_path / "in", train, test)
    assert prefixtune("linearize", *args, "--out", tmp_path / "out", "--sizes", "2", "--samples", "2") == 0
    assert len(lines(tmp_path / "out" / "train.jsonl")) == 12
    assert (tmp_path / "out" / "test.refs.txt").read_text() == "x\ny\n\nz\n"
    low = lines(tmp_path / "out" / "lowdata" / "train-n2-s0.jsonl")
    assert len({r["source"] for r in low}) == 2
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["skipped"] == {"dev": "no --dev file"}


@pytest.mark.parametrize("train,extra,needle", [
    ([{"source": "a", "target": ""}], [], "train.jsonl:1: 'target' must be a non-empty string"),
    ([{"source": "a", "target": "b", "refs": "b"}], [], "train.jsonl:1: 'refs' must be a non-empty list"),
    ([{"source": "a"}], [], "train.jsonl:1: missing field 'target'"),
    ([{"source": f"s{i}", "target": "t"} for i in range(5)], ["--sizes", "4"],
     "train.jsonl: 5 distinct inputs, too few for lowdata n4"),
    ([{"source": "a", "target": "b"}], ["--raw", "x"], "--raw: not for --dataset jsonl"),
])
def test_user_jsonl_bad_input(tmp_path, capsys, train, extra, needle):
    args = _user_files(tmp_path / "in", train, [{"source": "a", "target": "b"}])
    assert prefixtune("linearize", *args, "--out", tmp_path / "out", *extra) == 2
    _one_error_line(capsys, needle)
    assert not (tmp_path / "out").exists()
