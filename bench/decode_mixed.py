"""Throughput of one mixed batch run (k prefixes over one frozen model) vs k separate runs.

    python bench/decode_mixed.py [--model smollm2-135m] [--rows 48 --prefixes 4 --batch-size 16
                                  --beam 5 --max-new-tokens 24 --device auto --dtype float32]

N rows, row i routed to prefix i % k (random-init prefixes, P=10, as `prefixtune decode` would load
them). "mixed": `decode(all k, rows, routes)`, batches hold rows of every prefix. "separate": k runs of
`decode([prefix j], its N/k rows)`. Same beam settings, same batch size. Prints one JSON line with
rows/s of each, their ratio, and how many rows' outputs are identical (mixing itself is exact; rows
padded differently in the two runs may differ by float rounding, which can flip a near-tie in a beam).

`--random-init DIR`: the architecture of a saved config + tokenizer (`config.json`, tokenizer files)
with random weights, for machines that lack the model's weights. Throughput depends on shapes, not
weight values; random weights rarely emit eos, so every row runs to --max-new-tokens (a fixed load).
Make DIR where the weights are: `m, t = load_model("smollm2-135m")`, then `m.config.save_pretrained(DIR)`
and `t.save_pretrained(DIR)`.
"""

import argparse
import json
import random
import time
from pathlib import Path

import torch

from prefixtune.decoding.search import decode
from prefixtune.methods import build
from prefixtune.methods.config import method_config
from prefixtune.models import load_model

FIELDS = {"name": ["The Eagle", "Alimentum", "The Mill", "Zizzi", "Wildwood", "Cotto", "Fitzbillies"],
          "eatType": ["coffee shop", "pub", "restaurant"], "food": ["French", "Italian", "Japanese", "English"],
          "priceRange": ["cheap", "moderate", "high", "less than £20"], "area": ["city centre", "riverside"],
          "customer rating": ["low", "average", "5 out of 5"], "near": ["Burger King", "Café Rouge", "The Bakers"]}


def sources(n, seed=0):
    """E2E-like meaning representations of varied length (linearize's `key : value | ...` format)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        keys = ["name"] + rng.sample(list(FIELDS)[1:], rng.randint(2, 6))
        out.append(" | ".join(f"{k} : {rng.choice(FIELDS[k])}" for k in keys))
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="smollm2-135m")
    p.add_argument("--random-init", default=None, metavar="DIR")
    p.add_argument("--rows", type=int, default=48)
    p.add_argument("--prefixes", type=int, default=4)
    p.add_argument("--prefix-len", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--beam", type=int, default=5)
    p.add_argument("--max-new-tokens", type=int, default=24)
    p.add_argument("--device", default="auto")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    p.add_argument("--repeats", type=int, default=1, help="time each way this often (alternating), keep the best")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device)
    dtype = getattr(torch, args.dtype)
    if args.random_init:
        from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(args.random_init), dtype=dtype).eval()
        tok = AutoTokenizer.from_pretrained(args.random_init)
        tok.pad_token = tok.pad_token or tok.eos_token
        name = f"{Path(args.random_init).name} (random weights)"
    else:
        model, tok = load_model(args.model, dtype=dtype)
        name = args.model
    model.to(device)
    methods = []
    for j in range(args.prefixes):
        torch.manual_seed(j)
        methods.append(build(model, tok, method_config("prefix", prefix_len=args.prefix_len, reparam=False)).eval())
    rows = sources(args.rows)
    routes = [i % args.prefixes for i in range(args.rows)]
    kw = dict(beam=args.beam, max_new_tokens=args.max_new_tokens, batch_size=args.batch_size, progress=False)
    decode(methods, rows[:2], routes[:2], **{**kw, "max_new_tokens": 2})  # warm-up (kernels, allocator)

    def timed(fn):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        out = fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return out, time.perf_counter() - start

    def separate():
        out = [None] * len(rows)
        for j, m in enumerate(methods):
            mine = [i for i, r in enumerate(routes) if r == j]
            for i, h in zip(mine, decode([m], [rows[i] for i in mine], **kw)):
                out[i] = h
        return out

    t_mixed = t_sep = float("inf")
    for _ in range(args.repeats):  # alternate, so that drifting machine load hits both alike
        mixed, t = timed(lambda: decode(methods, rows, routes, **kw))
        t_mixed = min(t_mixed, t)
        sep, t = timed(separate)
        t_sep = min(t_sep, t)
    print(json.dumps({
        "model": name, "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "threads": torch.get_num_threads(), "dtype": args.dtype, "rows": args.rows, "prefixes": args.prefixes,
        "prefix_len": args.prefix_len, "batch_size": args.batch_size, "beam": args.beam,
        "max_new_tokens": args.max_new_tokens, "mixed_s": round(t_mixed, 2), "separate_s": round(t_sep, 2),
        "mixed_rows_per_s": round(args.rows / t_mixed, 2), "separate_rows_per_s": round(args.rows / t_sep, 2),
        "speedup": round(t_sep / t_mixed, 2),
        "identical_rows": sum(a == b for a, b in zip(mixed, sep))}))


if __name__ == "__main__":
    main()
