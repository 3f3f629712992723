"""Beam search with trained methods: `decode(methods, sources, ...)`, one output string per source, in order.

Several methods share batches (`routed.Routed`): each row carries its own method, and every step runs them in one
forward of the frozen model. `prefixtune decode` (decode.py) loads the methods and calls `decode`.
"""

from contextlib import nullcontext

import torch

from ..configs import HYP_LENGTHS
from ..batching import Limits, collate, encode_pair
from ..progress import Progress
from .attention import decoding_attention
from .routed import Routed

# ----- beam search -----
# Written by hand because HF `generate` cannot run it: it assumes the cache holds exactly the
# input tokens (it derives positions, masks and cache lengths from input_ids), so a cache
# preloaded with per-row prefixes that are not tokens, let alone a different prefix per row of
# one batch, does not fit. Two ways to count a hypothesis' length for the length penalty:
# - "sequence" (default): as the 2021 transformers that Li & Liang decoded with (their vendored
#   transformers/src/transformers/generation_utils.py: BeamHypotheses.add and is_done, :1055-1081;
#   _generate_beam_search, :797-820 and :852-873): the whole decoder sequence, the prompt included
#   (x and the separator for a decoder-only model, the start token for an encoder-decoder), the
#   eos not; a row is done once it has K finished hypotheses and its best candidate scored at the
#   current length is no better than the worst; at the length limit the live beams join the
#   finished ones. Checked against a transcription of that code in tests/test_decode.py.
# - "new-tokens": as transformers does since 2023 (transformers 5 `_beam_search`, checked token
#   for token by tests/test_decode.py): generated tokens only, the eos included.
# Both with early_stopping=False, the 2021 default. `banned` token ids are never generated (HF's bad_words_ids
# for single tokens); eos is not generated before `min_new_tokens` new tokens (HF's min_length, in new tokens).


def newline_ids(tokenizer) -> list[int]:
    """The tokens that are one or two newlines: what the authors' table-to-text decoding bans
    (`bad_words_ids = [[628], [198]]` in gpt2/run_generation.py: GPT-2's "\n\n" and "\n")."""
    vocab = tokenizer.get_vocab()
    return sorted(i for i in vocab.values() if tokenizer.decode([i]) in ("\n", "\n\n"))


@torch.no_grad()
def beam_search(runner, batch, beam=5, length_penalty=1.0, max_new_tokens=64, eos_id=2, banned=None,
                min_new_tokens=0, hyp_length="sequence"):
    """Best hypothesis per row of `batch` (token ids, without eos); `runner` has `prefill`/`step`. Scores are
    summed log-probs; a finished hypothesis scores sum / length ** length_penalty (the length: `hyp_length`,
    see the comment above). The B rows become B*K cache rows (row-major: row b, beam k); `beam=1` is greedy."""
    if hyp_length not in HYP_LENGTHS:
        raise ValueError(f"hyp_length must be one of {HYP_LENGTHS}, not {hyp_length!r}")
    whole = hyp_length == "sequence"
    logits, state = runner.prefill(batch)
    B, V, K, T = logits.shape[0], logits.shape[1], beam, max_new_tokens
    dev = logits.device
    # the prompt's length: a decoder-only row's own tokens (collate gives only those `source_len`), else the start token
    prompt = batch["attention_mask"].sum(1).to(dev) if "source_len" in batch else torch.ones(B, device=dev)
    prompt = prompt.float() if whole else torch.zeros(B, device=dev)
    rows = torch.arange(B, device=dev)
    state.select(rows.repeat_interleave(K))
    logits = logits.repeat_interleave(K, dim=0)
    live = torch.full((B, K), -1e9, device=dev)
    live[:, 0] = 0  # as HF: only beam 0 is live at first, so the K beams don't all pick the same token
    seqs = torch.zeros(B, K, 0, dtype=torch.long, device=dev)  # live beams' tokens so far
    fin_score = torch.full((B, K), -float("inf"), device=dev)  # finished hypotheses, best first
    fin_seq = torch.full((B, K, T), eos_id, dtype=torch.long, device=dev)
    fin_len = torch.zeros(B, K, dtype=torch.long, device=dev)
    open_ = torch.ones(B, dtype=torch.bool, device=dev)  # rows that may still improve
    top_k = (torch.arange(2 * K, device=dev) < K)[None]
    row_of = list(range(B))  # the batch row that each row still decoding is
    out = [None] * B

    def emit(b):
        ids = fin_seq[b, 0, : fin_len[b, 0]].tolist()
        out[row_of[b]] = ids[:-1] if ids and ids[-1] == eos_id else ids

    def finish(new, cand):
        """Merge candidate hypotheses (scores `new`, -inf for none; tokens `cand`) into the K best finished."""
        nonlocal fin_score, fin_seq, fin_len
        merged = torch.cat([fin_score, new], dim=1).topk(K)
        fin_score = merged.values
        padded = torch.nn.functional.pad(cand, (0, T - cand.shape[2]), value=eos_id)
        fin_seq = torch.cat([fin_seq, padded], dim=1).gather(1, merged.indices[..., None].expand(-1, -1, T))
        fin_len = torch.cat([fin_len, torch.full_like(new, cand.shape[2], dtype=torch.long)], dim=1).gather(
            1, merged.indices)

    for t in range(T):
        logp = _next_logp(logits, live, banned, eos_id if t < min_new_tokens else None)
        # 2K candidates, so that K live ones remain even if K of them end in eos
        score, idx = logp.view(B, K * V).topk(2 * K)
        src, tok = idx // V, idx % V
        cand = torch.cat([seqs.gather(1, src[..., None].expand(-1, -1, t)), tok[..., None]], dim=2)
        last = t + 1 == T
        ends = (tok == eos_id) | (last and not whole)
        # finished: candidates that end, ranked in the top K, in rows still open; "sequence" counts
        # the prompt and the t tokens before the eos, "new-tokens" the t + 1 new ones
        length = prompt[:, None] + (t if whole else t + 1)
        finish(torch.where(ends & top_k & open_[:, None], score / length ** length_penalty, -float("inf")), cand)
        # live beams: the best K candidates that did not end
        keep = (score - 1e9 * ends.float()).topk(K)
        live, keep = keep.values, keep.indices
        seqs = cand.gather(1, keep[..., None].expand(-1, -1, t + 1))
        # a row closes when its K finished hypotheses all beat its best live beam ("sequence": its best
        # candidate, ended or not) scored at the current length
        full = torch.isfinite(fin_score).all(dim=1)
        best = score[:, 0] / (prompt + t) ** length_penalty if whole else live[:, 0] / (t + 1) ** length_penalty
        open_ &= ~(full & (best <= fin_score[:, -1]))
        if last and whole:  # at the length limit the open rows' live beams are hypotheses too, all T tokens
            finish(torch.where(open_[:, None], live / (prompt[:, None] + T) ** length_penalty, -float("inf")), seqs)
        if last or not open_.any():
            break
        beams = src.gather(1, keep) + rows[:, None] * K  # the cache row each new beam continues
        if not open_.all():  # closed rows are final: emit them and stop running the model on them
            kept, row_of, (beams, live, seqs, fin_score, fin_seq, fin_len, prompt) = _drop_closed(
                open_, emit, row_of, (beams, live, seqs, fin_score, fin_seq, fin_len, prompt))
            B, open_, rows = len(kept), open_[kept], torch.arange(len(kept), device=dev)
        state.select(beams.view(-1))
        logits = runner.step(state, seqs[:, :, -1].reshape(-1))
    for b in range(B):
        emit(b)
    return out


def _next_logp(logits, live, banned, no_eos):
    """Each beam's candidates' summed log-probs, (B, K, V): `banned` tokens and (before min_new_tokens) the eos
    `no_eos` at -inf, applied to the log-probs and not renormalized after (as HF's logits processors in beam
    search do); in place after the log-softmax ((B*K, V) is 24 MB for SmolLM2 at 125 rows)."""
    logp = torch.log_softmax(logits, dim=-1, dtype=torch.float32)
    if banned:
        logp[:, banned] = -float("inf")
    if no_eos is not None:
        logp[:, no_eos] = -float("inf")
    return logp.view(*live.shape, -1).add_(live[:, :, None])


def _drop_closed(open_, emit, row_of, tensors):
    """Emit the closed rows; (the open rows' indices, their batch rows, `tensors` cut to them)."""
    for b in (~open_).nonzero()[:, 0].tolist():
        emit(b)
    kept = open_.nonzero()[:, 0]
    return kept, [row_of[b] for b in kept.tolist()], [x.index_select(0, kept) for x in tensors]


# ----- the core: Method objects in, text out -----
def decode(methods, sources, routes=None, beam=5, length_penalty=1.0, max_new_tokens=64, batch_size=50,
           limits=Limits(), progress=True, ban_newlines=False, min_new_tokens=0, hyp_length="sequence"):
    """One output string per source, in order. `methods` is a list of Methods; `routes[i]` indexes it
    (all rows use methods[0] when `routes` is None). Several methods share batches (see `Mixed`).
    `ban_newlines`: never generate a newline token (`newline_ids`; the paper's table-to-text decoding);
    `min_new_tokens`: no end of sequence before that many tokens (the authors' XSum decoding);
    `hyp_length`: how the length penalty counts a hypothesis (HYP_LENGTHS)."""
    if len(methods) > 1 and (routes is None or len(routes) != len(sources)):
        raise ValueError("decode: several methods need one route per source")
    first = methods[0]
    tok, device = first.tokenizer, next(first.model.parameters()).device
    banned = newline_ids(tok) if ban_newlines else None
    mixed = Routed(methods) if len(methods) > 1 else None
    for m in methods:
        m.eval()
    pairs = [encode_pair(tok, s, None, first.encoder_decoder, limits) for s in sources]
    order = sorted(range(len(pairs)), key=lambda i: -len(pairs[i][0]))  # longest first: OOM shows early
    out = [None] * len(pairs)
    attention = decoding_attention(first.model) if device.type == "cpu" else nullcontext()  # see attention.py
    bar = Progress(len(pairs), "decode", "input") if progress else None
    with attention:
        for start in range(0, len(order), batch_size):
            idx = order[start: start + batch_size]
            batch = collate([pairs[i] for i in idx], tok.pad_token_id, first.encoder_decoder)
            batch = {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}
            runner = first
            if mixed is not None:
                mixed.route, runner = torch.tensor([routes[i] for i in idx], device=device), mixed
            hyps = beam_search(runner, batch, beam, length_penalty, max_new_tokens, tok.eos_token_id, banned,
                               min_new_tokens, hyp_length)
            for i, ids in zip(idx, hyps):
                out[i] = " ".join(tok.decode(ids, skip_special_tokens=True).splitlines()).strip()
            if bar is not None:
                bar.update(len(idx), force=True)  # off a terminal: a line per batch
    if bar is not None:
        bar.close()
    return out
