"""Every method behind `Method`: what trains, what stays frozen, sizes, export, and decode == train."""

import importlib

import pytest
import torch

from prefixtune.errors import InputError
from prefixtune.batching import IGNORE, collate, encode_pair, positions
from prefixtune.method_dir import load_method, save_method
from prefixtune.methods import build
from prefixtune.methods.config import applicable, method_config
from prefixtune.methods.adapter import adapter_count, adapter_sites, bottleneck_size
from prefixtune.methods.finetune import final_norm, top_layers
from prefixtune.methods.infix import kv_shape
from prefixtune.models import load_model

MODELS = ["tiny-gpt2", "tiny-llama", "tiny-bart"]
P, MID = 3, 16


def _prefix_available():
    try:
        importlib.import_module("prefixtune.methods.prefix")
        return True
    except Exception:  # not written yet (or broken): tested by its own author
        return False


METHODS = ["adapter", "embedding", "infix", "finetune", "finetune-top2"] + (["prefix"] if _prefix_available() else [])
CASES = [(n, m) for n in MODELS for m in METHODS if not (m == "infix" and n == "tiny-bart")]

PAIRS = [("name[Aromi] food[Chinese] area[city centre]", "Aromi serves Chinese food."),
         ("name[Bo]", "Bo is a pub in the city."),
         ("x", "ok")]


def setup(name, method, **kw):
    torch.manual_seed(1)
    model, tok = load_model(name)
    config = method_config(method, **applicable(method, {"prefix_len": P, "mid_dim": MID, "adapter_fraction": 0.03,
                                                          **kw}))
    return build(model, tok, config), tok


def batches(tok, encoder_decoder):
    pairs = [encode_pair(tok, s, t, encoder_decoder) for s, t in PAIRS]
    train = collate(pairs, tok.pad_token_id, encoder_decoder)
    decode = collate([(s, []) for s, _ in pairs], tok.pad_token_id, encoder_decoder)
    return train, decode


def train_steps(method, batch, steps=3):
    opt = torch.optim.AdamW(method.trainable_parameters(), lr=1e-2)
    method.train()
    for _ in range(steps):
        method(batch).loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=False)
    method.eval()


def expected_trained(method):
    """Names (in method.named_parameters()) that must train."""
    names = {id(p): n for n, p in method.named_parameters()}
    if method.name == "finetune":
        return {names[id(p)] for p in method.model.parameters()}
    if method.name == "finetune-top2":  # by name, as the authors' code picks them (run_language_modeling.py:800)
        cfg = method.model.config
        layers = cfg.decoder_layers if cfg.is_encoder_decoder else cfg.num_hidden_layers
        tops = tuple(f"{stack}.{i}." for stack in ("transformer.h", "model.layers", "decoder.layers")
                     for i in (layers - 2, layers - 1))
        extra = ("transformer.ln_f.", "transformer.wte.", "model.norm.", "model.embed_tokens.", "lm_head.",
                 "model.shared.", "decoder.layer_norm.")
        return {n for n in names.values() if n.startswith("model.") and any(t in n for t in tops + extra)}
    return {n for n in names.values() if not n.startswith("model.")}


@pytest.mark.parametrize("name,method", CASES)
def test_only_method_parameters_train(name, method):
    m, tok = setup(name, method)
    train, _ = batches(tok, m.encoder_decoder)
    before = {n: p.detach().clone() for n, p in m.named_parameters()}
    trained = expected_trained(m)
    assert trained and {n for n, p in m.named_parameters() if p.requires_grad} == trained
    m.train()
    m(train).loss.backward()
    assert {n for n, p in m.named_parameters() if p.grad is not None} == trained
    assert any(p.grad.abs().sum() > 0 for p in m.trainable_parameters())
    m.zero_grad(set_to_none=False)
    train_steps(m, train)
    after = dict(m.named_parameters())
    for n, old in before.items():
        if n not in trained:
            assert torch.equal(after[n], old), f"{n} changed"
    assert any(not torch.equal(after[n], before[n]) for n in trained)


def test_infix_is_decoder_only():
    with pytest.raises(InputError, match="decoder-only"):
        setup("tiny-bart", "infix")


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("method", ["adapter", "embedding", "infix", "finetune", "finetune-top2"])
@pytest.mark.parametrize("reparam", [True, False])
def test_trainable_count_formula(name, method, reparam):
    if method == "infix" and name == "tiny-bart":
        return
    m, _ = setup(name, method, reparam=reparam)
    cfg = m.model.config
    d = cfg.hidden_size
    if method == "adapter":  # lin (the default): one adapter per block, BART: encoder + decoder blocks
        expected = exported = adapter_count(len(adapter_sites(m.model)), d, m.size)
        assert len(adapter_sites(m.model)) == cfg.num_hidden_layers * (2 if m.encoder_decoder else 1)
    elif method in ("embedding", "infix"):
        if method == "embedding":
            width = d
        else:
            layers, kv_heads, head_dim = kv_shape(cfg)
            width = layers * 2 * kv_heads * head_dim
        exported = P * width
        expected = P * d + (d * MID + MID) + (MID * width + width) if reparam else P * width
        if method == "infix":  # + the second embedding E2 (the code's wte2), exported beside the merged infix
            exported, expected = exported + P * d, expected + P * d
    elif method == "finetune":
        expected = exported = m.base_parameters()
    else:  # top two blocks, final norm, token embedding (= the tied LM head), as the authors' code
        head = m.model.get_output_embeddings().weight
        tied = head is m.model.get_input_embeddings().weight
        norm = final_norm(m.model)
        expected = exported = (sum(p.numel() for layer in top_layers(m.model)[-2:] for p in layer.parameters())
                               + (sum(p.numel() for p in norm.parameters()) if norm is not None else 0)
                               + m.model.get_input_embeddings().weight.numel() + (0 if tied else head.numel()))
    assert sum(p.numel() for p in m.trainable_parameters()) == expected
    assert m.num_exported() == exported


def smollm2_config():
    """SmolLM2-135M's architecture (GGUF metadata), built on the meta device: sizes without weights."""
    from transformers import LlamaConfig

    return LlamaConfig(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                       num_attention_heads=9, num_key_value_heads=3, tie_word_embeddings=True)


@pytest.mark.parametrize("arch,fraction,size,share", [
    ("gpt2-medium", 0.001, 6, 0.00104), ("gpt2-medium", 0.03, 215, 0.03001),
    ("smollm2", 0.001, 2, 0.0009), ("smollm2", 0.03, 115, 0.02996)])
def test_adapter_bottleneck_for_the_papers_fractions(arch, fraction, size, share):
    """The bottleneck r that 0.1% and 3% give (lin design), from the architectures on the meta device: GPT-2
    medium (the paper's model, 354.8M parameters, 24 blocks of width 1024) and SmolLM2-135M (30 of 576).
    The adapter module's docstring states these numbers."""
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaForCausalLM

    from prefixtune.methods.adapter import Adapter

    with torch.device("meta"):
        model = (GPT2LMHeadModel(GPT2Config(n_embd=1024, n_layer=24, n_head=16)) if arch == "gpt2-medium"
                 else LlamaForCausalLM(smollm2_config()))
    m = Adapter(model, None, method_config("adapter", adapter_fraction=fraction))
    base, count = m.base_parameters(), sum(p.numel() for p in m.trainable_parameters())
    assert base == {"gpt2-medium": 354_823_168, "smollm2": 134_515_008}[arch]
    sites, d = len(adapter_sites(model)), model.config.hidden_size
    assert sites == model.config.num_hidden_layers and count == adapter_count(sites, d, m.size)
    assert m.size == size and round(count / base, 5) == share
    assert abs(count - fraction * base) <= sites * (2 * d + 1) / 2  # the closest r


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("design", ["lin", "houlsby"])
def test_adapter_size_is_closest_on_tiny(name, design):
    model, _ = load_model(name)
    base = sum(p.numel() for p in model.parameters())
    sites, d = len(adapter_sites(model, design)), model.config.hidden_size
    for fraction in (0.001, 0.03, 0.2):
        r = bottleneck_size(base, sites, d, fraction, design)
        err = abs(adapter_count(sites, d, r, design) - fraction * base)
        assert r >= 1 and all(err <= abs(adapter_count(sites, d, x, design) - fraction * base)
                              for x in (r - 1, r + 1) if x >= 1)
    m = build(model, None, method_config("adapter", adapter_fraction=0.03, adapter_design=design))
    assert sum(p.numel() for p in m.trainable_parameters()) == adapter_count(sites, d, m.size, design)


@pytest.mark.parametrize("name", ["tiny-gpt2", "tiny-llama"])
def test_lin_adapter_is_block_output_plus_bottleneck_of_its_layernorm(name):
    """Lin et al. as the authors' code computes it (modeling_gpt2_adapter.py:261-284, :412): every block's
    output h becomes h + up(relu(down(LN(h)))); checked on the last block by hand."""
    model, tok = load_model(name)
    train, _ = batches(tok, False)
    m = build(model, tok, method_config("adapter", adapter_fraction=0.03))
    block, adapter = adapter_sites(model)[-1], m.adapters[-1]
    seen = {}

    def grab(module, args, kwargs, output):  # registered after the adapter's hook: sees the adapted output
        seen["out"] = output[0] if isinstance(output, tuple) else output

    handle = block.register_forward_hook(grab, with_kwargs=True)
    m(train)
    adapted = seen["out"]
    handle.remove()
    for h in m._handles[-1:]:
        h.remove()
    handle = block.register_forward_hook(grab, with_kwargs=True)
    m(train)
    plain = seen["out"]
    with torch.no_grad():
        want = plain + adapter.up(torch.relu(adapter.down(adapter.norm(plain))))
    torch.testing.assert_close(adapted, want)
    assert adapter.norm is not None and adapter.up.weight.abs().sum() > 0  # the code's N(0, 0.02) init


@pytest.mark.parametrize("name", MODELS)
def test_houlsby_adapter_starts_as_base_model(name):
    model, tok = load_model(name)
    train, _ = batches(tok, model.config.is_encoder_decoder)
    kw = {k: train[k] for k in ("input_ids", "attention_mask", "labels")}
    if not model.config.is_encoder_decoder:
        kw["position_ids"] = positions(train["attention_mask"])
    base = model(**kw).logits
    m = build(model, tok, method_config("adapter", adapter_fraction=0.03, adapter_design="houlsby"))
    assert len(adapter_sites(model, "houlsby")) == 2 * len(adapter_sites(model))  # after attention, after FFN
    assert torch.equal(m(train).logits, base)


@pytest.mark.parametrize("name", ["tiny-gpt2", "tiny-llama"])
@pytest.mark.parametrize("reparam", [True, False])
def test_embedding_init_text_is_prepended_words(name, reparam):
    words = "table-to-text:"
    m, tok = setup(name, "embedding", reparam=reparam, init_text=words, prefix_len=None)  # the text defines P
    train, _ = batches(tok, False)
    ids = tok(words, add_special_tokens=False)["input_ids"]
    n, b = len(ids), len(train["input_ids"])
    assert m.config.prefix_len == n == m.tokens().shape[0]
    prefixed = torch.cat([torch.tensor(ids).expand(b, n), train["input_ids"]], 1)
    mask = torch.cat([torch.ones(b, n, dtype=torch.long), train["attention_mask"]], 1)
    pos = torch.cat([torch.arange(n).expand(b, n), positions(train["attention_mask"], n)], 1)
    with torch.no_grad():
        want = m.model(input_ids=prefixed, attention_mask=mask, position_ids=pos).logits[:, n:]
        got = m(train).logits
    keep = train["attention_mask"].bool()
    torch.testing.assert_close(got[keep], want[keep], atol=1e-4 if reparam else 1e-6, rtol=1e-4)


@pytest.mark.parametrize("name,method", CASES)
def test_export_roundtrip(name, method, tmp_path):
    """exported() -> weights.safetensors -> a freshly built method (own random init) -> same logits."""
    m, tok = setup(name, method)
    train, _ = batches(tok, m.encoder_decoder)
    train_steps(m, train, steps=2)
    save_method(m, tmp_path, {"model": name})
    fresh = load_method(tmp_path)
    with torch.no_grad():
        torch.testing.assert_close(fresh(train).logits, m(train).logits, atol=1e-6, rtol=1e-5)
    assert fresh.num_exported() == m.num_exported()


@pytest.mark.parametrize("name,method", CASES)
def test_prefill_step_match_forward(name, method):
    m, tok = setup(name, method, init_text=None)
    train, decode = batches(tok, m.encoder_decoder)
    train_steps(m, train, steps=1)  # non-trivial method state (e.g. adapters' up != 0)
    with torch.no_grad():
        full = m(train).logits
        logits, state = m.prefill(decode)
        if m.encoder_decoder:
            labels = train["labels"]
            inputs = labels.masked_fill(labels == IGNORE, tok.pad_token_id)
            valid = torch.cat([torch.ones(len(labels), 1, dtype=torch.bool), labels[:, :-1] != IGNORE], 1)
            want = full
        else:
            start = train["source_len"]
            inputs = train["input_ids"][:, start:]
            valid = train["attention_mask"][:, start - 1:-1].bool()  # logits at column start-1+t
            want = full[:, start - 1:]
        for t in range(inputs.shape[1]):
            if t:
                logits = m.step(state, inputs[:, t - 1])
            rows = valid[:, t]
            torch.testing.assert_close(logits[rows], want[rows, t], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("name,method", [c for c in CASES if c[0] != "tiny-bart"])
def test_loss_is_over_aligned_logits(name, method):
    """forward's logits line up with input_ids (virtual positions dropped) and .loss is their LM loss."""
    m, tok = setup(name, method)
    train, _ = batches(tok, False)
    with torch.no_grad():
        out = m(train)
    assert out.logits.shape[:2] == train["input_ids"].shape
    want = torch.nn.functional.cross_entropy(out.logits[:, :-1].flatten(0, 1), train["labels"][:, 1:].flatten(),
                                             ignore_index=IGNORE)
    torch.testing.assert_close(out.loss, want)


@pytest.mark.parametrize("name,shape", [("tiny-gpt2", (2, 2, 4, P, 8)), ("tiny-llama", (2, 2, 2, P, 8))])
def test_infix_sits_between_source_and_sep(name, shape):
    """x never sees the infix (its logits are the frozen model's); SEP and y do; GQA-shaped KV."""
    m, tok = setup(name, "infix")
    assert m.exported()["infix"].shape == shape  # (layers, 2, kv_heads, P, head_dim): 2 kv heads for Llama
    train, _ = batches(tok, False)
    mask, cut = train["attention_mask"], train["source_len"] - 1
    with torch.no_grad():
        got = m(train).logits
        base = m.model(input_ids=train["input_ids"], attention_mask=mask, position_ids=positions(mask)).logits
    x = mask[:, :cut].bool()
    torch.testing.assert_close(got[:, :cut][x], base[:, :cut][x])
    # SEP (whose logits predict y_1) attends to the infix: every row's first-target prediction changes.
    assert ((got[:, cut] - base[:, cut]).abs().amax(-1) > 1e-3).all()


@pytest.mark.parametrize("name", ["tiny-gpt2", "tiny-llama"])
@pytest.mark.parametrize("reparam", [True, False])
def test_infix_init_text_is_the_words_between_source_and_sep(name, reparam):
    """Initialised from words, the infix is exactly [x; words; SEP; y]: E2 = the words' embeddings, the trained
    keys/values 0, and the frozen model computes the words' keys/values after x at their real positions."""
    words = "table-to-text:"
    m, tok = setup(name, "infix", reparam=reparam, init_text=words, prefix_len=None)
    train, _ = batches(tok, False)
    ids, mask = train["input_ids"], train["attention_mask"]
    w = torch.tensor(tok(words, add_special_tokens=False)["input_ids"])
    n, b, cut = len(w), len(ids), train["source_len"] - 1
    assert m.config.prefix_len == n
    full_ids = torch.cat([ids[:, :cut], w.expand(b, n), ids[:, cut:]], 1)
    full_mask = torch.cat([mask[:, :cut], torch.ones(b, n, dtype=mask.dtype), mask[:, cut:]], 1)
    with torch.no_grad():
        want = m.model(input_ids=full_ids, attention_mask=full_mask, position_ids=positions(full_mask)).logits
        got = m(train).logits
    keep = mask[:, cut:].bool()
    torch.testing.assert_close(got[:, cut:][keep], want[:, cut + n:][keep], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("name,method", [(n, m) for n in ("tiny-gpt2", "tiny-llama", "tiny-bart")
                                         for m in ("prefix", "finetune", "adapter", "embedding", "infix")
                                         if (n, m) != ("tiny-bart", "infix")])  # infix is decoder-only
def test_training_loss_equals_forward_loss(name, method):
    """`Method.loss` (logits only over the target where it can): per token, the loss `forward` reports; per
    sequence (the default), the NLL summed over each target and averaged over the batch."""
    model, tok = load_model(name)
    m = build(model, tok, method_config(method, **applicable(
        method, {"prefix_len": 3, "mid_dim": 16, "adapter_fraction": 0.01})))
    ed = model.config.is_encoder_decoder
    batch = collate([encode_pair(tok, "name : Aromi | food : Thai", "Aromi serves Thai food.", ed),
                     encode_pair(tok, "name : X", "X is a pub by the river, rated 5 of 5.", ed)],
                    tok.pad_token_id, ed)
    out = m(batch)
    torch.testing.assert_close(m.loss(batch, "token"), out.loss, atol=1e-6, rtol=1e-6)
    # per sequence (the paper's): each row's target NLL summed, by hand from forward's logits, then the mean
    logits, labels = (out.logits, batch["labels"]) if ed else (out.logits[:, :-1], batch["labels"][:, 1:])
    logp = torch.log_softmax(logits.float(), -1)
    real = labels != -100
    nll = -logp.gather(-1, labels.clamp(min=0)[..., None])[..., 0] * real
    assert real.sum(1).tolist() != [real.sum(1)[0].item()] * 2  # rows of different lengths: the two differ
    torch.testing.assert_close(m.loss(batch), nll.sum(1).mean(), atol=1e-5, rtol=1e-6)


def test_no_deprecation_warning_from_our_model_calls():
    """Every model call of every method (train forward, loss, prefill, step; init from real words) on
    this transformers: no FutureWarning/DeprecationWarning, and nothing on transformers' logger about
    deprecated arguments (its `past_key_values` -> `cache` rename warns through both)."""
    import logging
    import warnings

    from transformers.utils import logging as hf_logging

    records = []
    handler = logging.Handler()
    handler.emit = records.append
    hf_logging.get_logger("transformers").addHandler(handler)
    hf_logging.get_logger("transformers").warning_once.cache_clear()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for name, method in CASES:
                kw = {"init_text": "a b"} if method in ("prefix", "embedding", "infix") else {}
                m, tok = setup(name, method, **kw)
                train, dec = batches(tok, m.encoder_decoder)
                m(train).loss.backward()
                m.loss(train).backward()
                with torch.no_grad():
                    logits, state = m.prefill(dec)
                    m.step(state, logits.argmax(-1))
    finally:
        hf_logging.get_logger("transformers").removeHandler(handler)
    ours = [w for w in caught if issubclass(w.category, (FutureWarning, DeprecationWarning))]
    assert not ours, [str(w.message) for w in ours]
    assert not [r for r in records if "deprecat" in r.getMessage()], [r.getMessage() for r in records]


@pytest.mark.parametrize("name,method", [("tiny-llama", "prefix"), ("tiny-gpt2", "finetune")])
def test_training_loss_runs_the_lm_head_on_a_contiguous_slice(name, method):
    """`Method.loss` keeps only the target positions' logits, and hands the LM head a contiguous tensor
    (transformers' int `logits_to_keep` slices a strided view, and the head then runs as a batched matmul over
    a copy of its weight per row: 5x slower in bf16 on a CPU). Loss and gradients: those of the int slice."""
    model, tok = load_model(name)
    m = build(model, tok, method_config(method, **applicable(method, dict(prefix_len=3, mid_dim=16))))
    batch = collate([encode_pair(tok, s, t, False) for s, t in PAIRS], tok.pad_token_id, False)
    seen = []
    head = model.get_output_embeddings()
    hook = head.register_forward_hook(lambda mod, args, out: seen.append((args[0].shape, args[0].is_contiguous())))
    loss = m.loss(batch)
    hook.remove()
    keep = batch["input_ids"].shape[1] - batch["source_len"] + 1
    assert seen == [(torch.Size([len(PAIRS), keep, head.in_features]), True)]
    grads = torch.autograd.grad(loss, m.trainable_parameters())
    out = m._run_decoder(batch, m.prefix_cache(len(PAIRS)), logits_to_keep=keep)  # the strided int slice
    labels = batch["labels"][:, batch["source_len"]:]
    mean = torch.nn.functional.cross_entropy(out.logits[:, :-1].flatten(0, 1), labels.flatten(), ignore_index=IGNORE)
    want = mean * (batch["labels"] != IGNORE).sum() / len(PAIRS)
    torch.testing.assert_close(loss, want, atol=1e-6, rtol=1e-6)
    for g, w in zip(grads, torch.autograd.grad(want, m.trainable_parameters())):
        torch.testing.assert_close(g, w, atol=1e-6, rtol=1e-5)
