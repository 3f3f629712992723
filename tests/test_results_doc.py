"""docs/results.md is exactly what scripts/results-md writes from params.yaml and the committed runs."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_results_doc_matches_the_committed_results():
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "results-md"), "--check"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_check_fails_on_a_stale_doc(tmp_path):
    for name in ("params.yaml", "runs", "results", "workflow"):
        if (REPO / name).exists():
            (tmp_path / name).symlink_to(REPO / name)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "paper_results.yaml").symlink_to(REPO / "docs" / "paper_results.yaml")
    (tmp_path / "docs" / "results.md").write_text((REPO / "docs" / "results.md").read_text().replace("BLEU", "BLUE", 1))
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "results-md"), "--check", "--root", str(tmp_path)],
                          capture_output=True, text=True)
    assert done.returncode == 1 and "docs/results.md: not what scripts/results-md writes" in done.stderr


def test_reductions_list_every_setting_that_differs_from_the_paper_preset(tmp_path):
    """The doc's list of reductions is read from both presets: a cpu setting moved away from the paper preset's
    (here the prefix's learning rate) appears in it, and the unchanged file lists none."""
    from prefixtune import params as P
    from prefixtune.report import results_doc as md

    text = (REPO / "params.yaml").read_text()
    (tmp_path / "params.yaml").write_text(text)
    lines = md.reductions(tmp_path, P.build(tmp_path / "params.yaml", {"preset": "cpu"}))
    assert not [line for line in lines if line.startswith(("prefix", "finetune"))]
    old = "      - {when: {method: prefix}, train: {max_steps: 200, eval_every_alt: 20}}\n"
    assert text.count(old) == 1
    new = old.replace("max_steps: 200", "lr: 1.0e-4, max_steps: 200")
    (tmp_path / "params.yaml").write_text(text.replace(old, new))
    lines = md.reductions(tmp_path, P.build(tmp_path / "params.yaml", {"preset": "cpu"}))
    assert "prefix at n = 100: lr 0.0001 (paper 5e-05)" in lines


def test_times_name_the_cpu_of_each_run_and_sum_per_cpu():
    """A grid continued across sessions runs on CPUs several-fold apart: each run's row names the CPU its train
    stage recorded (model name and fastest instruction set), and the minutes are summed per CPU as well as in all;
    the checklist's per-cell means never mix two CPUs."""
    import pandas as pd

    from prefixtune.report import checklist
    from prefixtune.report import results_doc as md
    from prefixtune.run_folder import cpu_label, machine

    xeon = {"cpu": "Intel(R) Xeon(R) Processor", "cpu_flags": ["avx2", "avx512f", "avx512_bf16", "amx_bf16"]}
    epyc = {"cpu": "AMD EPYC", "cpu_flags": ["avx2"]}
    assert (cpu_label(xeon), cpu_label(epyc), cpu_label({"host": "vm"})) == (
        "Intel(R) Xeon(R) Processor (amx_bf16)", "AMD EPYC (avx2)", "not recorded")
    zen3 = {**epyc, "cpu_family": 25, "cpu_model": 1}  # recorded since: one model name, several generations
    assert cpu_label(zen3) == "AMD EPYC (avx2; family 25 model 1)"
    recorded = REPO / "runs/cpu/e2e/prefix/n200-s2-seed0-p6-table2text/method"  # trained with the record
    assert cpu_label(machine(recorded)) == "AMD EPYC (avx2; family 25 model 1)"

    def row(run, sel, where, train, decode):
        return {"run": run, "method": "prefix", "size": 100, "sample": 0, "seed": 0, "selection": sel,
                "steps_run": 200, "steps": 200, "train_s": train, "train_cpu_s": 2 * train, "decode_s": decode,
                "score_s": 6.0, "cpu": cpu_label(where), "machine": where, "test": "dev"}

    runs = pd.DataFrame([row("a", "primary", xeon, 420.0, 180.0), row("a", "alt", xeon, 420.0, 174.0),
                         row("b", "primary", epyc, 2400.0, 900.0), row("b", "alt", epyc, 2400.0, 888.0)])
    out = []
    md.times(out.append, runs, 2)
    text = "\n".join(out)
    assert "| a | Intel(R) Xeon(R) Processor (amx_bf16) | 200/200 | 420 | 840 | 180 | 174 | 6 | 6 |" in text
    assert "| b | AMD EPYC (avx2) | 200/200 | 2400 | 4800 | 900 | 888 | 6 | 6 |" in text
    # a: (420 + 180 + 174 + 6 + 6) / 60 = 13.1 min; b: (2400 + 900 + 888 + 12) / 60 = 70 min
    assert "- Intel(R) Xeon(R) Processor (amx_bf16): 1 run(s), 13 minutes in all, 13 per run (median)" in text
    assert "- AMD EPYC (avx2): 1 run(s), 70 minutes in all, 70 per run (median)" in text
    assert ("Sum over the 2 finished runs (every column but train CPU s, from the unrounded seconds): 83 minutes; "
            "by CPU:") in text

    table = "\n".join(checklist.times(runs.assign(experiment="lowdata_e2e")))
    assert "| Intel(R) Xeon(R) Processor (amx_bf16) | prefix | 100 | 1 | 7.0 | 5.9 | 0.2 |" in table
    assert "| AMD EPYC (avx2) | prefix | 100 | 1 | 40.0 | 29.8 | 0.2 |" in table


def test_the_doc_says_when_the_selection_rules_put_a_claim_on_opposite_sides_of_zero():
    """The all-sizes mean of prefix − finetune under each selection rule: a sentence when the signs differ, none
    when they agree; with it, the cell whose kept dev loss differs most between the rules."""
    import pandas as pd

    from prefixtune.report import results_doc as md

    def runs(prefix_alt):  # (method, rule, BLEU, kept step, its dev loss)
        scores = (("prefix", "primary", 0.60, 50, 1.8), ("finetune", "primary", 0.55, 50, 2.5),
                  ("prefix", "alt", prefix_alt, 40, 1.7), ("finetune", "alt", 0.55, 10, 1.6))
        return pd.DataFrame([{"run": f"{m}-s{s}", "method": m, "size": 50, "sample": s, "seed": 0, "selection": sel,
                              "BLEU": b, "best_step": step, "kept_dev_loss": loss, "steps": 100}
                             for s in range(2) for m, sel, b, step, loss in scores])

    out = []
    md.rules_disagree(out.append, runs(0.50))
    assert len(out) == 1 and out[0].startswith("**The rules disagree on prefix − finetune:**")
    assert "+5.00 over 2 pairs with the authors' rule" in out[0]
    assert "-5.00 over 2 pairs with selection every" in out[0]
    assert ("part most on finetune at n = 50 (budget 100 steps): the authors' rule (dev loss every 50 steps) kept "
            "step(s) 50, 50, at a mean dev loss of 2.50 per target token and BLEU ×100 55.00; every tenth of the "
            "budget kept step(s) 10, 10, at 1.60 and 55.00 (means over 2 runs)") in out[0]
    assert "once every pair is in" in out[0]
    out = []
    md.rules_disagree(out.append, runs(0.50), complete=True)
    assert "With every pair in, the sign of the mean depends on the selection rule" in out[0]
    out = []
    md.rules_disagree(out.append, runs(0.58))
    assert out == []
