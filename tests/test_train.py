"""`prefixtune train` and the method directory (prefixtune.method_dir), on tiny seeded models."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from prefixtune import cli
from prefixtune.configs import TrainConfig
from prefixtune.errors import InputError
from prefixtune.batching import collate, encode_pair
from prefixtune.method_dir import load_method, save_method
from prefixtune.methods import build
from prefixtune.methods.config import applicable, method_config
from prefixtune.models import load_model
from prefixtune.train import train

METHODS = ["finetune", "finetune-top2", "prefix", "adapter"]
# Tiny random models learn slowly through a few parameters: prefix and adapter get larger rates.
LR = {"finetune": 1e-2, "finetune-top2": 1e-2, "prefix": 1e-1, "adapter": 3e-2}
PAIRS = [(f"name[Place{i}] food[{f}]", f"Place{i} serves {f} food.")
         for i, f in enumerate(["Thai", "French", "Indian", "Greek", "Chinese", "Italian"])]
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def one_thread():
    # Same thread count in this process and in subprocesses: CPU results are then bit-reproducible.
    torch.set_num_threads(1)


@pytest.fixture
def train_file(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps({"source": s, "target": t}) + "\n" for s, t in PAIRS))
    return path


# A real SIGKILL from outside the training loop: the test wraps `step_batches` (called at the start of every
# optimizer step) so that the process kills itself when step N + 1 begins, i.e. right after step N.
KILLED_AFTER = """
import os, signal, sys
import prefixtune.train as T
from prefixtune import cli
n, plan = int(sys.argv[1]), T.step_batches
def killing(step, *a, **k):
    if step == n:
        os.kill(os.getpid(), signal.SIGKILL)
    return plan(step, *a, **k)
T.step_batches = killing
cli.main(sys.argv[2:])
"""


def killed_after(step, args):
    return subprocess.run([sys.executable, "-c", KILLED_AFTER, str(step), *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True)


def command(train_file, out, method, model="tiny-gpt2", steps=12, *extra):
    return ["train", "--model", model, "--method", method, "--train", str(train_file), "--out", str(out),
            "--max-steps", str(steps), "--lr", str(LR[method]), "--batch-size", "3", "--threads", "1",
            *method_flags(method), *extra]


def method_flags(method):
    """The method's own settings of these tests, as flags (train refuses one the method does not take)."""
    own = applicable(method, {"prefix_len": 8, "mid_dim": 32, "adapter_fraction": 0.05})
    return [a for k, v in own.items() for a in (f"--{k.replace('_', '-')}", str(v))]


def trained(method_name, model_name="tiny-gpt2", out=None, steps=10):
    """Build and train a method from Python; returns (method, method.json dict)."""
    model, tokenizer = load_model(model_name)
    torch.manual_seed(0)
    method = build(model, tokenizer, method_config(method_name, **applicable(
        method_name, {"prefix_len": 8, "mid_dim": 32, "adapter_fraction": 0.05})))
    meta = train(method, PAIRS, TrainConfig(max_steps=steps, lr=LR[method_name], batch_size=3, save_every=0),
                 out, info={"model": model_name})
    return method, meta


def batch_of(method, pairs=PAIRS):
    enc = [encode_pair(method.tokenizer, s, t, method.encoder_decoder) for s, t in pairs]
    return collate(enc, method.tokenizer.pad_token_id, method.encoder_decoder)


def test_all_methods_are_tested():
    from prefixtune.methods import METHODS as REGISTRY

    # prefix and adapter are part of the matrix for real: importing them must work.
    for name in METHODS:
        assert name in REGISTRY
        build(*load_model("tiny-gpt2"), method_config(name, **applicable(name, dict(prefix_len=4, mid_dim=16))))


@pytest.mark.parametrize("method", METHODS)
def test_cli_writes_method_dir_and_loss_goes_down(tmp_path, train_file, method, capsys):
    out = tmp_path / "out"
    cli.main(command(train_file, out, method, "tiny-gpt2", 40, "--warmup-steps", "2", "--save-every", "15"))
    assert sorted(p.name for p in out.iterdir()) == ["log.jsonl", "method.json", "weights.safetensors"]
    assert not out.with_name("out.partial").exists()
    info = json.loads((out / "method.json").read_text())
    assert info["model"] == "tiny-gpt2" and info["config"]["method"] == method and info["steps"] == 40
    assert info["hparams"]["lr"] == LR[method] and info["hparams"]["batch_size"] == 3
    tensors = load_file(out / "weights.safetensors")
    assert info["trainable_params"] == sum(t.numel() for t in tensors.values()) > 0
    assert info["trainable_fraction"] == pytest.approx(info["trainable_params"] / info["base_params"])
    assert info["trainable_params_training"] > 0 and "seconds" not in info  # times: OUT.run.json
    log = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == list(range(1, 41))
    assert set(log[0]) == {"step", "epoch", "loss", "token_loss", "lr"}
    assert log[0]["lr"] < log[2]["lr"] and log[-1]["lr"] < log[2]["lr"]  # warm-up, then decay
    assert log[-1]["epoch"] == 19  # 6 examples / batch 3 = 2 steps per epoch
    first, last = sum(r["loss"] for r in log[:5]) / 5, sum(r["loss"] for r in log[-5:]) / 5
    assert last < first - 0.05, (first, last)
    assert info["final_loss"] == log[-1]["loss"]


@pytest.mark.parametrize("method", METHODS)
def test_base_model_untouched_and_method_parameters_changed(tmp_path, method):
    m, _ = trained(method, out=tmp_path / "out")
    fresh = dict(load_model("tiny-gpt2")[0].named_parameters())
    params = dict(m.model.named_parameters())
    assert set(params) == set(fresh)
    trainable = {id(p) for p in m.trainable_parameters()}
    changed = [n for n, p in params.items() if id(p) in trainable]
    for name, p in params.items():
        if id(p) in trainable:
            assert not torch.equal(p, fresh[name]), f"{name} did not train"
        else:
            assert torch.equal(p, fresh[name]), f"frozen {name} changed"
    own = [p for n, p in m.named_parameters() if not n.startswith("model.")]
    if method.startswith("finetune"):
        assert changed and not own
    else:
        assert not changed and own and all(p.requires_grad for p in own)


@pytest.mark.parametrize("method", METHODS)
def test_resume_after_kill_is_bit_identical(tmp_path, train_file, method):
    args = command(train_file, tmp_path / "out", method, "tiny-gpt2", 12, "--save-every", "3", "--warmup-steps", "2")
    out, partial = tmp_path / "out", tmp_path / "out.partial"
    # A real SIGKILL right after optimizer step 7: the last checkpoint is step 6.
    killed = killed_after(7, args)
    assert killed.returncode == -9, killed.stderr
    assert not out.exists()
    assert torch.load(partial / "checkpoint.pt", weights_only=False)["step"] == 6
    assert len((partial / "log.jsonl").read_text().splitlines()) >= 6  # what was flushed at the checkpoint
    cli.main(args)  # the same command again: resumes
    assert out.is_dir() and not partial.exists()
    ref = tmp_path / "ref"
    cli.main(command(train_file, ref, method, "tiny-gpt2", 12, "--save-every", "0", "--warmup-steps", "2"))
    a, b = load_file(out / "weights.safetensors"), load_file(ref / "weights.safetensors")
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name
    logs = [[json.loads(x) for x in (d / "log.jsonl").read_text().splitlines()] for d in (out, ref)]
    assert [r["step"] for r in logs[0]] == list(range(1, 13))
    assert [(r["loss"], r["lr"]) for r in logs[0]] == [(r["loss"], r["lr"]) for r in logs[1]]


def test_resume_tolerates_a_torn_log_line_and_says_so(tmp_path, train_file, capsys):
    args = command(train_file, tmp_path / "out", "prefix", "tiny-gpt2", 12, "--save-every", "3")
    killed = killed_after(7, args)
    assert killed.returncode == -9
    log = tmp_path / "out.partial" / "log.jsonl"
    with open(log, "ab") as f:  # what a kill in the middle of a write leaves: a torn last line
        f.write(b'{"step": 8, "epoch": 1, "lo')
    cli.main(args)
    assert "out: resumed from step 6 of 12" in capsys.readouterr().err
    rows = [json.loads(x) for x in (tmp_path / "out" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, 13))


DEV = [(f"name[Place{i}] food[{f}]", f"{f} is never served at Place{i}!")
       for i, f in enumerate(["Thai", "French", "Indian"])]


@pytest.fixture
def dev_file(tmp_path):
    path = tmp_path / "dev.jsonl"
    path.write_text("".join(json.dumps({"source": s, "target": t}) + "\n" for s, t in DEV))
    return path


def test_dev_selection_stops_early_keeps_the_best_and_resumes_bit_identically(tmp_path, train_file, dev_file,
                                                                               capsys):
    from prefixtune.train import dev_loss
    # Fine-tuning on "serves X food" while dev says "X is never served": the dev loss falls, then rises.
    args = command(train_file, tmp_path / "out", "finetune", "tiny-gpt2", 30, "--dev", str(dev_file),
                   "--eval-every", "2", "--patience", "3", "--save-every", "4")
    cli.main(args)
    assert "stopped early at step" in capsys.readouterr().err
    meta = json.loads((tmp_path / "out" / "method.json").read_text())
    curve = [c["dev_loss"] for c in meta["dev_curve"]]
    assert meta["stopped_early"] and meta["best_step"] < meta["steps_run"] < 30
    assert [c["step"] for c in meta["dev_curve"]] == list(range(2, meta["steps_run"] + 1, 2))
    assert min(curve) == meta["best_dev_loss"] and curve[-1] > meta["best_dev_loss"]  # it rose, then it stopped
    assert len(curve) - 1 - curve.index(min(curve)) == 3  # patience 3
    logged = [r for r in map(json.loads, (tmp_path / "out" / "log.jsonl").read_text().splitlines())]
    assert len(logged) == meta["steps_run"] and [r["dev_loss"] for r in logged if "dev_loss" in r] == curve
    # the saved parameters are those of the best step, not the last one
    saved = load_method(tmp_path / "out")
    batches = [collate([encode_pair(saved.tokenizer, s, t, False) for s, t in DEV], saved.tokenizer.pad_token_id,
                       False)]
    assert dev_loss(saved, batches) == pytest.approx(meta["best_dev_loss"], abs=1e-6)

    # killed after step 13 (checkpoint at 12, three evaluations from the end): the same command resumes
    # to the same stop, the same best step and the same tensors
    again = command(train_file, tmp_path / "again", "finetune", "tiny-gpt2", 30, "--dev", str(dev_file),
                    "--eval-every", "2", "--patience", "3", "--save-every", "4")
    killed = killed_after(13, again)
    assert killed.returncode == -9
    cli.main(again)
    other = json.loads((tmp_path / "again" / "method.json").read_text())
    for key in ("best_step", "best_dev_loss", "dev_curve", "steps_run", "final_loss"):
        assert other[key] == meta[key], key
    a, b = load_file(tmp_path / "out" / "weights.safetensors"), load_file(tmp_path / "again" / "weights.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_resume_refuses_a_different_run(tmp_path, train_file, capsys):
    args = command(train_file, tmp_path / "out", "finetune-top2", "tiny-gpt2", 12, "--save-every", "3")
    killed = killed_after(4, args)
    assert killed.returncode == -9
    with pytest.raises(SystemExit) as e:
        cli.main(args + ["--lr", "0.5"])
    assert e.value.code == 2
    assert "out.partial/checkpoint.pt: checkpoint of a different run" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def write(path, text):
    path.write_text(text)
    return path


def one_pair(d):
    """A valid one-line training file (for the cases whose fault is a flag)."""
    return write(d / "t.jsonl", '{"source": "a", "target": "b"}\n')


BAD = {
    "unknown method": (one_pair, {"--method": "nope"}, "unknown method 'nope'"),
    "unknown model": (one_pair, {"--model": "/no/such/model"}, "unknown model '/no/such/model'"),
    "prefix length 0": (one_pair, {"--prefix-len": "0"}, "--prefix-len must be positive"),
    "no target": (lambda d: write(d / "t.jsonl", '{"source": "a", "target": "b"}\n{"source": "c"}\n'),
                  {}, "t.jsonl:2: missing field 'target'"),
    "not JSON": (lambda d: write(d / "t.jsonl", '{"source": "a", "target": "b"}\n\n{"source": "c", tar\n'),
                 {}, "t.jsonl:3: not valid JSON"),
    "target not a string": (lambda d: write(d / "t.jsonl", '{"source": "a", "target": null}\n'),
                            {}, "t.jsonl:1: 'target' must be a string"),
    "empty file": (lambda d: write(d / "t.jsonl", "\n"), {}, "t.jsonl: no training examples"),
    "empty target": (lambda d: write(d / "t.jsonl", '{"source": "a", "target": "b"}\n{"source": "c", "target": " "}\n'),
                     {}, "t.jsonl:2: 'target' is empty"),
    "adapter fraction 5": (one_pair, {"--method": "adapter", "--adapter-fraction": "5"},
                           "--adapter-fraction is a fraction"),
    "adapter fraction 0": (one_pair, {"--method": "adapter", "--adapter-fraction": "0"},
                           "between 0 and 1 exclusive (got 0.0"),
    "setting of another method": (one_pair, {"--method": "finetune", "--mid-dim": "64"},
                                  "method 'finetune' does not take --mid-dim (it takes no settings of its own)"),
    "no such device": (one_pair, {"--device": "cuda:9"}, "--device cuda:9: this machine has"),
    "model typo": (one_pair, {"--model": "tiny-gpt3"}, "unknown model 'tiny-gpt3': not a built-in model (tiny-gpt2, "
                   "tiny-llama, tiny-bart, smollm2-135m), not a local folder, not in the Hugging Face cache, "
                   "and the hub cannot be reached (offline); give the path of a model folder"),
    "folder without config": (one_pair, {"--model": "."}, ": not a model folder (no config.json)"),
    "dev without eval-every": (one_pair, {"--dev": "t.jsonl"}, "--dev needs --eval-every N"),
    "patience without dev": (one_pair, {"--patience": "2"}, "--patience needs --dev"),
    "bad dev line": (lambda d: write(d / "d.jsonl", '{"source": "a"}\n') and
                     write(d / "t.jsonl", '{"source": "a", "target": "b"}\n'),
                     {"--dev": "d.jsonl", "--eval-every": "1"}, "d.jsonl:1: missing field 'target'"),
    "missing file": (lambda d: d / "missing.jsonl", {}, "missing.jsonl: no such file"),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_input_one_line_exit_2_no_output(tmp_path, case, capsys, monkeypatch):
    make, override, message = BAD[case]
    # Offline, as on a machine without network: the hub probe fails at once (connection refused on the
    # loopback discard port), so a typo costs no retries. A fresh HF cache: nothing is cached.
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setattr("huggingface_hub.constants.ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.chdir(tmp_path)
    path = make(tmp_path)
    out = tmp_path / "out"
    args = ["train", "--model", "tiny-gpt2", "--method", "prefix", "--train", str(path), "--out", str(out),
            "--max-steps", "2"]
    for flag, value in override.items():
        if flag in args:
            args[args.index(flag) + 1] = value
        else:
            args += [flag, value]
    with pytest.raises(SystemExit) as e:
        cli.main(args)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("prefixtune: error: "), err
    assert message in err
    assert [p.name for p in tmp_path.iterdir() if p.suffix != ".jsonl"] == []  # no OUT, no OUT.partial


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("model", ["tiny-gpt2", "tiny-llama", "tiny-bart"])
def test_load_method_round_trip_gives_identical_logits(tmp_path, method, model):
    m, meta = trained(method, model, tmp_path / "out", steps=3)
    loaded = load_method(tmp_path / "out")
    assert loaded.config == m.config and type(loaded) is type(m)
    assert loaded.num_exported() == meta["trainable_params"]
    batch = batch_of(m)
    with torch.no_grad():
        assert torch.equal(m(batch).logits, loaded(batch).logits)
    # a second save of the loaded method writes the same tensors
    save_method(loaded, tmp_path / "again", {"model": model})
    a, b = load_file(tmp_path / "out" / "weights.safetensors"), load_file(tmp_path / "again" / "weights.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_load_method_errors_name_the_file(tmp_path):
    with pytest.raises(InputError, match="no such method directory"):
        load_method(tmp_path / "nothing")
    d = tmp_path / "m"
    d.mkdir()
    with pytest.raises(InputError, match=r"m.method\.json: no such file"):
        load_method(d)
    (d / "method.json").write_text("{not json")
    with pytest.raises(InputError, match=r"m.method\.json: not valid JSON"):
        load_method(d)
    trained("finetune-top2", out=d, steps=1)
    (d / "weights.safetensors").write_bytes(b"garbage")
    with pytest.raises(InputError, match=r"m.weights\.safetensors: unreadable"):
        load_method(d)
    (d / "weights.safetensors").unlink()
    with pytest.raises(InputError, match=r"m.weights\.safetensors: no such file"):
        load_method(d)


def test_loss_per_sequence_by_default_per_token_as_option(tmp_path, train_file):
    """--loss sequence (default, the paper's): each target's NLL summed, mean over the batch; --loss token:
    the per-token mean. The first step sees the same batch and parameters, so its logged losses differ by the
    batch's mean target length; the trained prefixes differ (clipping at norm 1 and the steps differ)."""
    runs = {}
    for per in ("sequence", "token"):
        extra = [] if per == "sequence" else ["--loss", "token"]
        cli.main(command(train_file, tmp_path / per, "prefix", "tiny-gpt2", 3, *extra))
        info = json.loads((tmp_path / per / "method.json").read_text())
        assert info["hparams"]["loss"] == per
        log = [json.loads(line) for line in (tmp_path / per / "log.jsonl").read_text().splitlines()]
        runs[per] = (log[0]["loss"], load_file(tmp_path / per / "weights.safetensors"))
    ratio = runs["sequence"][0] / runs["token"][0]
    assert 3 < ratio < 30  # target tokens per row of the first batch (tiny-gpt2 tokenizes by bytes)
    assert any(not torch.equal(runs["sequence"][1][k], runs["token"][1][k]) for k in runs["token"][1])


@pytest.mark.parametrize("method", ["prefix", "finetune"])
def test_bfloat16_is_mixed_precision_with_float32_masters(tmp_path, train_file, method):
    """--dtype bfloat16: the forward runs in bfloat16 (autocast), the trained tensors stay float32 (master
    copies) and are written as float32; the first step's loss is the float32 one up to bfloat16 rounding,
    and not bit-equal to it (bfloat16 did run)."""
    logs = {}
    for dtype in ("float32", "bfloat16"):
        out = tmp_path / dtype
        cli.main(command(train_file, out, method, "tiny-llama", 4, "--dtype", dtype))
        info = json.loads((out / "method.json").read_text())
        assert info["hparams"]["dtype"] == dtype
        assert {t.dtype for t in load_file(out / "weights.safetensors").values()} == {torch.float32}
        logs[dtype] = [json.loads(x)["loss"] for x in (out / "log.jsonl").read_text().splitlines()]
    first32, first16 = logs["float32"][0], logs["bfloat16"][0]
    assert first16 != first32 and first16 == pytest.approx(first32, rel=2e-2)
    assert all(x == x for x in logs["bfloat16"])  # no NaN


def test_two_selection_rules_from_one_training(tmp_path, train_file, dev_file):
    """--eval-every-alt looks at the dev loss more often without changing the training: the first rule's
    parameters are those of a run without it, bit for bit; the second rule keeps its own best (alt.safetensors
    when it is another step), and load_method(selection="alt") gives that step's dev loss back."""
    from prefixtune.train import dev_loss
    base = command(train_file, tmp_path / "one", "finetune", "tiny-gpt2", 30, "--dev", str(dev_file),
                   "--eval-every", "15")
    cli.main(base)
    both = command(train_file, tmp_path / "two", "finetune", "tiny-gpt2", 30, "--dev", str(dev_file),
                   "--eval-every", "15", "--eval-every-alt", "2")
    cli.main(both)
    one, two = (json.loads((tmp_path / d / "method.json").read_text()) for d in ("one", "two"))
    assert (two["best_step"], two["best_dev_loss"]) == (one["best_step"], one["best_dev_loss"]) and two["best_step"] in (15, 30)
    a, b = load_file(tmp_path / "one" / "weights.safetensors"), load_file(tmp_path / "two" / "weights.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    curve = {c["step"]: c["dev_loss"] for c in two["dev_curve"]}
    assert sorted(curve) == sorted({*range(2, 31, 2), 15})  # every evaluation of either rule, once
    alt = two["alt"]
    assert alt["eval_every"] == 2 and alt["best_dev_loss"] == min(curve.values()) == curve[alt["best_step"]]
    # the dev loss first falls and then rises here (see the test above), so the finer rule finds an earlier step
    assert alt["best_step"] != two["best_step"] and alt["weights"] and (tmp_path / "two" / "alt.safetensors").is_file()
    saved = load_method(tmp_path / "two", selection="alt")
    batches = [collate([encode_pair(saved.tokenizer, s, t, False) for s, t in DEV], saved.tokenizer.pad_token_id,
                       False)]
    assert dev_loss(saved, batches) == pytest.approx(alt["best_dev_loss"], abs=1e-6)
    with pytest.raises(InputError, match=r"one/method.json \[alt\]: missing \(trained without --eval-every-alt\)"):
        load_method(tmp_path / "one", selection="alt")


def test_selection_by_dev_rouge2_keeps_the_highest_and_leaves_the_training_as_it_was(tmp_path, train_file, dev_file,
                                                                                      monkeypatch):
    """--select-by rouge2 (the authors' low-data XSum): at each evaluation the dev set's ROUGE-2 is computed
    (here scripted: a tiny random model scores 0 everywhere) and the kept step is the curve's highest, the dev
    loss still logged beside it; the training itself is that of a dev-loss run (the same final loss: decoding
    draws no random numbers). A dev-loss run's method.json has no `select`."""
    import prefixtune.train as T

    flags = ["--dev", str(dev_file), "--eval-every", "3", "--save-every", "0"]
    cli.main(command(train_file, tmp_path / "loss", "prefix", "tiny-bart", 12, *flags))
    scripted, seen = iter([10.0, 30.0, 20.0, 25.0]), []

    def rouge2(method, pairs, select, limits):
        seen.append((len(pairs), select.dev_beam, select.dev_max_new_tokens))
        T.dev_rouge2_real(method, pairs, select, limits)  # the real decode runs too (and must leave no trace)
        return next(scripted)

    monkeypatch.setattr(T, "dev_rouge2_real", T.dev_rouge2, raising=False)
    monkeypatch.setattr(T, "dev_rouge2", rouge2)
    cli.main(command(train_file, tmp_path / "r2", "prefix", "tiny-bart", 12, *flags, "--select-by", "rouge2",
                     "--dev-beam", "2", "--dev-max-new-tokens", "8", "--dev-batch-size", "4"))
    loss, r2 = (json.loads((tmp_path / d / "method.json").read_text()) for d in ("loss", "r2"))
    assert "select" not in loss and "select_by" not in loss and "best_dev_rouge2" not in loss
    assert r2["select"] == {"select_by": "rouge2", "dev_beam": 2, "dev_length_penalty": 1.0, "dev_max_new_tokens": 8,
                            "dev_min_new_tokens": 0, "dev_batch_size": 4}
    assert seen == [(len(DEV), 2, 8)] * 4
    curve = {c["step"]: c for c in r2["dev_curve"]}
    assert [curve[k]["dev_rouge2"] for k in (3, 6, 9, 12)] == [10.0, 30.0, 20.0, 25.0]
    assert (r2["select_by"], r2["best_step"], r2["best_dev_rouge2"]) == ("rouge2", 6, 30.0)
    assert r2["best_dev_loss"] == curve[6]["dev_loss"]  # the dev loss at the kept step
    assert [c["dev_loss"] for c in loss["dev_curve"]] == [curve[k]["dev_loss"] for k in sorted(curve)]
    assert r2["final_loss"] == loss["final_loss"]


def test_dev_rouge2_scores_the_decoded_dev_set(monkeypatch):
    """dev_rouge2 decodes the dev sources with the SelectConfig's settings and scores ROUGE-2 F x100 against the
    targets (rouge-score, stemmed, the mean over inputs)."""
    import prefixtune.decoding.search as search
    from prefixtune.batching import Limits
    from prefixtune.configs import SelectConfig
    from prefixtune.metrics.rouge import corpus_rouge
    from prefixtune.selection import dev_rouge2

    pairs = [("a", "the cat sat on the mat"), ("b", "dogs run in the park")]
    hyps = ["the cat sat on a mat", "a dog ran in the park"]
    calls = []

    def decode(methods, sources, **kw):
        calls.append((sources, kw))
        return hyps

    monkeypatch.setattr(search, "decode", decode)
    method = torch.nn.Linear(1, 1)
    select = SelectConfig(select_by="rouge2", dev_beam=6, dev_length_penalty=1.0, dev_max_new_tokens=61,
                          dev_min_new_tokens=10, dev_batch_size=7)
    got = dev_rouge2(method, pairs, select, Limits())
    assert got == corpus_rouge(hyps, [[t] for _, t in pairs])["rouge2"] and 0 < got < 100
    (sources, kw), = calls
    assert sources == ["a", "b"] and kw["beam"] == 6 and kw["max_new_tokens"] == 61 and kw["min_new_tokens"] == 10
    assert kw["batch_size"] == 7 and kw["progress"] is False and method.training


@pytest.mark.parametrize("extra, message", [
    (["--dev-beam", "3"], "--dev-beam needs --select-by rouge2 (the dev loss needs no decode)"),
    (["--select-by", "rouge2", "--dev-max-new-tokens", "4", "--dev-min-new-tokens", "4"],
     "--dev-min-new-tokens must be at least 0 and below --dev-max-new-tokens (got 4)"),
])
def test_selection_settings_that_cannot_apply_are_one_line(tmp_path, train_file, dev_file, extra, message, capsys):
    args = command(train_file, tmp_path / "x", "prefix", "tiny-gpt2", 4, "--dev", str(dev_file), "--eval-every", "2",
                   *extra)
    with pytest.raises(SystemExit) as e:
        cli.main(args)
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and err.endswith(message) and err.count("\n") == 0 and not (tmp_path / "x").exists()


def test_source_prefix_reaches_training_and_decoding(tmp_path, train_file, capsys):
    """The authors' low-data token for fine-tuning: text before every source, recorded in method.json, so that
    decode writes it before every input without being told."""
    from prefixtune.decoding.search import decode
    cli.main(command(train_file, tmp_path / "m", "finetune", "tiny-gpt2", 2, "--source-prefix", "table-to-text:"))
    assert json.loads((tmp_path / "m" / "method.json").read_text())["source_prefix"] == "table-to-text:"
    inputs = tmp_path / "in.jsonl"
    inputs.write_text("".join(json.dumps({"source": s}) + "\n" for s, _ in PAIRS[:3]))
    cli.main(["decode", "--model", "tiny-gpt2", "--method-dir", str(tmp_path / "m"), "--input", str(inputs),
              "--out", str(tmp_path / "hyp.txt"), "--beam", "2", "--max-new-tokens", "6"])
    method = load_method(tmp_path / "m")
    with_token = decode([method], [f"table-to-text: {s}" for s, _ in PAIRS[:3]], beam=2, max_new_tokens=6,
                        progress=False)
    without = decode([method], [s for s, _ in PAIRS[:3]], beam=2, max_new_tokens=6, progress=False)
    assert (tmp_path / "hyp.txt").read_text().splitlines() == with_token != without


def test_decode_of_the_second_rule_copies_when_both_kept_the_same_step(tmp_path, train_file, dev_file, capsys):
    cli.main(command(train_file, tmp_path / "m", "prefix", "tiny-gpt2", 4, "--dev", str(dev_file),
                     "--eval-every", "4", "--eval-every-alt", "4"))
    meta = json.loads((tmp_path / "m" / "method.json").read_text())
    assert meta["alt"]["best_step"] == meta["best_step"] and not meta["alt"]["weights"]
    assert not (tmp_path / "m" / "alt.safetensors").exists()
    first = tmp_path / "dev.hyp.txt"
    first.write_text("the first rule's output\n")  # what decode --selection primary wrote
    cli.main(["decode", "--model", "tiny-gpt2", "--method-dir", str(tmp_path / "m"), "--input", "no-such.jsonl",
              "--out", str(tmp_path / "dev-alt.hyp.txt"), "--selection", "alt", "--same-step-as", str(first)])
    assert (tmp_path / "dev-alt.hyp.txt").read_text() == first.read_text()
    assert "kept the first rule's step; copied" in capsys.readouterr().err


def test_progress_lines_off_a_terminal(tmp_path, train_file, dev_file):
    """A Snakemake or DVC log is not a terminal: train and decode still say where they are."""
    out = subprocess.run([sys.executable, "-m", "prefixtune.cli", *command(
        train_file, tmp_path / "m", "prefix", "tiny-gpt2", 8, "--dev", str(dev_file), "--eval-every", "4")],
        cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    lines = [x for x in out.stderr.splitlines() if x.startswith("train prefix: step ")]
    assert [x.split()[3] for x in lines] == [f"{k}/8" for k in range(1, 9)]  # every step of 8 (at most ~20 lines)
    assert "dev " in lines[3] and "(best " in lines[3] and "ETA" in lines[-1] and "loss " in lines[0]
