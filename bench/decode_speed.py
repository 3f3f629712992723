"""Seconds per input of beam-search decoding with a trained prefix: `prefixtune decode` vs PEFT's `generate`.

    .venv/bin/python bench/decode_speed.py --json [--work /tmp/decode-bench] [--method-dir DIR]

One process, one trained prefix (P = 10, smollm2-135m), the first `--inputs` (50) E2E test inputs, beam 5,
at most 40 new tokens, length penalty 1, no early stop (HF's `early_stopping=False`, as our beam search),
the same torch threads. Each dtype (float32, bfloat16) loads the base model in that dtype:
  ours   prefixtune.decode.decode (the `prefixtune decode` path), `--batch-size` inputs per batch
  generate   transformers' `generate(num_beams=5, max_new_tokens=40)` on the same token ids, left-padded
         batches of `--batch-size`, the prefix given as its initial cache: what PEFT's generate does.
  peft   PEFT's own generate (the prefix exported with prefixtune.export.to_peft), the same batches; timed
         only where it applies the prefix (`peft_generate_uses_prefix`: PEFT 0.21 with transformers 5.24 passes
         the prefix as `past_key_values`, which generate no longer reads, so it would time the bare model)
`--device cuda`: the same on a GPU (the throwaway prefix is trained there; `--train`/`--test` give the data
files where no mirror is).
Each path decodes the inputs once to warm up, then `--rounds` times, interleaved; the median round counts.
`agree_<path>`: the fraction of inputs where it and ours give the same text (the same search; float rounding
may differ).

Without `--method-dir`, the prefix is trained once into `--work` (download and linearize E2E from
$PREFIXTUNE_DATA_MIRROR or ../shared/data, then `prefixtune train`, `--train-steps` steps) and reused.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from prefixtune.decoding.search import decode
from prefixtune.batching import encode_pair
from prefixtune.method_dir import load_method
from prefixtune.methods.base import cache_arg
from prefixtune.models import load_model

ROOT = Path(__file__).resolve().parents[1]  # the checkout: commands run from it

MODEL = "smollm2-135m"


def prefixtune(*args):
    subprocess.run([sys.executable, "-m", "prefixtune.cli", *map(str, args)], check=True, cwd=ROOT)


def prepare(work, steps, train=None, test=None, device="cpu", method_dir=None):
    """The E2E test file and a trained P=10 prefix in `work` (made once; `train`/`test`: linearized files to use
    instead of downloading and linearizing E2E)."""
    work.mkdir(parents=True, exist_ok=True)
    if not (train and test) and not (work / "e2e" / "test.jsonl").exists():
        mirror = os.environ.get("PREFIXTUNE_DATA_MIRROR", str(ROOT.parent / "shared" / "data"))
        prefixtune("download", "--dataset", "e2e", "--mirror", mirror, "--out", work / "raw")
        prefixtune("linearize", "--dataset", "e2e", "--raw", work / "raw", "--out", work / "e2e")
    if method_dir is None and not (work / "prefix" / "method.json").exists():
        prefixtune("train", "--model", MODEL, "--method", "prefix", "--prefix-len", 10, "--train",
                   train or work / "e2e" / "train.jsonl", "--max-steps", steps, "--batch-size", 8, "--lr", "5e-4",
                   "--device", device, "--out", work / "prefix")
    return test or work / "e2e" / "test.jsonl", method_dir or work / "prefix"


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Ours:
    def __init__(self, model, tokenizer, method_dir, batch_size):
        self.method = load_method(method_dir, model, tokenizer).to(model.device)
        self.batch_size = batch_size

    def __call__(self, sources):
        return decode([self.method], sources, beam=5, length_penalty=1.0, max_new_tokens=40,  # generate's search
                      batch_size=self.batch_size, progress=False, hyp_length="new-tokens")


class Generate:
    """transformers' `generate` with the prefix as its initial cache: what PEFT's generate does for prefix
    tuning (P placeholder tokens stand for the cached prefix, so generate skips them and positions start
    at P; the mask has P ones in front; left padding)."""

    def __init__(self, method, batch_size):
        self.method, self.model, self.tokenizer, self.batch_size = method, method.model, method.tokenizer, batch_size

    @torch.no_grad()
    def __call__(self, sources):
        tok, P, K = self.tokenizer, self.method.virtual_len, 5
        ids = [encode_pair(tok, s, None, False)[0] for s in sources]
        order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))  # as ours: longest first
        texts = [None] * len(ids)
        for start in range(0, len(order), self.batch_size):
            idx = order[start: start + self.batch_size]
            width = max(len(ids[i]) for i in idx)
            dev = self.model.device
            input_ids = torch.tensor([[tok.pad_token_id] * (P + width - len(ids[i])) + ids[i] for i in idx], device=dev)
            mask = torch.tensor([[1] * P + [0] * (width - len(ids[i])) + [1] * len(ids[i]) for i in idx], device=dev)
            cache = self.method.prefix_cache(len(idx) * K)  # every beam row starts from the same prefix
            for layer in cache.layers:
                layer.keys, layer.values = layer.keys.contiguous(), layer.values.contiguous()
            gen = self.model.generate(input_ids=input_ids, attention_mask=mask, **cache_arg(cache), num_beams=K,
                                      max_new_tokens=40, length_penalty=1.0, early_stopping=False, do_sample=False,
                                      pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
            for i, row in zip(idx, gen[:, input_ids.shape[1]:].tolist()):
                texts[i] = " ".join(tok.decode(row, skip_special_tokens=True).splitlines()).strip()
        return texts


class Peft:
    """PEFT's own `generate` (PeftModel from the exported prefix), left-padded batches: PEFT puts the prefix's
    mask in front itself."""

    def __init__(self, model, tokenizer, method_dir, work, batch_size):
        from peft import PeftModel

        self.model = PeftModel.from_pretrained(model, str(peft_export(method_dir, work))).eval()
        self.tokenizer, self.batch_size = tokenizer, batch_size

    @torch.no_grad()
    def __call__(self, sources):
        tok, dev = self.tokenizer, self.model.device
        ids = [encode_pair(tok, s, None, False)[0] for s in sources]
        order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
        texts = [None] * len(ids)
        for start in range(0, len(order), self.batch_size):
            idx = order[start: start + self.batch_size]
            width = max(len(ids[i]) for i in idx)
            input_ids = torch.tensor([[tok.pad_token_id] * (width - len(ids[i])) + ids[i] for i in idx], device=dev)
            mask = torch.tensor([[0] * (width - len(ids[i])) + [1] * len(ids[i]) for i in idx], device=dev)
            gen = self.model.generate(input_ids=input_ids, attention_mask=mask, num_beams=5, max_new_tokens=40,
                                      length_penalty=1.0, early_stopping=False, do_sample=False,
                                      pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
            for i, row in zip(idx, gen[:, width:].tolist()):
                texts[i] = " ".join(tok.decode(row, skip_special_tokens=True).splitlines()).strip()
        return texts


def peft_export(method_dir, work):
    from prefixtune.export import to_peft

    peft_dir = work / "peft-prefix"
    if not (peft_dir / "adapter_config.json").exists():
        to_peft(method_dir, peft_dir)
    return peft_dir


@torch.no_grad()
def peft_uses_prefix(model, tokenizer, method_dir, work, source):
    """Whether PEFT's own generate applies the prefix here: its greedy output for one input differs from
    the bare model's. (PEFT 0.21 hands generate the prefix as `past_key_values`; transformers 5.24 reads
    `cache` and ignores it, so PEFT's generate runs the model without the prefix.)"""
    from peft import PeftModel

    peft_dir = peft_export(method_dir, work)
    ids = torch.tensor([encode_pair(tokenizer, source, None, False)[0]], device=model.device)
    kwargs = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "max_new_tokens": 8, "do_sample": False,
              "pad_token_id": tokenizer.pad_token_id}
    bare = model.generate(**kwargs)
    peft_model = PeftModel.from_pretrained(model, str(peft_dir)).eval()
    with_peft = peft_model.generate(**kwargs)
    return not torch.equal(bare, with_peft)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", type=Path, default=Path("/tmp/prefixtune-decode-bench"))
    p.add_argument("--method-dir", type=Path, help="a trained P=10 prefix of smollm2-135m (default: train one)")
    p.add_argument("--train", type=Path, help="linearized E2E training file for that prefix (default: download)")
    p.add_argument("--test", type=Path, help="linearized E2E test file (default: download)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, ...")
    p.add_argument("--train-steps", type=int, default=60)
    p.add_argument("--inputs", type=int, default=50)
    p.add_argument("--batch-size", type=int, default=50, help="inputs per batch, both paths")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"])
    p.add_argument("--paths", nargs="+", default=["ours", "generate", "peft"], choices=["ours", "generate", "peft"],
                   help="peft runs only where PEFT's generate applies the prefix")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    test, method_dir = prepare(args.work, args.train_steps, args.train, args.test, args.device, args.method_dir)
    sources = [json.loads(line)["source"] for line in test.read_text().splitlines()[: args.inputs]]
    result = {"inputs": len(sources), "beam": 5, "max_new_tokens": 40, "batch_size": args.batch_size,
              "device": str(device), "threads": torch.get_num_threads()}
    base, tokenizer = load_model(MODEL)
    base.to(device)
    result["peft_generate_uses_prefix"] = peft_uses_prefix(base, tokenizer, method_dir, args.work, sources[0])
    del base
    for dtype in args.dtypes:
        suffix = "" if dtype == "float32" else "_bf16"
        model, tokenizer = load_model(MODEL, dtype=getattr(torch, dtype))
        model.to(device)
        paths = {}
        if "ours" in args.paths:
            paths["ours"] = Ours(model, tokenizer, method_dir, args.batch_size)
        if "generate" in args.paths:
            paths["generate"] = Generate(paths["ours"].method, args.batch_size)
        if "peft" in args.paths and result["peft_generate_uses_prefix"]:
            paths["peft"] = Peft(model, tokenizer, method_dir, args.work, args.batch_size)
        outputs = {name: run(sources) for name, run in paths.items()}  # warm-up
        times = {name: [] for name in paths}
        for _ in range(args.rounds):
            for name, run in paths.items():
                sync(device)
                start = time.perf_counter()
                run(sources)
                sync(device)
                times[name].append(time.perf_counter() - start)
        for name, t in times.items():
            result[f"{name}_s_per_input{suffix}"] = round(statistics.median(t) / len(sources), 4)
        for other in [n for n in paths if n != "ours"] if "ours" in paths else []:
            same = sum(a == b for a, b in zip(outputs["ours"], outputs[other]))
            result[f"agree_{other}{suffix}"] = round(same / len(sources), 3)
            result[f"ours_over_{other}{suffix}"] = round(result[f"ours_s_per_input{suffix}"]
                                                         / result[f"{other}_s_per_input{suffix}"], 3)
        result[f"mean_output_words{suffix}"] = round(statistics.mean(len(o.split()) for o in outputs[
            next(iter(paths))]), 1)
        del paths, model
    print(json.dumps(result) if args.json else "\n".join(f"{k}: {v}" for k, v in result.items()))


if __name__ == "__main__":
    main()
