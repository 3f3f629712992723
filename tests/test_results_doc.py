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
    (tmp_path / "docs" / "results.md").write_text((REPO / "docs" / "results.md").read_text().replace("BLEU", "BLUE", 1))
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "results-md"), "--check", "--root", str(tmp_path)],
                          capture_output=True, text=True)
    assert done.returncode == 1 and "docs/results.md: not what scripts/results-md writes" in done.stderr
