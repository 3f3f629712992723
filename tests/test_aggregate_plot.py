"""aggregate and plot on synthetic score files laid out as the paper preset's grid (no training)."""

import argparse
import json
import math
import random
from pathlib import Path

import pandas as pd
import pytest

from prefixtune import aggregate, params, plot
from prefixtune.errors import InputError

REPO = Path(__file__).resolve().parents[1]


def fake_scores(run, test, rng):
    """Plausible numbers: more data is better, prefix beats finetune at small sizes (as in Figure 3)."""
    size = 5000 if run.size == "full" else run.size
    base = 0.3 + 0.08 * math.log10(size) + (0.04 if run.method == "prefix" and size < 1000 else 0.0)
    base += 0.002 * (run.prefix_len or 0) + (0.02 if run.init not in (None, "random") else 0.0)
    noise = rng.uniform(-0.01, 0.01)
    if run.dataset.startswith("xsum"):
        return {"rouge1": 100 * (base + noise), "rouge2": 40 * (base + noise), "rougeL": 80 * (base + noise)}
    out = {"BLEU": base + noise, "NIST": 8.0, "METEOR": 0.4, "ROUGE_L": base + 0.2 + noise, "CIDEr": 2.0}
    if run.dataset == "webnlg":
        out.update({"BLEU_S": base + 0.05, "BLEU_U": None, "BLEU_A": base})
    return out


def write_runs(grid, runs_dir, seed=0):
    rng = random.Random(seed)
    for rid, run in grid.runs.items():
        d = runs_dir / rid
        (d / "method").mkdir(parents=True, exist_ok=True)
        (d / "method" / "method.json").write_text(json.dumps({"trainable_fraction": 0.001, "best_step": 4}))
        (d / "method" / "log.jsonl").write_text("".join(
            json.dumps({"step": s, "epoch": 0, "loss": 30.0 / s, "token_loss": 3.0 / s, "lr": 1e-4, **({"dev_loss": 2.0 + (s - 4) ** 2 / 10}
                                                                         if s % 2 == 0 else {})}) + "\n"
            for s in range(1, 9)))
        for test in run.tests:
            (d / f"{test}.scores.json").write_text(json.dumps(fake_scores(run, test, rng)))


def run_aggregate(tmp_path, overlay):
    args = argparse.Namespace(params=str(REPO / "params.yaml"), overlay=json.dumps(overlay), preset=None,
                              runs=str(tmp_path / "runs"), tables=str(tmp_path / "tables"),
                              metrics=str(tmp_path / "metrics"))
    aggregate.run(args)
    return {t: pd.read_csv(tmp_path / "tables" / f"{t}.csv") for t in params.TABLES}


def test_paper_grid_tables_and_plots(tmp_path):
    grid = params.build(REPO / "params.yaml", {"preset": "paper"})
    write_runs(grid, tmp_path / "runs")
    tabs = run_aggregate(tmp_path, {"preset": "paper"})

    low = tabs["lowdata"]
    both = low[(low.dataset == "e2e") & (low.method == "prefix") & (low["size"].astype(str) == "50")]
    assert list(both.selection) == ["alt", "primary"]  # the authors' rule and the second one, as rows of their own
    cell = both[both.selection == "primary"]
    assert len(cell) == 1 and cell["n"].item() == 10 and cell.test.item() == "dev"  # 5 samples x 2 seeds
    assert cell["BLEU_std"].item() > 0
    runs = [r for r in grid.runs.values() if r.dataset == "e2e" and r.method == "prefix" and r.size == 50
            and "lowdata" in r.experiments]
    scores = [json.loads((tmp_path / "runs" / r.id / "dev.scores.json").read_text())["BLEU"] for r in runs]
    assert cell["BLEU"].item() == pytest.approx(sum(scores) / len(scores), rel=1e-5)
    every = pd.read_csv(tmp_path / "tables" / "runs.csv")  # the same runs, unaveraged, told apart
    mine = every[(every.experiment == "lowdata") & (every.dataset == "e2e") & (every.method == "prefix")
                 & (every["size"].astype(str) == "50") & (every.selection == "primary")]
    assert sorted(zip(mine["sample"], mine["seed"])) == sorted((r.sample, r.seed) for r in runs)
    assert sorted(mine["BLEU"]) == pytest.approx(sorted(scores), rel=1e-5)
    assert len(every) == sum(len(r.tests) * len(r.experiments) for r in grid.runs.values())

    main = tabs["main"]
    assert {"e2e", "webnlg", "dart", "xsum"} == set(main.dataset)
    assert {"BLEU", "BLEU_std", "BLEU_S", "BLEU_U", "rouge1", "n", "trainable_fraction"} \
        <= set(main.columns)
    web = main[main.dataset == "webnlg"]
    assert web["BLEU_U"].isna().all() and web["BLEU_S"].notna().all()
    assert set(tabs["extrapolation"].dataset) == {"xsum-news2sports", "xsum-withinnews"}
    abl = tabs["ablations"]
    assert set(abl.experiment) == {"prefix_length", "prefix_length_xsum", "embedding_infix", "init"}
    assert sorted(abl[abl.experiment == "prefix_length"].prefix_len) == [1, 5, 10, 20, 40]

    assert sorted(p.name for p in (tmp_path / "metrics").iterdir()) == sorted(f"{t}.json" for t in params.TABLES)
    metrics = json.loads((tmp_path / "metrics" / "lowdata.json").read_text())
    assert metrics["e2e/prefix/n50/p6-table2text/dev"] == {"BLEU": pytest.approx(cell["BLEU"].item(), rel=1e-4)}
    assert "e2e/prefix/n50/p6-table2text/dev/alt" in metrics
    xsum = json.loads((tmp_path / "metrics" / "main.json").read_text())["main_xsum/xsum/prefix/full/p100-random/test"]
    assert set(xsum) == {"rouge1", "rouge2", "rougeL"}

    out = tmp_path / "plots"
    plot.run(argparse.Namespace(tables=str(tmp_path / "tables"), out=str(out)))
    drawn = sorted(p.name for p in out.glob("*.png"))
    assert drawn == sorted(Path(p).name for p in grid.plots)
    for p in out.glob("*.png"):
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 10_000


def test_missing_scores_is_named(tmp_path):
    grid = params.build(REPO / "params.yaml", {"preset": "tiny"})
    write_runs(grid, tmp_path / "runs")
    victim = next(iter(grid.runs.values()))
    (tmp_path / "runs" / victim.id / "test.scores.json").unlink()
    with pytest.raises(InputError, match=f"{victim.id}/test.scores.json: missing"):
        run_aggregate(tmp_path, {"preset": "tiny"})


def test_single_run_cells_have_empty_std_and_plots_follow_the_data(tmp_path):
    grid = params.build(REPO / "params.yaml", {"preset": "tiny"})
    write_runs(grid, tmp_path / "runs")
    tabs = run_aggregate(tmp_path, {"preset": "tiny"})
    assert (tabs["lowdata"]["n"] == 1).all() and tabs["lowdata"]["BLEU_std"].isna().all()
    assert tabs["main"].empty and list(tabs["main"].columns)[:10] == aggregate.KEYS + ["n"]
    out = tmp_path / "plots"
    (out).mkdir()
    (out / "init.png").write_bytes(b"stale")  # a figure whose data is gone is removed
    plot.run(argparse.Namespace(tables=str(tmp_path / "tables"), out=str(out)))
    assert sorted(p.name for p in out.glob("*.png")) == sorted(Path(p).name for p in grid.plots)


def test_figures_show_each_selection_rule(tmp_path, monkeypatch):
    """Where the runs were decoded under both selection rules, the low-data figure has a row of panels per rule
    (each drawn from that rule's rows), the init figure a second bar per init, and the training figure the
    second rule's kept step."""
    key = {"experiment": "lowdata", "dataset": "e2e", "model": "m", "prefix_len": None, "init": None,
           "test": "dev", "n": 3}
    low = pd.DataFrame([{**key, "method": m, "size": s, "selection": r, "BLEU": v + (0.1 if r == "alt" else 0.0),
                         "BLEU_std": 0.01, "ROUGE_L": 0.6}
                        for m, v in (("prefix", 0.5), ("finetune", 0.4)) for s in (50, 100)
                        for r in ("primary", "alt")])
    init = pd.DataFrame([{**key, "experiment": "init", "method": "prefix", "size": 100, "init": i,
                          "prefix_len": 6, "selection": r, "BLEU": 0.5, "BLEU_std": 0.01}
                         for i in ("random", "elephant") for r in ("primary", "alt")])
    low.to_csv(tmp_path / "lowdata.csv", index=False)
    init.to_csv(tmp_path / "ablations.csv", index=False)
    pd.DataFrame([{"run": "r", "dataset": "e2e", "method": "prefix", "size": 50, "step": s, "loss": 1.0,
                   "token_loss": 1.0, "dev_loss": 3.0 - s / 10, "best_step": 20, "alt_best_step": 10}
                  for s in (10, 20)]).to_csv(tmp_path / "curves.csv", index=False)
    figs = {}
    monkeypatch.setattr(plot, "_save", lambda fig, path: figs.update({Path(path).name: fig}))
    plot.run(argparse.Namespace(tables=str(tmp_path), out=str(tmp_path / "plots")))

    axes = figs["lowdata_e2e.png"].axes
    assert [ax.get_title() for ax in axes] == ["selected by: authors' rule"] * 2 + ["selected by: every tenth of "
                                                                                 "the budget"] * 2
    bleu = {ax.get_title(): sorted(y for bar in ax.containers for y in bar.lines[0].get_ydata()) for ax in axes[::2]}
    assert bleu["selected by: authors' rule"] == pytest.approx([40, 40, 50, 50])
    assert bleu["selected by: every tenth of the budget"] == pytest.approx([50, 50, 60, 60])
    bars = figs["init.png"].axes[0].patches
    assert len(bars) == 4 and sum(b.get_hatch() == "//" for b in bars) == 2
    training = figs["training_e2e.png"]
    kept = {m: line.get_xdata()[0] for line in training.axes[0].lines for m in [line.get_marker()] if m in "os"}
    assert kept == {"o": 20, "s": 10} and "square = every tenth of the budget" in training._suptitle.get_text()


def test_a_figure_of_a_dataset_with_an_underscore_in_its_name_has_its_kinds_caption():
    assert plot.caption_of("results/toy/plots/lowdata_my_data.png") == plot.CAPTIONS["lowdata"]
    assert plot.caption_of("training_e2e.png") == plot.CAPTIONS["training"]
    assert plot.caption_of("prefix_length.png") == plot.CAPTIONS["prefix_length"]
