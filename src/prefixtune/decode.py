"""`prefixtune decode`: beam search with trained methods, one output line per input line, in order.

    prefixtune decode --model M --method-dir DIR --input test.jsonl --out hyp.txt
        [--beam 5 --length-penalty 1.0 --max-new-tokens 64 --batch-size 50 --limit N]

Paper settings: `--beam 5` for table-to-text; `--beam 6 --length-penalty 0.8` for XSum.

Mixed batches (the paper's deployment claim: one frozen model serves many tasks in one batch,
each row with its own prefix): repeat `--method-dir NAME=DIR`, and each input line names its
method in the field `method` (or `--route FIELD`). Rows of different prefixes share a batch
and every decoding step runs them in one forward of the frozen model (see `Mixed`).

The core, `decode(methods, sources, routes, ...)`, takes Method objects; `run` only loads them.
"""

import sys
from contextlib import nullcontext
from pathlib import Path

import torch

from .attention import decoding_attention
from .errors import InputError, where
from .examples import Limits, collate, encode_pair, with_source_prefix
from .progress import Progress
from .files import atomic_open, read_jsonl
from .mixed import Mixed
from .registry import WEIGHT_METHODS  # methods that change the model: one per run

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
# Both with early_stopping=False, the 2021 default.
HYP_LENGTHS = ("sequence", "new-tokens")


def newline_ids(tokenizer) -> list[int]:
    """The tokens that are one or two newlines: what the authors' table-to-text decoding bans
    (`bad_words_ids = [[628], [198]]` in gpt2/run_generation.py: GPT-2's "\n\n" and "\n")."""
    vocab = tokenizer.get_vocab()
    return sorted(i for i in vocab.values() if tokenizer.decode([i]) in ("\n", "\n\n"))


@torch.no_grad()
def beam_search(runner, batch, beam=5, length_penalty=1.0, max_new_tokens=64, eos_id=2, banned=None,
                min_new_tokens=0, hyp_length="sequence"):
    """Best hypothesis per row of `batch` (token ids, without eos). `runner` has `prefill`/`step`.

    Scores are summed log-probs; a finished hypothesis scores sum / length ** length_penalty, its
    length counted as `hyp_length` says (see HYP_LENGTHS above).
    `beam=1` is greedy decoding. The B rows become B*K cache rows (row-major: row b, beam k).
    `banned` token ids are never generated (HF's bad_words_ids for single tokens); eos is not generated
    before `min_new_tokens` tokens (HF's min_length, counted in new tokens).
    """
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
        # Bans apply to the log-probs, not renormalized after (as HF's logits processors in beam search do)
        logp = torch.log_softmax(logits, dim=-1, dtype=torch.float32)  # in place from here: (B*K, V) is 24 MB
        if banned:
            logp[:, banned] = -float("inf")
        if t < min_new_tokens:
            logp[:, eos_id] = -float("inf")
        logp = logp.view(B, K, V).add_(live[:, :, None])
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
            for b in (~open_).nonzero()[:, 0].tolist():
                emit(b)
            kept = open_.nonzero()[:, 0]
            row_of = [row_of[b] for b in kept.tolist()]
            beams, live, seqs, fin_score, fin_seq, fin_len, prompt = (
                x.index_select(0, kept) for x in (beams, live, seqs, fin_score, fin_seq, fin_len, prompt))
            B, open_, rows = len(kept), open_[kept], torch.arange(len(kept), device=dev)
        state.select(beams.view(-1))
        logits = runner.step(state, seqs[:, :, -1].reshape(-1))
    for b in range(B):
        emit(b)
    return out


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
    mixed = Mixed(methods) if len(methods) > 1 else None
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


# ----- the command -----
def add_arguments(p):
    p.add_argument("--model", required=True, help="base model (must be the one named in each method.json)")
    p.add_argument("--method-dir", required=True, action="append", metavar="[NAME=]DIR",
                   help="trained method directory; repeat as NAME=DIR to mix several prefixes in one batch")
    p.add_argument("--route", default="method", metavar="FIELD",
                   help="input field naming each line's method when several are given (default: method)")
    p.add_argument("--input", required=True, help="JSONL with a `source` field (linearize's test.jsonl)")
    p.add_argument("--out", required=True, help="hypotheses, one line per input line, in order")
    p.add_argument("--beam", type=int, default=5, help="beam size (1 = greedy)")
    p.add_argument("--length-penalty", type=float, default=1.0, help="score = sum log-prob / length ** this")
    p.add_argument("--hyp-length", default="sequence", choices=HYP_LENGTHS,
                   help="the length that --length-penalty divides by: sequence = prompt and new tokens without eos "
                   "(the 2021 transformers of the authors' code), new-tokens = new tokens with eos (transformers "
                   "since 2023)")
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--min-new-tokens", type=int, default=0, help="no end of sequence before this many tokens")
    p.add_argument("--batch-size", type=int, default=50, help="input rows per batch (each times --beam); 50 measured "
                   "fastest on 2 CPU cores, fp32 and bf16 (bench/decode_speed.py: 0.20x-0.23x less time than 25)")
    p.add_argument("--max-source-len", type=int, default=Limits.max_source_len, help="source tokens kept")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="decode the first N lines only")
    p.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda, cuda:1, ...")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    p.add_argument("--selection", choices=("primary", "alt"), default="primary",
                   help="which selection rule's parameters to decode (alt: train --eval-every-alt's)")
    p.add_argument("--same-step-as", default=None, metavar="HYP",
                   help="with --selection alt: when the second rule kept the first rule's step, copy HYP (this "
                        "command's output with --selection primary) instead of decoding the same model again")
    p.add_argument("--ban-newlines", action="store_true",
                   help="never generate a newline token (the authors' table-to-text decoding, bad_words_ids)")


def parse_method_dirs(specs):
    """[(name, dir)] from `DIR` (one method) or `NAME=DIR` (several; names unique)."""
    if len(specs) == 1 and "=" not in specs[0]:
        return [(None, specs[0])]
    out = []
    for spec in specs:
        name, sep, dir = spec.partition("=")
        if not sep or not name or not dir:
            raise InputError(f"--method-dir {spec}: with several method dirs, write each as NAME=DIR")
        if name in [n for n, _ in out]:
            raise InputError(f"--method-dir {spec}: name '{name}' given twice")
        out.append((name, dir))
    return out


def read_inputs(path, names, route, limit=None):
    """(sources, routes or None) from the input JSONL; InputError names file:line on a bad line."""
    sources, routes = [], []
    for line, row in read_jsonl(path, required=("source",) + ((route,) if len(names) > 1 else ())):
        if not isinstance(row["source"], str):
            raise InputError(f"{where(path, line)}: field 'source' is not a string")
        if len(names) > 1:
            if row[route] not in names:
                raise InputError(f"{where(path, line)}: unknown method {row[route]!r} in field '{route}' "
                                 f"(method dirs: {', '.join(names)})")
            routes.append(names.index(row[route]))
        sources.append(row["source"])
        if limit is not None and len(sources) >= limit:
            break  # lines past the limit are not read
    return sources, (routes if len(names) > 1 else None)


def run(args):
    from .method_dir import WEIGHTS, load_method, read_info, weights_file
    from .models import load_model, resolve_device

    for flag in ("beam", "max_new_tokens", "batch_size", "limit"):
        if getattr(args, flag) is not None and getattr(args, flag) < 1:
            raise InputError(f"--{flag.replace('_', '-')} must be at least 1")
    if args.min_new_tokens < 0 or args.min_new_tokens >= args.max_new_tokens:
        raise InputError(f"--min-new-tokens must be at least 0 and below --max-new-tokens (got {args.min_new_tokens})")
    dirs = parse_method_dirs(args.method_dir)
    if args.same_step_as and (args.selection != "alt" or len(dirs) > 1):
        raise InputError("--same-step-as: only with --selection alt and one --method-dir")
    prefixes = []
    for _, dir in dirs:
        info = read_info(dir)
        prefixes.append(info.get("source_prefix"))
        if info["model"] != args.model:
            raise InputError(f"{Path(dir) / 'method.json'}: trained on base model '{info['model']}', "
                             f"not --model {args.model}")
        if len(dirs) > 1 and info.get("method") in WEIGHT_METHODS:
            raise InputError(f"{Path(dir) / 'method.json'}: method '{info['method']}' changes the model's "
                             "weights and cannot share a batch: give one --method-dir")
    if args.same_step_as and weights_file(dirs[0][1], "alt").name == WEIGHTS:
        same = Path(args.same_step_as)
        if not same.is_file():
            raise InputError(f"--same-step-as {same}: no such file")
        with atomic_open(args.out) as f:
            f.write(same.read_text(encoding="utf-8"))
        print(f"{args.out}: the second selection rule kept the first rule's step; copied {same}", file=sys.stderr)
        return
    sources, routes = read_inputs(args.input, [n for n, _ in dirs], args.route, args.limit)
    if not sources:
        raise InputError(f"{args.input}: no inputs (empty file)")
    sources = [with_source_prefix(s, prefixes[routes[i] if routes else 0]) for i, s in enumerate(sources)]
    device = resolve_device(args.device)
    model, tokenizer = load_model(args.model, dtype=getattr(torch, args.dtype))
    model.to(device)
    methods = [load_method(dir, model, tokenizer, args.selection).to(device) for _, dir in dirs]
    hyps = decode(methods, sources, routes, beam=args.beam, length_penalty=args.length_penalty,
                  max_new_tokens=args.max_new_tokens, batch_size=args.batch_size,
                  limits=Limits(max_source_len=args.max_source_len), ban_newlines=args.ban_newlines,
                  min_new_tokens=args.min_new_tokens, hyp_length=args.hyp_length)
    with atomic_open(args.out) as f:
        f.writelines(h + "\n" for h in hyps)
