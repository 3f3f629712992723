"""`prefixtune decode`: beam search with trained methods, one output line per input line, in order.

    prefixtune decode --model M --method-dir DIR --input dev.jsonl --out hyp.txt
        [--beam 5 --length-penalty 1.0 --max-new-tokens 100 --batch-size 50 --limit N]

Paper settings: `--beam 5` for table-to-text; `--beam 6 --length-penalty 0.8` for XSum. The decoding flags are
the fields of configs.DecodeConfig; the search itself is decoding/search.py.

Several prefixes in one batch (the paper's deployment claim: one frozen model serves many tasks in one batch,
each row with its own prefix): repeat `--method-dir NAME=DIR`, and each input line names its method in the
field `method` (or `--route FIELD`); see decoding/routed.py.

A method trained with a second selection rule (`train --eval-every-alt`) decodes its parameters with
`--selection alt`; `--same-step-as HYP` copies HYP when both rules kept the same step.
"""

import sys
from pathlib import Path

import torch

from .configs import DecodeConfig, from_args
from .configs import add_arguments as add_config_arguments
from .decoding.search import decode
from .errors import InputError, where
from .batching import Limits, with_source_prefix
from .files import atomic_open, read_jsonl
from .registry import WEIGHT_METHODS  # methods that change the model: one per run


def add_arguments(p):
    p.add_argument("--model", required=True, help="base model (must be the one named in each method.json)")
    p.add_argument("--method-dir", required=True, action="append", metavar="[NAME=]DIR",
                   help="trained method directory; repeat as NAME=DIR to mix several prefixes in one batch")
    p.add_argument("--route", default="method", metavar="FIELD",
                   help="input field naming each line's method when several are given (default: method)")
    p.add_argument("--input", required=True, help="JSONL with a `source` field (linearize's dev.jsonl, test.jsonl)")
    p.add_argument("--out", required=True, help="hypotheses, one line per input line, in order")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="decode the first N lines only")
    p.add_argument("--selection", choices=("primary", "alt"), default="primary",
                   help="which selection rule's parameters to decode (alt: train --eval-every-alt's)")
    p.add_argument("--same-step-as", default=None, metavar="HYP",
                   help="with --selection alt: when the second rule kept the first rule's step, copy HYP (this "
                        "command's output with --selection primary) instead of decoding the same model again")
    add_config_arguments(p, DecodeConfig)


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

    cfg = from_args(DecodeConfig, args)
    cfg.check()
    if args.limit is not None and args.limit < 1:
        raise InputError("--limit must be at least 1")
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
    device = resolve_device(cfg.device)
    model, tokenizer = load_model(args.model, dtype=getattr(torch, cfg.dtype))
    model.to(device)
    methods = [load_method(dir, model, tokenizer, args.selection).to(device) for _, dir in dirs]
    hyps = decode(methods, sources, routes, beam=cfg.beam, length_penalty=cfg.length_penalty,
                  max_new_tokens=cfg.max_new_tokens, batch_size=cfg.batch_size,
                  limits=Limits(max_source_len=cfg.max_source_len), ban_newlines=cfg.ban_newlines,
                  min_new_tokens=cfg.min_new_tokens, hyp_length=cfg.hyp_length)
    with atomic_open(args.out) as f:
        f.writelines(h + "\n" for h in hyps)
