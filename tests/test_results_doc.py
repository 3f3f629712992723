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
