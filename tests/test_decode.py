"""`prefixtune decode`: beam search == HF generate, batching invariance, mixed prefixes == separate
runs, and the command's files and errors."""

import json

import pytest
import torch

from prefixtune import cli
from prefixtune.decoding.routed import Routed
from prefixtune.decoding.search import beam_search, decode
from prefixtune.batching import collate, encode_pair
from prefixtune.method_dir import save_method
from prefixtune.methods import build
from prefixtune.methods.config import applicable, method_config
from prefixtune.methods.base import cache_arg
from prefixtune.models import load_model

FAMILIES = ["tiny-gpt2", "tiny-llama", "tiny-bart"]
SOURCES = ["name : Alimentum | area : city centre", "hello", "a longer source text with words in it", "x",
           "The Eagle | eatType | coffee shop", "ab"]
# Random tiny models hardly ever emit eos, or emit it at once. To exercise eos, finished hypotheses,
# length penalty and early stopping, `chatty` makes predictions peaked and eos competitive, depending
# on the context (rescaled weights; eos logit = max logit - shift + logit of token 7). These settings
# give every family hypotheses of varied lengths (checked below).
CHATTY = {"tiny-gpt2": (None, 0.0), "tiny-llama": (0.3, 1.0), "tiny-bart": (0.3, -2.0)}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models gain nothing from threads; on a shared machine they only lose."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def chatty(name):
    model, tok = load_model(name)
    std, shift = CHATTY[name]
    if std is not None:
        torch.manual_seed(0)
        for p in model.parameters():
            if p.dim() >= 2:
                torch.nn.init.normal_(p, std=std)

    def hook(module, args, logits):
        z = (logits - logits.mean(-1, keepdim=True)) / logits.std(-1, keepdim=True) * 3
        eos = z.max(-1).values - shift + z[..., 7]
        return torch.cat([z[..., :2], eos[..., None], z[..., 3:]], -1)

    model.lm_head.register_forward_hook(hook)
    return model, tok


def hf_generate(model, tok, batch, beam, lp, max_new, **extra):
    g = model.generate(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], num_beams=beam,
                       length_penalty=lp, do_sample=False, max_new_tokens=max_new, eos_token_id=tok.eos_token_id,
                       pad_token_id=tok.pad_token_id, forced_eos_token_id=None, forced_bos_token_id=None, **extra)
    out = []
    for row in g[:, 1 if model.config.is_encoder_decoder else batch["input_ids"].shape[1]:].tolist():
        while row and row[-1] == tok.pad_token_id:
            row.pop()
        out.append(row[:-1] if row and row[-1] == tok.eos_token_id else row)
    return out


@pytest.mark.parametrize("name", FAMILIES)
def test_beam_search_equals_hf_generate(name):
    model, tok = chatty(name)
    method = build(model, tok, method_config("finetune"))
    pairs = [encode_pair(tok, s, None, method.encoder_decoder) for s in SOURCES]
    batch = collate(pairs, tok.pad_token_id, method.encoder_decoder)
    lengths = set()
    for beam, lp in [(1, 1.0), (4, 1.0), (4, 0.8)]:
        ours = beam_search(method, batch, beam, lp, 16, tok.eos_token_id, hyp_length="new-tokens")
        assert ours == hf_generate(model, tok, batch, beam, lp, 16), (beam, lp)
        lengths |= {len(h) for h in ours}
    assert len(lengths) >= 4 and min(lengths) < 16  # hypotheses of varied lengths: eos is exercised


@pytest.mark.parametrize("name", FAMILIES)
def test_min_new_tokens_and_bans_equal_hf_generate(name):
    """No end of sequence before `min_new_tokens` new tokens (the authors' XSum decoding, min_length 11 with the
    start token): the same hypotheses as transformers' generate(min_new_tokens=...), and some got longer. A
    banned token (the authors' bad_words_ids): the same hypotheses as generate(bad_words_ids=...)."""
    model, tok = chatty(name)
    method = build(model, tok, method_config("finetune"))
    pairs = [encode_pair(tok, s, None, method.encoder_decoder) for s in SOURCES]
    batch = collate(pairs, tok.pad_token_id, method.encoder_decoder)
    free = beam_search(method, batch, 4, 0.8, 16, tok.eos_token_id, hyp_length="new-tokens")
    ours = beam_search(method, batch, 4, 0.8, 16, tok.eos_token_id, min_new_tokens=6, hyp_length="new-tokens")
    assert ours == hf_generate(model, tok, batch, 4, 0.8, 16, min_new_tokens=6)
    assert min(map(len, free)) < 6 <= min(map(len, ours))  # eos came early before; it cannot now
    common = max(set(sum(free, [])) - {tok.eos_token_id}, key=sum(free, []).count)  # ban the most used token
    ours = beam_search(method, batch, 4, 0.8, 16, tok.eos_token_id, banned=[common], hyp_length="new-tokens")
    assert ours == hf_generate(model, tok, batch, 4, 0.8, 16, bad_words_ids=[[common]]) != free


def transformers3_beam_search(runner, row, K, lp, T, eos_id, prompt_len, min_new_tokens=0):
    """The 2021 beam search that the authors decoded with, for one input row, transcribed from their vendored
    transformers/src/transformers/generation_utils.py (_generate_beam_search :676-873, BeamHypotheses
    :1038-1081; do_sample=False, early_stopping=False) with plain Python lists: the reference that
    beam_search(hyp_length="sequence") must equal. `prompt_len` is len(input_ids) at the start."""
    logits, state = runner.prefill(row)
    state.select(torch.zeros(K, dtype=torch.long))
    logits = logits.expand(K, -1)
    beam_scores = torch.tensor([0.0] + [-1e9] * (K - 1))
    seqs, hyps, worst = [[] for _ in range(K)], [], 1e9

    def add(hyp, sum_logprobs):  # BeamHypotheses.add: the length is len(input_ids), prompt included, eos not
        nonlocal worst
        score = sum_logprobs / (prompt_len + len(hyp)) ** lp
        if len(hyps) < K or score > worst:
            hyps.append((score, hyp))
            if len(hyps) > K:
                ranked = sorted((s, i) for i, (s, _) in enumerate(hyps))
                del hyps[ranked[0][1]]
                worst = ranked[1][0]
            else:
                worst = min(score, worst)

    done = False
    for t in range(T):  # cur_len = prompt_len + t
        scores = torch.log_softmax(logits.float(), dim=-1)
        if t < min_new_tokens:
            scores[:, eos_id] = -float("inf")
        V = scores.shape[1]
        next_scores, next_tokens = (scores + beam_scores[:, None]).view(-1).topk(2 * K)
        next_beam = []
        for rank, (token, s) in enumerate(zip(next_tokens.tolist(), next_scores.tolist())):
            beam_id, token_id = token // V, token % V
            if token_id == eos_id:
                if rank >= K:
                    continue
                add(seqs[beam_id], s)
            else:
                next_beam.append((s, token_id, beam_id))
            if len(next_beam) == K:
                break
        done = len(hyps) >= K and worst >= next_scores.max().item() / (prompt_len + t) ** lp  # is_done
        if done:
            break
        beam_scores = torch.tensor([s for s, _, _ in next_beam])
        seqs = [seqs[b] + [tok] for _, tok, b in next_beam]
        if t + 1 < T:
            state.select(torch.tensor([b for _, _, b in next_beam]))
            logits = runner.step(state, torch.tensor([tok for _, tok, _ in next_beam]))
    if not done:  # finalize all open beam hypotheses
        for k in range(K):
            add(seqs[k], beam_scores[k].item())
    return sorted(hyps, key=lambda h: h[0])[-1][1]


@pytest.mark.parametrize("name", FAMILIES)
def test_sequence_length_beam_search_equals_the_authors_transformers(name):
    """hyp_length="sequence" (the default) decodes as the authors' 2021 transformers: each row alone through
    the transcription above (prompt: the row's tokens for a decoder-only model, the start token for BART)
    gives the hypotheses of our batched search, with a prefix too; and the way of counting matters here:
    "new-tokens" picks other hypotheses for some rows."""
    model, tok = chatty(name)
    method = build(model, tok, method_config("finetune"))
    if not method.encoder_decoder:
        torch.manual_seed(0)
        method = build(model, tok, method_config("prefix", prefix_len=3, reparam=False))
    method.eval()
    pairs = [encode_pair(tok, s, None, method.encoder_decoder) for s in SOURCES]
    batch = collate(pairs, tok.pad_token_id, method.encoder_decoder)
    differ = 0
    for beam, lp, T, min_new in [(4, 1.0, 16, 0), (4, 0.8, 12, 3), (1, 1.0, 8, 0)]:
        ours = beam_search(method, batch, beam, lp, T, tok.eos_token_id, min_new_tokens=min_new)
        theirs = []
        for s, _ in pairs:
            row = collate([(s, [])], tok.pad_token_id, method.encoder_decoder)
            theirs.append(transformers3_beam_search(method, row, beam, lp, T, tok.eos_token_id,
                                                    1 if method.encoder_decoder else len(s), min_new))
        assert ours == theirs, (beam, lp, T)
        new = beam_search(method, batch, beam, lp, T, tok.eos_token_id, min_new_tokens=min_new,
                          hyp_length="new-tokens")
        differ += sum(a != b for a, b in zip(ours, new))
    assert differ > 0


def prefixes(model, tok, n=2, method="prefix"):
    """`n` random-init methods over one shared model (direct P ~ N(0, 1): clearly different outputs)."""
    out = []
    for seed in range(n):
        torch.manual_seed(100 + seed)
        out.append(build(model, tok, method_config(method, **applicable(method, dict(prefix_len=3, reparam=False)))))
    return out


@pytest.mark.parametrize("name", ["tiny-gpt2", "tiny-llama"])
def test_prefix_beam_search_equals_hf_generate_from_the_prefix_cache(name, monkeypatch):
    """With a prefix: transformers' generate given the prefix as its initial cache (P placeholder tokens that
    generate skips as cached, P ones in front of the mask, every beam row holding the same prefix) gives
    our hypotheses: what PEFT's generate does for prefix tuning where it works (bench/decode_speed.py times
    the two)."""
    monkeypatch.setitem(CHATTY, "tiny-gpt2", (None, 1.0))  # with this prefix, shift 0 ends every row at once
    model, tok = chatty(name)
    (method,) = prefixes(model, tok, 1)
    method.eval()
    batch = collate([encode_pair(tok, s, None, False) for s in SOURCES], tok.pad_token_id, False)
    B, P = len(SOURCES), method.virtual_len
    ids = torch.cat([torch.full((B, P), tok.pad_token_id), batch["input_ids"]], 1)
    mask = torch.cat([torch.ones(B, P, dtype=batch["attention_mask"].dtype), batch["attention_mask"]], 1)
    lengths = set()
    for beam, lp in [(1, 1.0), (4, 1.0), (4, 0.8)]:
        ours = beam_search(method, batch, beam, lp, 16, tok.eos_token_id, hyp_length="new-tokens")
        with torch.no_grad():
            cache = method.prefix_cache(B * beam)
            for layer in cache.layers:  # expanded views: generate's cache reordering writes in place
                layer.keys, layer.values = layer.keys.contiguous(), layer.values.contiguous()
            theirs = hf_generate(model, tok, {"input_ids": ids, "attention_mask": mask}, beam, lp, 16,
                                 **cache_arg(cache))  # `cache` or, before transformers 5.2x, `past_key_values`
        assert ours == theirs, (beam, lp)
        lengths |= {len(h) for h in ours}
    assert len(lengths) >= 2 and min(lengths) < 16  # rows that end on eos and rows that run out


@pytest.mark.parametrize("name", FAMILIES)
def test_outputs_do_not_depend_on_batch_size(name):
    model, tok = chatty(name)
    (method,) = prefixes(model, tok, 1)
    # each row's own prompt length counts ("sequence"), whatever padding its batch needed; min_new_tokens 3:
    # random tiny models otherwise end at once, and empty outputs would prove nothing
    kw = dict(beam=3, max_new_tokens=12, progress=False, min_new_tokens=3)
    one = decode([method], SOURCES, batch_size=1, **kw)
    three = decode([method], SOURCES, batch_size=3, **kw)
    assert one == three and len(set(one)) > 2


@pytest.mark.parametrize("name,kind", [(f, "prefix") for f in FAMILIES] + [("tiny-llama", "embedding")])
def test_mixed_batch_equals_separate_runs(name, kind):
    model, tok = chatty(name)
    methods = prefixes(model, tok, 2, kind)
    sources = SOURCES * 2
    routes = [i % 2 for i in range(len(sources))]
    kw = dict(beam=3, length_penalty=0.8, max_new_tokens=12, progress=False, min_new_tokens=3)
    # decoder-only prefixes prefill in one forward from stacked prefix caches; others per method
    assert (Routed(methods).prefixes is not None) == (kind == "prefix" and name != "tiny-bart")
    mixed = decode(methods, sources, routes, batch_size=4, **kw)
    separate = [decode([m], sources, batch_size=4, **kw) for m in methods]
    assert mixed == [separate[r][i] for i, r in enumerate(routes)]
    assert separate[0] != separate[1]  # the two prefixes really differ


# ----- the command -----
def make_dirs(tmp_path, n=2, method="prefix", model_name="tiny-gpt2"):
    model, tok = load_model(model_name)
    methods = prefixes(model, tok, n, method) if method != "finetune" else \
        [build(model, tok, method_config("finetune")) for _ in range(n)]
    dirs = []
    for i, m in enumerate(methods):
        save_method(m, tmp_path / f"m{i}", {"model": model_name})
        dirs.append(tmp_path / f"m{i}")
    return methods, dirs


def write_input(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def test_cli_writes_one_line_per_input_in_order(tmp_path):
    methods, dirs = make_dirs(tmp_path, 2)
    rows = [{"id": i, "source": s, "method": ["a", "b"][i % 2]} for i, s in enumerate(SOURCES)]
    inp = write_input(tmp_path / "test.jsonl", rows)
    args = ["decode", "--model", "tiny-gpt2", "--input", str(inp), "--beam", "2", "--max-new-tokens", "8",
            "--batch-size", "4", "--device", "cpu"]
    cli.main(args + ["--method-dir", str(dirs[0]), "--out", str(tmp_path / "one.txt")])
    lines = (tmp_path / "one.txt").read_text().split("\n")
    assert lines[-1] == "" and len(lines) == len(rows) + 1  # one line each, newline-terminated
    # in input order: each line is what that source alone decodes to
    alone = [decode(methods[:1], [s], beam=2, max_new_tokens=8, progress=False)[0] for s in SOURCES]
    assert lines[:-1] == alone
    cli.main(args + ["--method-dir", f"a={dirs[0]}", "--method-dir", f"b={dirs[1]}",
                     "--out", str(tmp_path / "mixed.txt"), "--limit", "4"])
    mixed = (tmp_path / "mixed.txt").read_text().splitlines()
    other = decode(methods[1:], SOURCES, beam=2, max_new_tokens=8, progress=False)
    assert mixed == [alone[0], other[1], alone[2], other[3]]
    write_input(inp, rows[:2] + ["{not json"])  # --limit 2: the broken third line is never read
    cli.main(args + ["--method-dir", str(dirs[0]), "--out", str(tmp_path / "two.txt"), "--limit", "2"])
    assert (tmp_path / "two.txt").read_text().splitlines() == alone[:2]


@pytest.mark.parametrize("bad,needle", [
    ({"id": 1, "text": "no source", "method": "a"}, "test.jsonl:2: missing field 'source'"),
    ({"source": "x", "method": "zzz"}, "test.jsonl:2: unknown method 'zzz'"),
    ("{not json", "test.jsonl:2: not valid JSON"),
])
def test_cli_bad_input_exits_2_naming_the_line(tmp_path, capsys, bad, needle):
    _, dirs = make_dirs(tmp_path, 2)
    inp = write_input(tmp_path / "test.jsonl", [{"source": "ok", "method": "a"}, bad])
    out = tmp_path / "hyp.txt"
    with pytest.raises(SystemExit) as e:
        cli.main(["decode", "--model", "tiny-gpt2", "--method-dir", f"a={dirs[0]}", "--method-dir",
                  f"b={dirs[1]}", "--input", str(inp), "--out", str(out), "--device", "cpu"])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and len(err.splitlines()) == 1 and needle in err, err
    assert not out.exists() and not list(tmp_path.glob(".hyp.txt*"))


@pytest.mark.parametrize("rows,extra,needle", [
    ([], [], "test.jsonl: no inputs (empty file)"),
    (["", "  "], [], "test.jsonl: no inputs (empty file)"),
    ([{"source": "ok"}], ["--device", "cuda"], "--device cuda: this machine has no CUDA device"),
    ([{"source": "ok"}], ["--device", "cuda:7"], "--device cuda:7:"),
    ([{"source": "ok"}], ["--device", "nope"], "--device nope:"),
])
def test_cli_empty_input_and_missing_device_exit_2(tmp_path, capsys, rows, extra, needle):
    if extra and torch.cuda.is_available() and extra[1] == "cuda":
        pytest.skip("this machine has CUDA")
    _, dirs = make_dirs(tmp_path, 1)
    inp = write_input(tmp_path / "test.jsonl", rows)
    out = tmp_path / "hyp.txt"
    with pytest.raises(SystemExit) as e:
        cli.main(["decode", "--model", "tiny-gpt2", "--method-dir", str(dirs[0]), "--input", str(inp),
                  "--out", str(out), *extra])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and len(err.splitlines()) == 1 and needle in err, err
    assert not out.exists()


def test_cli_refuses_to_mix_weight_methods_and_other_models(tmp_path, capsys):
    _, dirs = make_dirs(tmp_path, 2, "finetune")
    inp = write_input(tmp_path / "test.jsonl", [{"source": "ok", "method": "a"}])
    base = ["decode", "--model", "tiny-gpt2", "--input", str(inp), "--out", str(tmp_path / "h.txt")]
    with pytest.raises(SystemExit) as e:
        cli.main(base + ["--method-dir", f"a={dirs[0]}", "--method-dir", f"b={dirs[1]}"])
    assert e.value.code == 2 and "changes the model's weights" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        cli.main([a if a != "tiny-gpt2" else "tiny-llama" for a in base] + ["--method-dir", str(dirs[0])])
    assert e.value.code == 2 and "trained on base model 'tiny-gpt2'" in capsys.readouterr().err
    assert not (tmp_path / "h.txt").exists()


def test_ban_newlines_never_generates_a_newline_token():
    from prefixtune.decoding.search import newline_ids

    _, tok = load_model("tiny-gpt2")
    nl = newline_ids(tok)
    assert [tok.decode([i]) for i in nl] == ["\n"]  # byte-level: one token; GPT-2's are 198 and 628

    class State:
        def select(self, index):
            return self

    class Runner:  # prefers a newline, then "a", then eos
        def logits(self, n):
            out = torch.full((n, len(tok)), -10.0)
            out[:, nl[0]], out[:, tok.convert_tokens_to_ids("a")], out[:, tok.eos_token_id] = 5.0, 4.0, 3.0
            return out

        def prefill(self, batch):
            return self.logits(len(batch["input_ids"])), State()

        def step(self, state, tokens):
            return self.logits(len(tokens))

    batch = {"input_ids": torch.zeros(2, 3, dtype=torch.long)}
    free = beam_search(Runner(), batch, beam=2, max_new_tokens=3, eos_id=tok.eos_token_id)
    banned = beam_search(Runner(), batch, beam=2, max_new_tokens=3, eos_id=tok.eos_token_id, banned=nl)
    assert all(nl[0] in ids for ids in free)
    assert all(nl[0] not in ids for ids in banned) and all(ids for ids in banned)


def greedy_steps(method, batch, steps, ours):
    """The prefill's logits and `steps` greedy steps' (stacked), with `one_query_attention` if `ours`, else
    the model's own; the rows are reversed before the second step (a beam reorder through the cache)."""
    from prefixtune.decoding.attention import decoding_attention

    rows = torch.arange(len(batch["input_ids"]))
    with decoding_attention(method.model) if ours else torch.no_grad():
        logits, state = method.prefill(batch)
        out = [logits]
        for t in range(steps):
            state.select(rows.flip(0) if t == 1 else rows)
            out.append(method.step(state, out[-1].argmax(-1)))
    return torch.stack(out)


@pytest.mark.parametrize("name", FAMILIES)
def test_one_query_attention_gives_sdpas_logits(name):
    """Decoding on a CPU runs single-token steps through `attention.one_query_attention` (two matmuls): every
    step's logits are SDPA's to float rounding, with padded rows (masks), GQA (tiny-llama: 4 query heads on 2
    key/value heads) and BART's cross-attention; afterwards the model is back on its own attention."""
    model, tok = load_model(name)
    (method,) = prefixes(model, tok, 1)
    ed = model.config.is_encoder_decoder
    batch = collate([encode_pair(tok, s, None, ed) for s in SOURCES], tok.pad_token_id, ed)
    assert (batch["attention_mask"] == 0).any()  # padding: the mask matters
    before = model.config._attn_implementation
    runs = [greedy_steps(method, batch, 4, ours) for ours in (False, True)]
    assert model.config._attn_implementation == before
    torch.testing.assert_close(runs[1], runs[0], atol=1e-5, rtol=1e-5)
    assert not torch.equal(runs[1][2], runs[1][1])  # the steps differ: the check is not of one repeated row


def test_beam_layer_copies_once_and_holds_what_dynamic_layer_holds():
    """`BeamLayer` (the decoding cache's layers): a reorder and an append give DynamicLayer's tensors; the
    append writes into the position the reorder left free (the same storage), and the length excludes it."""
    from transformers.cache_utils import DynamicLayer

    from prefixtune.decoding.cache import BeamLayer

    torch.manual_seed(0)
    keys, values, new_k, new_v = (torch.randn(4, 2, n, 8) for n in (5, 5, 1, 1))
    first, plain = DynamicLayer(), DynamicLayer()
    first.update(keys, values)
    plain.update(keys, values)
    beam = BeamLayer.of(first)  # the same tensors, as DecodeState.select converts a cache's layers
    index = torch.tensor([2, 2, 0, 3])
    plain.reorder_cache(index)
    beam.reorder_cache(index)
    assert beam.get_seq_length() == 5 and beam.keys.shape[2] == 6  # one free position
    storage = beam.keys.data_ptr()
    got = beam.update(new_k, new_v)
    want = plain.update(new_k, new_v)
    assert beam.keys.data_ptr() == storage and beam.get_seq_length() == 6
    assert all(torch.equal(a, b) for a, b in zip(got, want))
    two = (torch.randn(4, 2, 2, 8), torch.randn(4, 2, 2, 8))  # more than one token: appended as DynamicLayer does
    beam.reorder_cache(torch.arange(4))
    plain.update(*two)
    assert all(torch.equal(a, b) for a, b in zip(beam.update(*two), (plain.keys, plain.values)))


def test_bfloat16_decoding_keeps_sdpa():
    """In bfloat16 the two matmuls would round q.k to bf16 before the softmax (SDPA keeps float32 scores), so
    `one_query_attention` hands bfloat16 calls to SDPA: with or without it, the same logits, bit for bit."""
    model, tok = load_model("tiny-llama", dtype=torch.bfloat16)
    (method,) = prefixes(model, tok, 1)
    batch = collate([encode_pair(tok, s, None, False) for s in SOURCES], tok.pad_token_id, False)
    runs = [greedy_steps(method, batch, 1, ours) for ours in (False, True)]
    assert runs[0].dtype == torch.bfloat16 and torch.equal(runs[0], runs[1])
