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
