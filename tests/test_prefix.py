"""Prefix-tuning: virtual-token equivalence with real words, PEFT parity, counts, frozen base, export.

What the equivalence tests check (all on tiny random models, float32):
- GPT-2 / Llama: a prefix initialized from the words w gives the logits of the frozen model run on
  [w; x] (and one decode step later, [w; x; t]); Llama positions continue from P (RoPE).
- BART, both sides: the reference is the plain model run on the concatenations, with
  encoder input [w; x] where w attends only to w and x to everything, and x's learned positions
  restarting at 0 (our encoder prefix leaves x at positions 0..L-1, as the original code did);
  decoder input [w; start; ...] where the w rows cross-attend only to the w part of the encoder
  output and the real rows to all of it (decoder positions continue from P).
"""

from unittest import mock

import pytest
import torch

from prefixtune.errors import InputError
from prefixtune.batching import collate, encode_pair, positions
from prefixtune.methods import build
from prefixtune.methods.config import method_config
from prefixtune.models import load_model

WORDS = "table-to-text:"
SOURCES = ["name : Blue Spice | food : Chinese", "area : city centre"]
TARGETS = ["Blue Spice serves Chinese food.", "It is in the centre."]


def make(name, **kw):
    model, tok = load_model(name)
    kw.setdefault("mid_dim", 64)
    return build(model, tok, method_config("prefix", **kw))


def word_ids(method):
    return method.tokenizer(WORDS, add_special_tokens=False)["input_ids"]


def source_batch(method):
    ed = method.encoder_decoder
    pairs = [encode_pair(method.tokenizer, s, None, ed) for s in SOURCES]
    return pairs, collate(pairs, method.tokenizer.pad_token_id, ed)


def train_batch(method):
    ed = method.encoder_decoder
    pairs = [encode_pair(method.tokenizer, s, t, ed) for s, t in zip(SOURCES, TARGETS)]
    return collate(pairs, method.tokenizer.pad_token_id, ed)


# ----- 1. virtual-token equivalence -----
@pytest.mark.parametrize("name", ["tiny-gpt2", "tiny-llama"])
@pytest.mark.parametrize("reparam", [True, False])
def test_real_words_equal_prepended_words_decoder_only(name, reparam):
    method = make(name, prefix_len=None, init_text=WORDS, reparam=reparam)
    w = word_ids(method)
    assert method.config.prefix_len == len(w) == method.virtual_len
    pairs, batch = source_batch(method)  # rows of different length: left padding + explicit positions
    logits, state = method.prefill(batch)
    nxt = torch.tensor([5, 7])
    logits2 = method.step(state, nxt)
    for row, (src, _) in enumerate(pairs):
        ids = torch.tensor([w + src])
        ref = method.model(input_ids=ids).logits[0, -1]
        torch.testing.assert_close(logits[row], ref, atol=1e-4, rtol=0)
        ref2 = method.model(input_ids=torch.tensor([w + src + [nxt[row].item()]])).logits[0, -1]
        torch.testing.assert_close(logits2[row], ref2, atol=1e-4, rtol=0)


def bart_reference(model, w, src, dec):
    """Logits of plain BART on encoder [w; x] and decoder [w; dec] (masks/positions: module docstring)."""
    p, n = len(w), len(src)
    neg = torch.finfo(torch.float32).min
    enc_mask = torch.zeros(1, 1, p + n, p + n)
    enc_mask[0, 0, :p, p:] = neg  # the words see only the words
    pos = torch.cat([torch.arange(p), torch.arange(n)])
    emb = model.model.encoder.embed_positions
    with mock.patch.object(emb, "forward", lambda *a, **k: torch.nn.Embedding.forward(emb, pos[None] + emb.offset)):
        enc = model.model.encoder(input_ids=torch.tensor([w + src]), attention_mask=enc_mask)
    cross = torch.zeros(1, 1, p + len(dec), p + n)
    cross[0, 0, :p, p:] = neg  # decoder word rows see only the encoder words (as when initialized)
    logits = model(encoder_outputs=enc, attention_mask=cross, decoder_input_ids=torch.tensor([w + dec])).logits
    return logits[0, -1], enc.last_hidden_state[0, p:]


@pytest.mark.parametrize("reparam", [True, False])
def test_real_words_equal_prepended_words_bart(reparam):
    method = make("tiny-bart", prefix_len=None, init_text=WORDS, reparam=reparam)
    w = word_ids(method)
    pairs, batch = source_batch(method)  # right-padded sources of different length
    logits, state = method.prefill(batch)
    nxt = torch.tensor([5, 7])
    logits2 = method.step(state, nxt)
    start = method.model.config.decoder_start_token_id
    enc = state.encoder_outputs.last_hidden_state
    for row, (src, _) in enumerate(pairs):
        ref, ref_enc = bart_reference(method.model, w, src, [start])
        # Encoder states are compared too: in a tiny random BART they move logits only a little.
        torch.testing.assert_close(enc[row, :len(src)], ref_enc, atol=1e-5, rtol=0)
        torch.testing.assert_close(logits[row], ref, atol=1e-4, rtol=0)
        ref2, _ = bart_reference(method.model, w, src, [start, nxt[row].item()])
        torch.testing.assert_close(logits2[row], ref2, atol=1e-4, rtol=0)


def test_bart_prefixes_matter_on_each_side():
    """Each of the three BART prefixes changes the output (none is silently ignored)."""
    method = make("tiny-bart", prefix_len=None, init_text=WORDS, reparam=False)
    _, batch = source_batch(method)
    def run():
        logits, state = method.prefill(batch)
        return logits if name != "encoder" else state.encoder_outputs.last_hidden_state

    for name in ("encoder", "decoder", "cross"):
        base = run()
        saved = method.groups[name].prefix.detach().clone()
        with torch.no_grad():
            method.groups[name].prefix.mul_(3.0)
        assert (run() - base).abs().max() > 1e-3, name
        with torch.no_grad():
            method.groups[name].prefix.copy_(saved)


# ----- 2. oracle parity with PEFT -----
@pytest.mark.parametrize("name", ["tiny-gpt2", "tiny-llama"])
def test_same_logits_as_peft_prefix_tuning(name):
    from peft import PrefixTuningConfig, get_peft_model

    method = make(name, prefix_len=4, reparam=False)
    torch.manual_seed(1)
    prefix = torch.randn(method.groups["prefix"].shape)
    method.load_exported({"prefix": prefix})
    layers, _, kv_heads, p, head_dim = prefix.shape

    peft_base, _ = load_model(name)  # same seed: identical weights, separate object
    peft_model = get_peft_model(peft_base, PrefixTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=p,
                                                               prefix_projection=False))
    emb = peft_model.prompt_encoder["default"].embedding.weight
    # PEFT rows: token p holds (layer, key|value, kv_head, head_dim) flattened.
    assert emb.shape == (p, layers * 2 * kv_heads * head_dim)
    with torch.no_grad():
        emb.copy_(prefix.permute(3, 0, 1, 2, 4).reshape(p, -1))

    batch = train_batch(method)
    ours = method(batch).logits
    # PEFT prepends P ones to the mask and shifts explicit position ids by P.
    theirs = peft_model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                        position_ids=positions(batch["attention_mask"])).logits
    real = batch["attention_mask"].bool()
    torch.testing.assert_close(ours[real], theirs[real], atol=1e-5, rtol=0)


# ----- 3. counts -----
@pytest.mark.parametrize("name", ["tiny-gpt2", "tiny-llama", "tiny-bart"])
def test_counts_follow_formulas(name):
    p, mid = 6, 48
    method = make(name, prefix_len=p, mid_dim=mid)
    cfg = method.model.config
    if name == "tiny-bart":
        hidden, head_dim = cfg.d_model, cfg.d_model // cfg.encoder_attention_heads
        outs = [cfg.encoder_layers * 2 * cfg.encoder_attention_heads * head_dim,
                cfg.decoder_layers * 2 * cfg.decoder_attention_heads * head_dim,
                cfg.decoder_layers * 2 * cfg.decoder_attention_heads * head_dim]  # encoder, decoder, cross
    else:
        hidden = cfg.hidden_size
        kv_heads = getattr(cfg, "num_key_value_heads", None) or cfg.num_attention_heads
        if name == "tiny-llama":
            assert kv_heads == 2 < cfg.num_attention_heads  # GQA: prefixes follow the kv heads
        outs = [cfg.num_hidden_layers * 2 * kv_heads * (hidden // cfg.num_attention_heads)]
    assert method.num_exported() == sum(o * p for o in outs) == method.exported_formula()
    mlp = sum(p * hidden + hidden * mid + mid + mid * o + o for o in outs)
    assert method.num_trainable() == mlp == method.trainable_formula()
    assert len(method.exported()) == len(outs)
    direct = make(name, prefix_len=p, reparam=False)
    assert direct.num_trainable() == direct.num_exported() == sum(o * p for o in outs)


def test_init_text_sets_p_and_a_different_p_is_an_error():
    model, tok = load_model("tiny-gpt2")
    n = len(tok(WORDS, add_special_tokens=False)["input_ids"])
    config = method_config("prefix", prefix_len=None, init_text=WORDS)
    assert build(model, tok, config).virtual_len == config.prefix_len == n
    assert build(model, tok, method_config("prefix", prefix_len=n, init_text=WORDS)).virtual_len == n
    with pytest.raises(InputError, match=f"is {n} tokens for this model's tokenizer, but --prefix-len is {n + 2}"):
        build(model, tok, method_config("prefix", prefix_len=n + 2, init_text=WORDS))


def test_init_text_may_hold_the_tokenizers_special_tokens():
    """The authors' low-data XSum prefix starts from the ids of ' summarize' with BART's <s> and </s>
    (lightning_base.py:179-182@7544769): written as the text '<s> summarize</s>', the tokenizer reads the special
    tokens in it, and P is their count with them."""
    from prefixtune.methods.base import init_text_ids

    model, tok = load_model("tiny-bart")
    config = method_config("prefix", prefix_len=None, init_text="<s> summarize</s>")
    ids = init_text_ids(tok, config)
    assert ids[0] == tok.bos_token_id and ids[-1] == tok.eos_token_id
    assert ids[1:-1] == tok(" summarize", add_special_tokens=False)["input_ids"] and config.prefix_len == len(ids)
    assert build(model, tok, method_config("prefix", prefix_len=None, init_text="<s> summarize</s>")).virtual_len \
        == len(ids)


# ----- 4. frozen base model -----
@pytest.mark.parametrize("name", ["tiny-gpt2", "tiny-llama", "tiny-bart"])
def test_training_changes_only_the_prefix(name):
    method = make(name, prefix_len=4)
    before = {k: v.clone() for k, v in method.model.state_dict().items()}
    prefix_before = {k: v.clone() for k, v in method.exported().items()}
    opt = torch.optim.AdamW(method.trainable_parameters(), lr=1e-2)
    batch = train_batch(method)
    method.train()
    for _ in range(3):
        opt.zero_grad()
        method(batch).loss.backward()
        opt.step()
    assert all(p.grad is None for p in method.model.parameters())
    trainable = method.trainable_parameters()
    assert trainable and all(p.grad is not None and p.grad.abs().sum() > 0 for p in trainable)
    assert {id(p) for p in trainable}.isdisjoint(id(p) for p in method.model.parameters())
    for k, v in method.model.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert any(not torch.equal(v, prefix_before[k]) for k, v in method.exported().items())


# ----- 5. export / load -----
@pytest.mark.parametrize("name", ["tiny-gpt2", "tiny-llama", "tiny-bart"])
def test_export_load_gives_identical_logits(name):
    method = make(name, prefix_len=None, init_text=WORDS)
    opt = torch.optim.AdamW(method.trainable_parameters(), lr=1e-2)
    batch = train_batch(method)
    for _ in range(2):  # move away from the init so the check is not trivial
        opt.zero_grad()
        method(batch).loss.backward()
        opt.step()
    method.eval()
    tensors = method.exported()
    fresh = make(name, prefix_len=method.config.prefix_len)  # random init, MLP, no init text
    fresh.load_exported(tensors)
    assert fresh.num_trainable() == fresh.num_exported() == method.num_exported()  # MLP dropped
    with torch.no_grad():
        torch.testing.assert_close(fresh(batch).logits, method(batch).logits, atol=1e-6, rtol=0)
    _, src = source_batch(method)
    torch.testing.assert_close(fresh.prefill(src)[0], method.prefill(src)[0], atol=1e-6, rtol=0)
    with pytest.raises(KeyError):
        fresh.load_exported({})


def test_bf16_model_gets_bf16_cache_and_float32_parameters():
    model, tok = load_model("tiny-llama", dtype=torch.bfloat16)
    method = build(model, tok, method_config("prefix", prefix_len=3, mid_dim=16))
    assert all(p.dtype == torch.float32 for p in method.trainable_parameters())
    cache = method.prefix_cache(2)
    assert cache.layers[0].keys.dtype == torch.bfloat16 and cache.layers[0].keys.shape == (2, 2, 3, 8)
    loss = method(train_batch(method)).loss
    loss.backward()
    assert torch.isfinite(loss)
