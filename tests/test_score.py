"""`prefixtune score`: hand-worked cases, official-script oracles on real references, cross-checks, bad input.

Which check is which:
- official: tests/oracles/official_scores.json holds numbers printed by mteval-v13a's and multi-bleu.perl's own
  scoring code on stand-in systems built from ../shared/data (see its `_about`); we must agree to 1e-6.
- hand: n-gram counts, brevity penalties, NIST information weights, LCS, edits worked out in the comments.
- cross-checks: sacrebleu (BLEU, 13a), NLTK corpus_nist (single reference), pycocoevalcap's own
  COCOEvalCap code path (tokenize hyps and refs separately, Meteor/Rouge/Cider.compute_score), sacrebleu 'none'.
"""

import json
import math
import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd
import pytest

from prefixtune.cli import main
from prefixtune.metrics import coco, mteval, multibleu, rouge, ter
from prefixtune.score import score

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
ORACLE = json.loads((Path(__file__).parent / "oracles" / "official_scores.json").read_text())
needs_data = pytest.mark.skipif(not (DATA / "e2e").is_dir(), reason="../shared/data not present")


@pytest.fixture(scope="module")
def meteor():
    m = coco.Meteor()  # one JVM for the whole module
    yield m
    m.close()


def e2e_groups(name):
    df = pd.read_csv(DATA / "e2e" / name, encoding="utf-8-sig")
    groups = {}
    for mr, ref in zip(df["mr"], df["ref"]):
        groups.setdefault(mr, []).append(ref.strip())
    return [g for g in groups.values() if len(g) >= 2]


def e2e_stand_in(n=60):
    """E2E dev, first `n` MRs with >= 2 references: output = the last reference, made `awkward`, references =
    the others."""
    groups = e2e_groups("devset.csv")[:n]
    return awkward([g[-1] for g in groups]), [g[:-1] for g in groups]


def awkward(hyps):
    """Outputs made awkward the way model outputs are: every 10th empty (the last one too), every 7th upper
    case, every 5th with non-ASCII punctuation and letters (“ ” — £ é)."""
    n, hyps = len(hyps), list(hyps)
    for i in range(n):
        if i % 10 == 3 or i == n - 1:
            hyps[i] = ""
        elif i % 7 == 1:
            hyps[i] = hyps[i].upper()
        elif i % 5 == 2:
            hyps[i] = "“" + hyps[i].replace(" - ", " — ").replace("e", "é", 1) + "” £"
    return hyps


def d2t_stand_in(path, n=120):
    """The first `n` entries of a DART/WebNLG XML file with >= 2 references: output = the last one, made
    `awkward`, references = the others (parallel files padded with empty lines, as the official scripts)."""
    groups = [g for _, g in xml_groups(DATA / path)][:n]
    return awkward([g[-1] for g in groups]), [g[:-1] for g in groups]


def xml_groups(path):
    out = []
    for entry in ET.parse(path).getroot().iter("entry"):
        lex = [x.text.strip() for x in entry.findall("lex") if x.text and x.text.strip()]
        if len(lex) >= 2:
            out.append((entry.get("category"), lex))
    return out


# ------------------------------------------------------------------ mteval BLEU / NIST (E2E)

def test_mteval_bleu_hand():
    hyp = ["the cat sat on the mat"]
    refs = [["the cat is on the mat", "there is a cat on the mat"]]
    # clipped matches / totals: 1-grams the x2, cat, on, mat = 5/6; 2-grams "the cat", "on the", "the mat" = 3/5;
    # 3-grams "on the mat" = 1/4; 4-grams 0/3 -> mteval smoothing 1/(2^1 * 3). Closest ref length 6 -> BP 1.
    want = (5 / 6 * 3 / 5 * 1 / 4 * 1 / (2 * 3)) ** 0.25
    assert mteval.bleu_nist(hyp, refs)["BLEU"] == pytest.approx(want, abs=1e-12)
    # Orders with no test n-grams count as precision 1; BP = exp(1 - 6/2).
    assert mteval.bleu_nist(["The cat"], [["the cat is on the mat"]])["BLEU"] == pytest.approx(math.exp(-2))
    # Closest reference length (5, not the shortest 1): all precisions 1, BP = exp(1 - 5/4).
    assert mteval.bleu_nist(["a b c d"], [["a", "a b c d e"]])["BLEU"] == pytest.approx(math.exp(-0.25))
    # Equal distance (2 and 6 from 4): the shorter wins, so no penalty.
    assert mteval.bleu_nist(["a b c d"], [["a b", "a b c d e f"]])["BLEU"] == pytest.approx(1.0)
    # 13a tokenization, ASCII-only lowercasing (mteval's tr/[A-Z]/[a-z]/): "É" stays upper case.
    assert mteval.tokenize("The Café, ÉCLAIR costs £20-25.") == \
        ["the", "café", ",", "Éclair", "costs", "£20", "-", "25", "."]


def test_mteval_nist_hand():
    # Reference "a b a c": counts a 2, b 1, c 1 (4 words), "a b" 1. info(a) = log2(4/2) = 1, info(b) = log2(4/1)
    # = 2, info("a b") = log2(count(a)/count(a b)) = log2(2/1) = 1. Output "a b": unigram info (1+2)/2 words,
    # bigram 1/1, higher orders 0. L_sys/L_ref = 2/4: penalty exp(-beta log^2 0.5), beta = -log .5 / log^2 1.5.
    beta = -math.log(0.5) / math.log(1.5) ** 2
    want = (3 / 2 + 1 / 1) * math.exp(-beta * math.log(0.5) ** 2)
    assert mteval.bleu_nist(["a b"], [["a b a c"]])["NIST"] == pytest.approx(want, abs=1e-12)
    # L_ref is all reference words over the mean number of *non-empty* references per input (mteval's
    # $cum_ref_count / $cum_seg_count; the E2E script's padding segments do not count): 8 / (3 / 2) = 16/3
    # words against 2 + 2 output words, so the length penalty applies at ratio 4 / (16/3) = 0.75.
    out = mteval.bleu_nist(["a b", "c d"], [["a b", "a b e f"], ["c d"]])
    assert out["NIST"] == pytest.approx(mteval.bleu_nist(["a b", "c d"], [["a b", "a b e f"], ["c d", ""]])["NIST"])
    counts = {"a": 2, "b": 2, "c": 1, "d": 1, "e": 1, "f": 1}
    total = 8
    uni = sum(math.log2(total / counts[w]) for w in "abcd") / 4
    bi = (math.log2(2 / 2) + math.log2(1 / 1)) / 2  # "a b": count(a)=2, count(a b)=2; "c d": 1/1
    assert out["NIST"] == pytest.approx((uni + bi) * math.exp(-beta * math.log(0.75) ** 2), abs=1e-12)


def test_mteval_official_quirks():
    # Non-ASCII capitals, "&amp;", the Perl-false history "0", an empty output; oracle from mteval itself.
    hyps = ["The CAFÉ Éclair serves 0 0 food & drinks &amp; more.", "", "Zero 0 costs £20-25, it's 3.5 stars.", "x"]
    refs = [["the café éclair serves 0 0 food and drinks.", "THE CAFÉ ÉCLAIR, 0 0 food &amp; more."],
            ["Some reference here.", "another one"], ["zero 0 costs £20-25 it is 3.5 stars", "0 costs"],
            ["x y z w v", "a"]]
    out = mteval.bleu_nist(hyps, refs)
    assert out["BLEU"] == pytest.approx(ORACLE["e2e_quirks"]["BLEU"], abs=1e-9)
    assert out["NIST"] == pytest.approx(ORACLE["e2e_quirks"]["NIST"], abs=1e-9)


@needs_data
@pytest.mark.parametrize("split,key,pick", [("testset_w_refs.csv", "e2e_test_first_vs_rest", 0),
                                            ("devset.csv", "e2e_dev_last_vs_rest", -1)])
def test_mteval_official_e2e(split, key, pick):
    groups = e2e_groups(split)
    hyps = [g[pick] for g in groups]
    refs = [g[1:] if pick == 0 else g[:-1] for g in groups]
    out = mteval.bleu_nist(hyps, refs)
    assert out["BLEU"] == pytest.approx(ORACLE[key]["BLEU"], abs=1e-9)
    assert out["NIST"] == pytest.approx(ORACLE[key]["NIST"], abs=1e-9)


@needs_data
def test_mteval_cross_checks_e2e():
    import sacrebleu
    from nltk.translate.nist_score import corpus_nist
    groups = e2e_groups("devset.csv")
    hyps = [g[0] for g in groups]
    refs = [g[1:] for g in groups]
    # sacrebleu: same 13a tokenization, closest length with ties to the shorter, 'exp' smoothing = mteval's.
    width = max(map(len, refs))
    streams = [[g[i] if i < len(g) else None for g in refs] for i in range(width)]
    sb = sacrebleu.corpus_bleu(hyps, streams, tokenize="13a", lowercase=True, smooth_method="exp")
    assert mteval.bleu_nist(hyps, refs)["BLEU"] * 100 == pytest.approx(sb.score, abs=1e-6)
    # NLTK corpus_nist: same information weights and penalty; with one reference per input its best-reference
    # matching equals mteval's clipping. Outputs cut to half length exercise the length penalty.
    short = [" ".join(h.split()[: max(1, len(h.split()) // 2)]) for h in hyps]
    one = [[g[1]] for g in groups]
    ours = mteval.bleu_nist(short, one)["NIST"]
    theirs = corpus_nist([[mteval.tokenize(r[0])] for r in one], [mteval.tokenize(h) for h in short])
    assert ours == pytest.approx(theirs, abs=1e-9)
    assert ours < mteval.bleu_nist(hyps, one)["NIST"]  # the penalty bites


# ------------------------------------------------------------------ multi-bleu (DART / WebNLG)

def test_multibleu_hand():
    hyps = ["the cat sat on the mat", "a b c d"]
    refs = [["the cat is on the mat", "there is a cat on the mat"], ["a b c d"]]
    # counts as in test_mteval_bleu_hand plus 4/4, 3/3, 2/2, 1/1: 9/10, 6/8, 3/6, 1/4; lengths 10 = 10.
    want = 100 * (9 / 10 * 6 / 8 * 3 / 6 * 1 / 4) ** 0.25
    assert multibleu.corpus_bleu(hyps, refs, lowercase=False)["BLEU"] == pytest.approx(want, abs=1e-9)
    # No smoothing: no 4-gram match at all gives 0.
    assert multibleu.corpus_bleu(hyps[:1], refs[:1], lowercase=False)["BLEU"] == 0.0
    # No tokenization; -lc folds ASCII only; case counts without it.
    assert multibleu.corpus_bleu(["The cat sat ."], [["the cat sat ."]], lowercase=True)["BLEU"] == pytest.approx(100)
    assert multibleu.corpus_bleu(["The cat sat ."], [["the cat sat ."]], lowercase=False)["BLEU"] < 100
    assert multibleu.corpus_bleu(["É b c d e"], [["é b c d e"]], lowercase=True)["BLEU"] < 100
    # Padding: a shorter group gets an empty reference (length 0, as an empty line in a parallel file), which
    # is the closest length for the 1-word output: ref_len 0 + 4, not 4 + 4.
    out = multibleu.corpus_bleu(["a", "a b c d"], [["a b c d"], ["a b c d", "a b c d"]], lowercase=False)
    assert (out["hyp_len"], out["ref_len"]) == (5, 4)


@needs_data
@pytest.mark.parametrize("path,key", [("dart/dart-v1.1.1-full-test.xml", "dart_test_last_vs_rest"),
                                      ("webnlg2017/test/testdata_with_lex.xml", "webnlg_test_last_vs_rest")])
def test_multibleu_official(path, key):
    groups = xml_groups(DATA / path)
    hyps, refs = [g[-1] for _, g in groups], [g[:-1] for _, g in groups]
    assert multibleu.corpus_bleu(hyps, refs, False)["BLEU"] == pytest.approx(ORACLE[key]["BLEU"], abs=1e-6)
    assert multibleu.corpus_bleu(hyps, refs, True)["BLEU"] == pytest.approx(ORACLE[key]["BLEU_lc"], abs=1e-6)


@needs_data
def test_multibleu_cross_check_sacrebleu():
    import sacrebleu
    groups = [g for _, g in xml_groups(DATA / "webnlg2017/test/testdata_with_lex.xml") if len(g) >= 3]
    hyps, refs = [g[0] for g in groups], [g[1:3] for g in groups]  # no padding: sacrebleu has no empty refs
    sb = sacrebleu.corpus_bleu(hyps, [[r[0] for r in refs], [r[1] for r in refs]], tokenize="none",
                               smooth_method="none", force=True)
    assert multibleu.corpus_bleu(hyps, refs, False)["BLEU"] == pytest.approx(sb.score, abs=1e-6)


# ------------------------------------------------------------------ awkward outputs vs the official scripts

@needs_data
def test_e2e_awkward_outputs_official(tmp_path, capsys):
    # Empty outputs (7 of 60), upper case and non-ASCII punctuation, scored through the CLI as the DAG does;
    # the oracle is measure_scores.py itself on the same files. With the empty outputs the NIST length
    # penalty bites, which is where a wrong reference count per input shows (it did: 7.5364 vs 7.5089).
    hyps, refs = e2e_stand_in()
    assert sum(not h for h in hyps) == 7
    (tmp_path / "hyp.txt").write_text("".join(h + "\n" for h in hyps), encoding="utf-8")
    (tmp_path / "ref.txt").write_text("\n".join("".join(r + "\n" for r in g) for g in refs), encoding="utf-8")
    main(["score", "--task", "e2e", "--hyp", str(tmp_path / "hyp.txt"), "--ref", str(tmp_path / "ref.txt"),
          "--json"])
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out == pytest.approx(ORACLE["e2e_awkward_outputs"], abs=1e-9)


@needs_data
@pytest.mark.parametrize("task,path", [("dart", "dart/dart-v1.1.1-full-test.xml"),
                                       ("webnlg", "webnlg2017/test/testdata_with_lex.xml")])
def test_d2t_awkward_outputs_official(task, path, meteor):
    hyps, refs = d2t_stand_in(path)
    assert sum(not h for h in hyps) == 13
    want = ORACLE[f"{task}_awkward_outputs"]
    out = score(task, hyps, refs, meteor=meteor)
    assert out["BLEU"] == pytest.approx(want["BLEU_lc" if task == "webnlg" else "BLEU"], abs=1e-6)
    assert out["METEOR"] == pytest.approx(want["METEOR"], abs=1e-9)
    assert out["TER"] == pytest.approx(want["TER"], abs=1e-9)
    other = multibleu.corpus_bleu(hyps, refs, lowercase=task == "dart")["BLEU"]
    assert other == pytest.approx(want["BLEU" if task == "webnlg" else "BLEU_lc"], abs=1e-6)


def test_xsum_empty_outputs(tmp_path, capsys):
    # rouge-score is XSum's official scorer: an empty output scores 0 and counts in the mean.
    from rouge_score import rouge_scorer
    hyps = ["the cat sat on the mat", "", "A dog RAN “home” — fast", ""]
    refs = [["a cat sat on a mat"], ["nothing here"], ["the dog ran home fast"], ["x"]]
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    want = {k: 100 * sum(scorer.score(r[0], h)[k].fmeasure for h, r in zip(hyps, refs)) / 4
            for k in ("rouge1", "rouge2", "rougeL")}
    assert rouge.corpus_rouge(hyps, refs) == pytest.approx(want, abs=1e-12)
    assert want["rouge1"] > 0
    # A file of nothing but empty outputs is scored (all zeros), not refused.
    (tmp_path / "hyp.txt").write_text("\n" * 4)
    (tmp_path / "ref.txt").write_text("".join(r[0] + "\n" for r in refs))
    main(["score", "--task", "xsum", "--hyp", str(tmp_path / "hyp.txt"), "--ref", str(tmp_path / "ref.txt"),
          "--json"])
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == \
        {"rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0}


def test_all_empty_outputs_scored(tmp_path, capsys, meteor):
    # N blank lines are N empty outputs: every task scores them (the tiny DAG produces such files).
    hyps, refs = ["", "", ""], [["the cat sat", "a cat"], ["x y"], ["b c d"]]
    e2e = score("e2e", hyps, refs, meteor=meteor)
    assert e2e["BLEU"] == 0.0 and e2e["NIST"] == 0.0 and e2e["ROUGE_L"] == 0.0 and e2e["CIDEr"] == 0.0
    # TER: fewest edits (all insertions: 2 + 2 + 3) over the mean reference lengths (2.5 + 2 + 3); tercom
    # prints "Total TER: 0.9333333333333333 (7.0/7.5)" for these files.
    assert score("dart", hyps, refs, meteor=meteor)["TER"] == pytest.approx(7 / 7.5, abs=1e-12)
    (tmp_path / "hyp.txt").write_text("\n\n\n")
    (tmp_path / "ref.txt").write_text("the cat sat\na cat\n\nx y\n\nb c d\n")
    main(["score", "--task", "e2e", "--hyp", str(tmp_path / "hyp.txt"), "--ref", str(tmp_path / "ref.txt")])
    assert "BLEU: 0.0000" in capsys.readouterr().out


# ------------------------------------------------------------------ COCO metrics, METEOR, TER, ROUGE

def test_coco_hand(meteor):
    # PTB tokens, lowercased, punctuation dropped (as pycocoevalcap does; "-lrb-" survives because the
    # punctuation list has the upper-case form, and PTB writes "£" as "#": both as in the E2E script).
    assert coco.ptb_tokenize(["Apple banana, cherry date.", "", "It's £20 (cheap)."]) == \
        ["apple banana cherry date", "", "it 's # 20 -lrb- cheap -rrb-"]
    # ROUGE-L: LCS("apple banana cherry date", "apple cherry date fig") = 3, P = R = 3/4, F_1.2 = 3/4.
    out = coco.coco_scores(["Apple banana, cherry date.", ""], [["apple cherry date fig"], ["x y"]], meteor)
    assert out["ROUGE_L"] == pytest.approx((0.75 + 0.0) / 2)  # the empty output scores 0
    assert meteor.score(meteor.segment_stats(["the cat sat"], [["the cat sat"]])) > 0.9


@needs_data
def test_coco_cross_check_e2e(meteor):
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer
    groups = e2e_groups("testset_w_refs.csv")[:40]
    hyps, refs = [g[0] for g in groups], [g[1:] for g in groups]
    ours = coco.coco_scores(hyps, refs, meteor)
    # COCOEvalCap.evaluate's own path: tokenize references and outputs separately, then each scorer.
    tok = PTBTokenizer()
    gts = tok.tokenize({i: [{"caption": r} for r in g] for i, g in enumerate(refs)})
    res = tok.tokenize({i: [{"caption": h}] for i, h in enumerate(hyps)})
    assert ours["METEOR"] == pytest.approx(meteor._m.compute_score(gts, res)[0], abs=1e-9)
    assert ours["ROUGE_L"] == pytest.approx(Rouge().compute_score(gts, res)[0], abs=1e-12)
    assert ours["CIDEr"] == pytest.approx(Cider().compute_score(gts, res)[0], abs=1e-12)
    assert 0.3 < ours["METEOR"] < 0.6 and 0.5 < ours["ROUGE_L"] < 0.8 and 1 < ours["CIDEr"] < 3


def test_ter_hand():
    assert ter.corpus_ter(["a b c d"], [["a b e d"]]) == pytest.approx(1 / 4)  # one substitution / 4 words
    # Fewest edits over the references (1 substitution vs 2 insertions), over their average length (3+5)/2.
    assert ter.corpus_ter(["a b c"], [["a b d", "a b c d e"]]) == pytest.approx(1 / 4)
    assert ter.corpus_ter(["A B C"], [["a b c", ""]]) == 0.0  # case-insensitive like tercom; '' = missing


@needs_data
@pytest.mark.parametrize("path", ["dart/dart-v1.1.1-full-test.xml", "webnlg2017/test/testdata_with_lex.xml"])
def test_ter_fast_equals_sacrebleu(path):
    """Our TER (batched beam edit distance, processes) = sacrebleu's TER, per input, on real references:
    the first 100 entries and the 8 with the longest references (rows that the beam cuts). An entry with
    several references outputs its last one; one with a single reference outputs it with its halves swapped
    (many shifts). Also an empty output and the whole set through the process pool."""
    from sacrebleu.metrics import TER
    groups = [g for _, g in xml_groups(DATA / path)]
    groups = groups[:100] + sorted(groups[100:], key=lambda g: -max(len(r.split()) for r in g))[:8]
    singles = [g[0].split() for g in groups[:30]]  # as one-reference inputs: swapped halves
    hyps = [g[-1] for g in groups] + [" ".join(w[len(w) // 2:] + w[:len(w) // 2]) for w in singles] + [""]
    refs = [g[:-1] for g in groups] + [g[:1] for g in groups[:30]] + [groups[0][:2]]
    assert max(len(r.split()) for g in refs for r in g) > 60  # the beam (25) cuts these rows
    sacre = TER()
    expected = [sacre._compute_segment_statistics(sacre._preprocess_segment(h), sacre._extract_reference_info(g))
                for h, g in zip(hyps, refs)]
    assert ter.segment_stats(hyps, refs, workers=1) == expected
    assert ter.segment_stats(hyps, refs, workers=2) == expected
    width = max(map(len, refs))
    streams = [[g[i] if i < len(g) else None for g in refs] for i in range(width)]
    assert ter.corpus_ter(hyps, refs) == pytest.approx(sacre.corpus_score(hyps, streams).score / 100, abs=1e-12)


def test_rouge_hand():
    out = rouge.corpus_rouge(["the cat sat"], [["the cat ran"]])
    # unigrams 2/3 both ways; bigrams "the cat" 1/2; LCS 2 of 3
    assert out == pytest.approx({"rouge1": 200 / 3, "rouge2": 50.0, "rougeL": 200 / 3})
    assert rouge.corpus_rouge(["cats running"], [["cat runs"]])["rouge1"] == pytest.approx(100)  # stemming
    assert rouge.corpus_rouge(["a b"], [["x y", "a b"]])["rouge2"] == pytest.approx(100)  # best reference


@needs_data
def test_webnlg_seen_unseen(meteor):
    groups = xml_groups(DATA / "webnlg2017/test/testdata_with_lex.xml")[:150]
    hyps, refs = [g[-1] for _, g in groups], [g[:-1] for _, g in groups]
    seen = [c in ("Airport", "Astronaut", "Building") for c, _ in groups]
    out = score("webnlg", hyps, refs, seen, meteor=meteor)
    assert out["BLEU_A"] == out["BLEU"] and out["TER_A"] == out["TER"]
    s = [i for i in range(len(hyps)) if seen[i]]
    part = score("webnlg", [hyps[i] for i in s], [refs[i] for i in s], meteor=meteor)
    for name in ("BLEU", "METEOR", "TER"):
        assert out[f"{name}_S"] == pytest.approx(part[name], abs=1e-12)
    assert out["METEOR"] == pytest.approx(meteor._m.compute_score(
        {i: [r for r in g if r] for i, g in enumerate(refs)}, {i: [h] for i, h in enumerate(hyps)})[0], abs=1e-9)


# ------------------------------------------------------------------ CLI and bad input

def test_cli_e2e_json_out(tmp_path, capsys, monkeypatch, meteor):
    class Shared:  # the CLI would start (and stop) its own METEOR JVM: lend it the module's one
        segment_stats, score = meteor.segment_stats, meteor.score

        def close(self):
            pass
    monkeypatch.setattr(coco, "Meteor", Shared)
    (tmp_path / "hyp.txt").write_text("The Eagle is a cheap pub.\nAlimentum is in the city centre.\n")
    (tmp_path / "ref.txt").write_text("The Eagle is a cheap pub.\nEagle is a pub, cheap.\n\n"
                                      "Alimentum is located in the city centre.\n\n")
    main(["score", "--task", "e2e", "--hyp", str(tmp_path / "hyp.txt"), "--ref", str(tmp_path / "ref.txt"),
          "--json", "--out", str(tmp_path / "s.json")])
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert list(last) == ["BLEU", "NIST", "METEOR", "ROUGE_L", "CIDEr"] and 0 < last["BLEU"] <= 1
    assert json.loads((tmp_path / "s.json").read_text()) == last


def test_cli_xsum_parallel_and_single_ref_file(tmp_path, capsys):
    (tmp_path / "h").write_text("the cat sat\na dog barked\n")
    (tmp_path / "r").write_text("the cat ran\na dog barked\n")  # no blank line: one reference per input
    (tmp_path / "r2").write_text("\nthe dog barked\n")  # parallel file, first input lacks a reference
    main(["score", "--task", "xsum", "--hyp", str(tmp_path / "h"), "--ref", str(tmp_path / "r"), "--json"])
    one = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert one["rouge1"] == pytest.approx((200 / 3 + 100) / 2)
    main(["score", "--task", "xsum", "--hyp", str(tmp_path / "h"), "--ref", str(tmp_path / "r"),
          "--ref", str(tmp_path / "r2"), "--json"])
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == one


@pytest.mark.parametrize("hyp,ref,culprit", [
    (b"a\nb\n", b"a\n\nb\n\nc\n", "ref"),          # 3 groups for 2 outputs
    (b"", b"a\n", "hyp"),                            # empty file
    (b"a\n", b"\n\n", "ref"),                        # only blank lines
    (b"caf\xe9\n", b"cafe\n", "hyp"),                # Latin-1, not UTF-8
    (b"a\nb\n", b"a\n\n\nb\n", "ref"),               # empty group
])
def test_bad_input(tmp_path, capsys, hyp, ref, culprit):
    (tmp_path / "hyp").write_bytes(hyp)
    (tmp_path / "ref").write_bytes(ref)
    with pytest.raises(SystemExit) as e:
        main(["score", "--task", "dart", "--hyp", str(tmp_path / "hyp"), "--ref", str(tmp_path / "ref")])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"prefixtune: error: {tmp_path / culprit}")


def test_bad_parallel_and_categories(tmp_path, capsys):
    for name, text in {"h": "a\nb\n", "r0": "a\nb\n", "r1": "a\n", "c": "seen\nmaybe\n"}.items():
        (tmp_path / name).write_text(text)
    for argv, culprit in ((["--ref", "r0", "--ref", "r1"], "r1"),
                          (["--ref", "r0", "--categories", "c"], "c:2")):
        with pytest.raises(SystemExit) as e:
            main(["score", "--task", "webnlg", "--hyp", str(tmp_path / "h")]
                 + [str(tmp_path / a) if not a.startswith("--") else a for a in argv])
        assert e.value.code == 2
        assert capsys.readouterr().err.strip() .startswith(f"prefixtune: error: {tmp_path / culprit}")
