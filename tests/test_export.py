"""Prefixes to and from PEFT: export -> PeftModel.from_pretrained gives our logits; a PEFT-trained prefix
(with or without projection) -> import gives PEFT's logits; what PEFT cannot hold is refused in one line."""

import pytest
import torch
from safetensors.torch import save_file

from prefixtune import cli
from prefixtune.batching import collate, encode_pair, positions
from prefixtune.export import from_peft_rows, peft_rows
from prefixtune.method_dir import load_method, save_method
from prefixtune.methods import build
from prefixtune.methods.config import applicable, method_config
from prefixtune.models import load_model

peft = pytest.importorskip("peft")
SOURCES = ["name[Aromi] food[Chinese]", "x", "name[Bo] area[city centre] near[The Rice Boat]"]
TARGETS = ["Aromi serves Chinese food.", "ok", "Bo is near The Rice Boat."]


def batch_of(method):
    pairs = [encode_pair(method.tokenizer, s, t, False) for s, t in zip(SOURCES, TARGETS)]
    return collate(pairs, method.tokenizer.pad_token_id, False)


def peft_logits(peft_model, batch):
    # PEFT prepends P ones to the mask and shifts explicit position ids by P (tests/test_prefix.py).
    return peft_model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                      position_ids=positions(batch["attention_mask"])).logits


def trained_prefix(name, tmp_path, reparam=True):
    model, tok = load_model(name)
    torch.manual_seed(3)
    method = build(model, tok, method_config("prefix", prefix_len=4, mid_dim=16, reparam=reparam))
    with torch.no_grad():  # a prefix that is not the initial one
        for p in method.trainable_parameters():
            p.add_(0.3 * torch.randn_like(p))
    save_method(method, tmp_path / "ours", {"model": name})
    return load_method(tmp_path / "ours")


def test_row_layout_round_trip():
    prefix = torch.randn(3, 2, 2, 5, 4)
    assert torch.equal(from_peft_rows(peft_rows(prefix), 3, 2, 4), prefix)


@pytest.mark.parametrize("name", ["tiny-gpt2", "tiny-llama"])
def test_export_loads_in_peft_with_our_logits_and_generates(tmp_path, name):
    from peft import PeftModel

    ours = trained_prefix(name, tmp_path)
    cli.main(["export", "--method-dir", str(tmp_path / "ours"), "--to", "peft", "--out", str(tmp_path / "peft")])
    assert {"adapter_config.json", "adapter_model.safetensors"} <= {p.name for p in (tmp_path / "peft").iterdir()}
    base, tok = load_model(name)
    peft_model = PeftModel.from_pretrained(base, tmp_path / "peft").eval()
    batch = batch_of(ours)
    with torch.no_grad():
        mine, theirs = ours(batch).logits, peft_logits(peft_model, batch)
    real = batch["attention_mask"].bool()
    torch.testing.assert_close(mine[real], theirs[real], atol=1e-5, rtol=0)
    # PEFT's generate runs with it (one unpadded row: nothing to line up). Only that: its tokens are not
    # checked against ours. On transformers 5.24 PEFT 0.21 hands generate the prefix as `past_key_values`,
    # which Llama's generate ignores (bench/decode_speed.py: `peft_generate_uses_prefix`); on tiny-gpt2 it
    # is used, yet its greedy tokens differ from our decode's, while transformers' own generate given the same
    # prefix as its cache gives ours (tests/test_decode.py::test_prefix_beam_search_equals_hf_generate_...).
    ids = tok(SOURCES[0], return_tensors="pt")["input_ids"]
    out = peft_model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=4, do_sample=False)
    assert out.shape[1] == ids.shape[1] + 4


@pytest.mark.parametrize("name", ["tiny-gpt2", "tiny-llama"])
@pytest.mark.parametrize("projection", [True, False])
def test_peft_trained_prefix_imports_with_peft_logits(tmp_path, name, projection):
    from peft import PrefixTuningConfig, get_peft_model

    base, tok = load_model(name)
    torch.manual_seed(5)
    peft_model = get_peft_model(base, PrefixTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=3,
                                                         prefix_projection=projection, encoder_hidden_size=8))
    with torch.no_grad():  # as if trained: every prefix parameter moved
        for p in peft_model.prompt_encoder.parameters():
            p.add_(0.5 * torch.randn_like(p))
    peft_model.eval()
    peft_model.save_pretrained(tmp_path / "peft")
    cli.main(["import", "--from", "peft", str(tmp_path / "peft"), "--out", str(tmp_path / "ours"),
              "--model", name])
    ours = load_method(tmp_path / "ours")
    assert ours.config.method == "prefix" and ours.config.prefix_len == 3
    batch = batch_of(ours)
    with torch.no_grad():
        mine, theirs = ours(batch).logits, peft_logits(peft_model, batch)
    real = batch["attention_mask"].bool()
    torch.testing.assert_close(mine[real], theirs[real], atol=1e-5, rtol=0)
    if projection:
        # A checkpoint holding the MLP instead of its output (older saves): applied once, same prefix.
        enc = peft_model.prompt_encoder["default"]
        held = {"prompt_encoder.embedding.weight": enc.embedding.weight.detach().clone(),
                **{f"prompt_encoder.transform.{k}": v.detach().clone() for k, v in enc.transform.state_dict().items()}}
        save_file(held, str(tmp_path / "peft" / "adapter_model.safetensors"))
        cli.main(["import", "--from", "peft", str(tmp_path / "peft"), "--out", str(tmp_path / "mlp"),
                  "--model", name])
        again = load_method(tmp_path / "mlp")
        torch.testing.assert_close(again.exported()["prefix"], ours.exported()["prefix"], atol=1e-6, rtol=0)


def refused(capsys, argv, needle):
    with pytest.raises(SystemExit) as e:
        cli.main(argv)
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and len(err.splitlines()) == 1 and needle in err, err


@pytest.mark.parametrize("method,model,needle", [
    ("embedding", "tiny-gpt2", "'embedding' has no PEFT prefix-tuning form"),
    ("infix", "tiny-llama", "'infix' has no PEFT prefix-tuning form"),
    ("adapter", "tiny-gpt2", "'adapter' has no PEFT prefix-tuning form"),
    ("finetune-top2", "tiny-gpt2", "'finetune-top2' has no PEFT prefix-tuning form"),
    ("prefix", "tiny-bart", "a BART prefix has an encoder prefix"),
])
def test_export_refuses_what_peft_cannot_hold(tmp_path, capsys, method, model, needle):
    m, tok = load_model(model)
    save_method(build(m, tok, method_config(method, **applicable(
        method, {"prefix_len": 2, "mid_dim": 8, "adapter_fraction": 0.05}))),
                tmp_path / "m", {"model": model})
    refused(capsys, ["export", "--method-dir", str(tmp_path / "m"), "--to", "peft", "--out", str(tmp_path / "o")],
            needle)
    assert not (tmp_path / "o").exists()


def test_import_refuses_other_peft_kinds(tmp_path, capsys):
    from peft import LoraConfig, get_peft_model

    base, _ = load_model("tiny-gpt2")
    get_peft_model(base, LoraConfig(r=2, target_modules=["c_attn"])).save_pretrained(tmp_path / "lora")
    refused(capsys, ["import", "--from", "peft", str(tmp_path / "lora"), "--out", str(tmp_path / "o")],
            "adapter_config.json [peft_type]: 'LORA' is not PEFT prefix tuning")
    refused(capsys, ["import", "--from", "peft", str(tmp_path / "nothing"), "--out", str(tmp_path / "o")],
            "adapter_config.json: no such file")
    assert not (tmp_path / "o").exists()
