"""The reproduction report: the paper's numbers matched to ours, the claims' verdicts, the files it reads."""

import math
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import yaml

from prefixtune import params as P
from prefixtune.errors import InputError
from prefixtune.report import claims, numbers
from prefixtune.reproduce import read_claims

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def run_row(method, sample, bleu, model="gpt2-medium", experiment="lowdata", init=None, prefix_len=math.nan,
            selection="primary", size=100, dataset="e2e", test="dev", **scores):
    return {"run": f"{method}-{init}-{sample}-{prefix_len}", "experiment": experiment, "dataset": dataset,
            "task": dataset, "model": model, "method": method, "size": size, "sample": sample, "seed": 0,
            "prefix_len": prefix_len, "init": init, "test": test, "selection": selection,
            "scores": {"BLEU": bleu, **scores}}


def grid_of(rows):
    runs = {r["run"]: SimpleNamespace(experiments=[r["experiment"]], method=r["method"], init=r["init"],
                                      prefix_len=r["prefix_len"], dataset=r["dataset"], size=r["size"],
                                      sample=r["sample"], seed=r["seed"], settings={"model": r["model"]})
            for r in rows}
    return SimpleNamespace(runs=runs)


def test_the_ledger_names_experiments_of_the_paper_preset_and_the_papers_claims():
    ledger = read_claims(REPO / "docs/claims.yaml")
    ids = [c["id"] for c in ledger]
    assert len(ids) == len(set(ids)) >= 8
    paper = P.build(REPO / "params.yaml", {"preset": "paper"}).settings["experiments"]
    stated = {c["id"] for c in yaml.safe_load((REPO / "docs/paper_results.yaml").read_text())["claims"]}
    for c in ledger:
        assert c["experiment"] in paper, c["id"]
        assert c.get("paper") is None or c["paper"] in stated, c["id"]


def test_a_number_on_the_papers_model_is_judged_by_epsilon_and_a_proxy_is_not():
    paper = [{"id": "t.bleu", "table": "Table 2", "page": 7, "dataset": "e2e", "model": "gpt2-medium",
              "method": "prefix", "row": "PREFIX", "experiment": "main", "split": "test", "column": "BLEU",
              "metric": "bleu", "value": 70.3},
             {"id": "t.mover", "table": "Table 2", "page": 7, "dataset": "e2e", "model": "gpt2-medium",
              "method": "prefix", "row": "PREFIX", "experiment": "main", "split": "test", "column": "Mover",
              "metric": "mover", "value": 0.5},
             {"id": "t.large", "table": "Table 2", "page": 7, "dataset": "e2e", "model": "gpt2-large",
              "method": "prefix", "row": "PREFIX", "experiment": "main", "split": "test", "column": "BLEU",
              "metric": "bleu", "value": 70.3}]
    settings = {"experiments": {"main": {}}, "datasets": {"e2e": {"task": "e2e"}}}
    models = {"e2e": "gpt2-medium"}

    def compare(bleus, model):
        runs = pd.DataFrame([run_row("prefix", i, b, model=model, experiment="main", test="test", size="full")
                             for i, b in enumerate(bleus)])
        return numbers.compare(paper, runs, settings, models, str).set_index("id")

    near = compare([0.700, 0.712], "gpt2-medium")  # the E2E scorer's 0-1 BLEU, the paper's points
    assert near.loc["t.bleu", "ours"] == pytest.approx(70.6) and near.loc["t.bleu", "n"] == 2
    assert near.loc["t.bleu", "status"] == "reproduced within ε"
    assert compare([0.68], "gpt2-medium").loc["t.bleu", "status"] == "differs by more than ε"
    proxy = compare([0.55], "smollm2-135m")
    assert proxy.loc["t.bleu", "status"] == "proxy: smollm2-135m" and math.isnan(proxy.loc["t.bleu", "epsilon"])
    assert proxy.loc["t.mover", "status"] == "not computed (mover)"
    assert proxy.loc["t.large", "status"].startswith("not run (the paper's gpt2-large")
    settings["experiments"] = {}
    assert compare([0.70], "gpt2-medium").loc["t.bleu", "status"] == "not run in this preset"


CLAIM = {"id": "low", "claim": "prefix beats fine-tuning", "where": "Figure 3", "experiment": "lowdata",
         "compare": "method", "a": "prefix", "b": "finetune", "pair_on": ["dataset", "size", "sample", "seed"],
         "metric": "bleu", "rule": "better", "paper": "gap"}


@pytest.mark.parametrize("prefix, finetune, verdict", [
    ([0.60, 0.62, 0.61], [0.55, 0.56, 0.57], "holds"),
    ([0.50, 0.52, 0.51], [0.55, 0.56, 0.57], "reversed"),
    ([0.60, 0.50, 0.61], [0.55, 0.56, 0.57], "not resolved"),   # a large spread: the t interval holds 0
    ([0.60, 0.62], [0.55, 0.56], "pending (2 of 3 pairs)"),
])
def test_a_claim_is_decided_by_the_t_interval_of_paired_runs(prefix, finetune, verdict):
    rows = [run_row("prefix", i, b, model="smollm2-135m") for i, b in enumerate(prefix)]
    rows += [run_row("finetune", i, b, model="smollm2-135m") for i, b in enumerate(finetune)]
    out = claims.verdicts([CLAIM], pd.DataFrame(rows), grid_of(rows), {"gap": {"value": 2.9}},
                          {"e2e": "gpt2-medium"})
    (row,) = out.to_dict("records")
    assert row["verdict"] == verdict and row["proxy"] and row["paper"] == 2.9
    assert math.isnan(row["low"]) == verdict.startswith("pending")  # no interval on the first pairs in
    assert row["mean_difference"] == pytest.approx(100 * (sum(prefix) - sum(finetune)) / len(prefix))


def test_a_pooled_claim_waits_for_every_planned_pair():
    """Three pairs over two sizes are not a verdict when the preset plans four: the sizes not yet in could
    change a pooled mean."""
    done = [run_row(m, i, b, model="smollm2-135m", size=size) for m, bs in (("prefix", (0.60, 0.61, 0.62)),
            ("finetune", (0.55, 0.56, 0.57))) for i, (b, size) in enumerate(zip(bs, (50, 50, 100)))]
    planned = done + [run_row(m, 3, 0.5, model="smollm2-135m", size=100) for m in ("prefix", "finetune")]
    out = claims.verdicts([CLAIM], pd.DataFrame(done), grid_of(planned), {"gap": {"value": 2.9}},
                          {"e2e": "gpt2-medium"})
    assert out.verdict.tolist() == ["pending (3 of 4 pairs)"]
    out = claims.verdicts([CLAIM], pd.DataFrame(done), grid_of(done), {"gap": {"value": 2.9}},
                          {"e2e": "gpt2-medium"})
    assert out.verdict.tolist() == ["holds"]


def test_comparable_peak_and_missing_sides():
    rows = [run_row("prefix", i, 0.600 + d, experiment="main") for i, d in enumerate((0.001, -0.002, 0.003))]
    rows += [run_row("finetune", i, 0.600, experiment="main") for i in range(3)]
    rows += [run_row("prefix", i, b + i / 1000, experiment="plen", prefix_len=p)
             for p, b in ((1, .5), (10, .6), (40, .55)) for i in range(3)]
    comparable = dict(CLAIM, id="full", experiment="main", rule="comparable", margin=2.0, paper=None)
    peak = {"id": "plen", "claim": "threshold", "where": "Figure 4", "experiment": "plen", "compare": "prefix_len",
            "metric": "bleu", "rule": "peak", "paper": "t"}
    absent = dict(CLAIM, id="adapter", b="adapter-0.1", experiment="main")
    elsewhere = dict(CLAIM, id="xsum", experiment="extrapolation")
    not_worse = dict(comparable, id="not_worse", rule="not_worse", margin=0.1)  # d: +0.1, -0.2, +0.3 BLEU points
    out = claims.verdicts([comparable, peak, absent, elsewhere, not_worse], pd.DataFrame(rows), grid_of(rows),
                          {"t": {"value": 10}}, {"e2e": "gpt2-medium"}).set_index("claim")
    assert out.loc["full", "verdict"] == "holds" and not out.loc["full", "proxy"]
    assert out.loc["not_worse", "verdict"] == "not resolved"  # the interval reaches below -0.1
    assert out.loc["plen", "verdict"] == "best at P = 10 of 1, 10, 40 (the paper's threshold)"
    few = claims.verdicts([peak], pd.DataFrame(rows[:-1]), grid_of(rows), {"t": {"value": 10}}, {"e2e": "gpt2-medium"})
    assert few.verdict[0] == "pending (fewer than 3 runs at P = 40)"
    assert out.loc["adapter", "verdict"] == "not run in this preset (no method adapter-0.1)"
    assert out.loc["xsum", "verdict"] == "not run in this preset"


def test_a_bad_ledger_is_one_line_naming_the_file_and_claim(tmp_path):
    bad = tmp_path / "claims.yaml"
    bad.write_text(yaml.safe_dump([dict(CLAIM, rule="likely")]))
    out = subprocess.run([str(BIN / "prefixtune"), "reproduce", "--claims", str(bad), "--out",
                          str(tmp_path / "r" / "reproduction.md")], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip() == (f"prefixtune: error: {bad}: claim low: rule 'likely' is not one of better, "
                                  "comparable, not_worse, peak")
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").iterdir())


def test_pairs_must_be_one_to_one():
    rows = [run_row("prefix", 0, 0.6, dataset=d) for d in ("e2e", "webnlg")] + [run_row("finetune", 0, 0.5)]
    loose = dict(CLAIM, pair_on=["seed"])  # two prefix runs would pair with one fine-tuning run
    with pytest.raises(InputError, match="claim low: pair_on .'seed'. pairs more than one run of prefix"):
        claims.verdicts([loose], pd.DataFrame(rows), grid_of(rows), {}, {"e2e": "gpt2-medium"})


def test_a_paper_row_is_matched_by_its_parameter_share():
    paper = [{"id": f"x.{p}", "table": "Table 3", "page": 7, "dataset": "xsum", "model": "bart-large",
              "method": "prefix", "params": p, "row": f"PREFIX({p})", "experiment": "main_xsum", "split": "test",
              "column": "R-2", "metric": "rouge_2", "value": 20.0} for p in ("2%", "0.1%")]
    runs = pd.DataFrame([dict(run_row("prefix", 0, None, model="facebook/bart-large", experiment="main_xsum",
                                      dataset="xsum", test="test", size="full", rouge2=20.5),
                              trainable_fraction=0.021)])
    out = numbers.compare(paper, runs, {"experiments": {"main_xsum": {}}, "datasets": {"xsum": {"task": "xsum"}}},
                          {"xsum": "facebook/bart-large"}, str).set_index("id")
    assert out.loc["x.2%", "status"] == "reproduced within ε" and out.loc["x.2%", "ours"] == 20.5
    assert out.loc["x.0.1%", "status"] == "not run in this preset (no run with 0.1% trainable parameters)"
    none = numbers.compare(paper, runs[runs.dataset == "e2e"], {"experiments": {"main_xsum": {}}, "datasets": {}},
                           {"xsum": "facebook/bart-large"}, str)  # no run of the cell at all
    assert list(none.status) == [f"not run in this preset (no run with {p} trainable parameters)" for p in ("2%", "0.1%")]
    waiting = numbers.compare(paper, runs[runs.dataset == "e2e"], {"experiments": {"main_xsum": {}}, "datasets": {}},
                              {"xsum": "facebook/bart-large"}, str, {("main_xsum", "xsum", "prefix", "test")})
    assert set(waiting.status) == {"pending (its runs have not finished)"}


def test_validation_beside_the_decoded_score_rounds_alike_and_shows_no_spread_for_one_run():
    from prefixtune.report import checklist

    runs = pd.DataFrame([run_row("prefix", "s0", 0.6072), run_row("prefix", "s1", 0.5752),
                         run_row("finetune", "s0", 0.5157)])
    runs = runs.assign(kept_dev_loss=[1.4901, 1.5084, 2.526], kept_step=[100, 50, 50], steps=[200, 200, 100])
    table = checklist.dev_beside_test(runs, "BLEU", lambda task: 100)
    prefix, finetune = (line.split(" | ") for line in table[2:])
    assert prefix[-4:-1] == ["2", "1.499 ± 0.013", "59.12 ± 2.26"] and prefix[-1] == "100/200, 50/200 |"
    assert finetune[-4:-1] == ["1", "2.526", "51.57"]  # one run: its value, no "± –"


def test_the_report_explains_every_column_of_the_csv_files_it_writes(tmp_path):
    """The CSVs' glossary in reproduction.md is CSV_COLUMNS; it must name exactly the columns the files have."""
    from prefixtune.reproduce import CSV_COLUMNS

    out = tmp_path / "reproduction.md"
    done = subprocess.run([str(BIN / "prefixtune"), "reproduce", "--preset", "cpu", "--out", str(out)], cwd=REPO,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    for name, cols in CSV_COLUMNS.items():
        assert list(pd.read_csv(tmp_path / name, nrows=0).columns) == list(cols), name
    text = out.read_text()
    assert all(f"| {c} | {m} |" in text for cols in CSV_COLUMNS.values() for c, m in cols.items())


def test_the_parameter_table_has_a_row_per_trained_size_with_its_inits_and_p():
    """A real-word init sets P to its own token count: its prefix is smaller, and the table says so per init."""
    from prefixtune.report import checklist

    def run(name, init, p, kept):
        return {"run": name, "model": "smollm2-135m", "method": "prefix", "init": init, "trained_prefix_len": p,
                "trainable_params": kept, "base_params": 1000, "trainable_fraction": kept / 1000}

    runs = pd.DataFrame([run("a", "random", 6, 60), run("b", "elephant", 2, 20), run("c", "table2text", 6, 60),
                         dict(run("d", None, None, 1000), method="finetune")])
    rows = [line.split(" | ")[1:5] for line in checklist.parameters(runs)[2:]]
    assert rows == [["prefix", "random, table2text", "6", "60"], ["prefix", "elephant", "2", "20"],
                    ["finetune", "–", "–", "1,000"]]



def test_claims_csv_has_the_glossarys_columns_whichever_claim_comes_first(tmp_path):
    """A DataFrame's columns follow its first row: a ledger whose only claim the preset does not run must still
    write every column the report explains, in its order."""
    from prefixtune.reproduce import CSV_COLUMNS

    ledger = tmp_path / "claims.yaml"
    ledger.write_text(yaml.safe_dump([dict(CLAIM, experiment="extrapolation")]))
    done = subprocess.run([str(BIN / "prefixtune"), "reproduce", "--preset", "cpu", "--claims", str(ledger),
                           "--out", str(tmp_path / "reproduction.md")], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert list(pd.read_csv(tmp_path / "claims.csv").columns) == list(CSV_COLUMNS["claims.csv"])


def test_the_report_shows_the_presets_figures_once_every_run_is_in():
    """The figures the plot stage draws, each linked beside the report with its caption, once the grid is complete;
    none before (the files would show another grid's runs)."""
    from prefixtune.reproduce import figures

    grid = P.build(REPO / "params.yaml", {"preset": "cpu"})
    assert figures(grid, len(grid.runs) - 1) == []
    shown = "\n".join(figures(grid, len(grid.runs)))
    for name in ("lowdata_e2e", "training_e2e", "init"):
        assert f"![{name}](plots/{name}.png)" in shown  # relative to results/cpu/reproduction.md
    assert "*Score per prefix initialization, random first (the paper's Figure 5" in shown
