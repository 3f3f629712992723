"""Seconds per optimizer step and peak memory: our prefix-tuning vs full fine-tuning vs PEFT's prefix.

    .venv/bin/python bench/train_step.py --json                          # CPU, smollm2-135m
    .venv/bin/python bench/train_step.py --json --device cuda --dtype bfloat16

One process, one run. Every method trains the same base model (a fresh copy each) on the same
batch (8 rows x 64 tokens: 32 source + 32 target tokens, loss on the target) with the step of
`prefixtune train` (forward, backward, clip to norm 1, AdamW, linear schedule, zero_grad):
  prefix        prefixtune.methods.prefix.Prefix, P=10, MLP reparametrization mid_dim=512
  finetune      prefixtune.methods.finetune.Finetune (every weight)
  peft_prefix   peft.PrefixTuningConfig(num_virtual_tokens=10, prefix_projection=True,
                encoder_hidden_size=512) on the same model
Time: after --warmup steps each, --rounds rounds in which every method runs one step in turn
(interleaved, so load from other processes hits all alike); the reported seconds are the median
step of each method (the list is in `*_steps`). CUDA steps are synchronized.

Peak memory of one steady-state step (after a warm-up step, so optimizer state exists; each
method measured alone, the others deleted): what is live at the step's peak -- weights, grads,
optimizer state, activations.
  CUDA: torch.cuda.max_memory_allocated after reset_peak_memory_stats.
  CPU:  PyTorch's profiler with profile_memory=True records every CPU tensor allocation and free;
        its memory timeline (export_memory_timeline, device "cpu") gives bytes live over the step,
        tensors that existed before it included; the peak is the maximum of that sum. This is the
        CPU twin of max_memory_allocated (tensor bytes, not RSS: ru_maxrss would count the model
        loading spike and freed-but-cached malloc arenas, and tracemalloc cannot see torch).
"""

import argparse
import copy
import gc
import json
import os
import statistics
import sys
import tempfile
import time

import torch

from prefixtune.batching import collate, separator_id
from prefixtune.methods import build
from prefixtune.methods.config import applicable, method_config
from prefixtune.models import load_model
from prefixtune.configs import TrainConfig
from prefixtune.train import make_optimizer, to_device

METHODS = ("prefix", "finetune", "peft_prefix")
ARCH = "smollm2-135m-arch"


def load_base(name, dtype):
    """`load_model(name)`, or for ARCH SmolLM2-135M's architecture with random weights and a byte
    tokenizer: the same step cost where the GGUF cannot go (e.g. a GPU machine without the package)."""
    if name != ARCH:
        return load_model(name, dtype=dtype)
    from transformers import LlamaConfig, LlamaForCausalLM

    from prefixtune.models import byte_tokenizer

    config = LlamaConfig(hidden_size=576, num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3,
                         head_dim=64, intermediate_size=1536, vocab_size=49152, tie_word_embeddings=True,
                         rms_norm_eps=1e-5, max_position_embeddings=8192, bos_token_id=0, pad_token_id=1,
                         eos_token_id=2, rope_parameters={"rope_theta": 100000.0, "rope_type": "default"})
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    return (model.to(dtype) if dtype is not None else model).eval(), byte_tokenizer()


def make_batch(tokenizer, vocab, rows, tokens, seed=0):
    """`rows` rows of `tokens` tokens, no padding: half source (+SEP), half target (+EOS)."""
    g = torch.Generator().manual_seed(seed)
    half = tokens // 2
    low = max(tokenizer.all_special_ids) + 1
    pairs = []
    for _ in range(rows):
        ids = torch.randint(low, min(len(tokenizer), vocab), (tokens - 2,), generator=g).tolist()
        pairs.append((ids[: half - 1] + [separator_id(tokenizer)], ids[half - 1:] + [tokenizer.eos_token_id]))
    return collate(pairs, tokenizer.pad_token_id, encoder_decoder=False)


class Runner:
    """One method on its own copy of the base model, with its optimizer: `step()` is one update."""

    def __init__(self, name, base, tokenizer, batch, device, total_steps):
        model = copy.deepcopy(base)
        torch.manual_seed(0)
        if name == "peft_prefix":
            from peft import PrefixTuningConfig, get_peft_model

            config = PrefixTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=10, prefix_projection=True,
                                        encoder_hidden_size=512)
            self.module = get_peft_model(model, config).to(device)
            self.params = [p for p in self.module.parameters() if p.requires_grad]
            # PEFT's documented call: ids, mask and labels (it extends the mask and positions itself).
            self.forward = lambda: self.module(input_ids=self.batch["input_ids"],
                                               attention_mask=self.batch["attention_mask"],
                                               labels=self.batch["labels"]).loss
        else:
            config = method_config(name, **applicable(name, {"prefix_len": 10, "mid_dim": 512}))
            self.module = build(model, tokenizer, config).to(device)
            self.params = self.module.trainable_parameters()
            self.forward = lambda: self.module.loss(self.batch)  # as prefixtune.train does
        self.module.train()
        self.batch = to_device(batch, device)
        self.hp = TrainConfig(lr=5e-5)
        self.optimizer, self.scheduler = make_optimizer(self.params, self.hp, total_steps)
        self.trainable = sum(p.numel() for p in self.params)

    def step(self):
        """The update of prefixtune.train.train (one micro-batch)."""
        loss = self.forward()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.params, self.hp.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return loss.detach()


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(runner, device):
    sync(device)
    t = time.perf_counter()
    runner.step()
    sync(device)
    return time.perf_counter() - t


def peak_mb(runner, device):
    """Peak live tensor memory (MiB) during one step (see module docstring)."""
    if device.type == "cuda":
        sync(device)
        torch.cuda.reset_peak_memory_stats(device)
        runner.step()
        sync(device)
        return torch.cuda.max_memory_allocated(device) / 2**20
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True, record_shapes=True,
                 with_stack=True) as prof:
        runner.step()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "timeline.json")
        prof.export_memory_timeline(path, device="cpu")
        with open(path) as f:
            _, sizes = json.load(f)
    return max(sum(s) for s in sizes) / 2**20


def time_steps(args, base, tokenizer, batch, device, total, result, log):
    """Warm-up, then interleaved timed steps: {method: [seconds per step]}. Runners die on return."""
    runners = {name: Runner(name, base, tokenizer, batch, device, total) for name in args.methods}
    for name, r in runners.items():
        result[f"{name}_trainable"] = r.trainable
        for _ in range(args.warmup):
            r.step()
    steps = {name: [] for name in runners}
    for i in range(args.rounds):
        for name, r in runners.items():
            steps[name].append(timed(r, device))
        log(f"round {i + 1}/{args.rounds}: " + ", ".join(f"{n} {s[-1]:.3f}s" for n, s in steps.items()))
    return steps


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="smollm2-135m", help=f"a load_model name, or {ARCH}")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads, the same for every method")
    p.add_argument("--rows", type=int, default=8)
    p.add_argument("--tokens", type=int, default=64)
    p.add_argument("--warmup", type=int, default=2, help="untimed steps per method first")
    p.add_argument("--rounds", type=int, default=5, help="timed steps per method (interleaved)")
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory measurement")
    p.add_argument("--json", action="store_true", help="print one JSON line only")
    args = p.parse_args(argv)

    torch.set_num_threads(args.threads)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    dtype = getattr(torch, args.dtype)
    log = (lambda *a: print(*a, file=sys.stderr)) if args.json else print
    t = time.perf_counter()
    base, tokenizer = load_base(args.model, dtype=dtype if dtype != torch.float32 else None)
    log(f"loaded {args.model} in {time.perf_counter() - t:.1f}s")
    batch = make_batch(tokenizer, base.config.vocab_size, args.rows, args.tokens)
    total = args.warmup + args.rounds + 2

    result = {"model": args.model, "device": str(device), "dtype": args.dtype, "threads": args.threads,
              "batch": [args.rows, args.tokens], "warmup": args.warmup, "rounds": args.rounds,
              "timing": "median step", "memory": "cuda max_memory_allocated" if device.type == "cuda"
              else "profiler tensor-memory timeline peak"}
    steps = time_steps(args, base, tokenizer, batch, device, total, result, log)
    for name, s in steps.items():
        result[f"{name}_s"] = round(statistics.median(s), 4)
        result[f"{name}_steps"] = [round(x, 4) for x in s]

    if not args.no_memory:  # the timing runners are gone (time_steps returned): each method alone
        for name in args.methods:
            gc.collect()
            if device.type == "cuda":
                torch.cuda.empty_cache()
                # what stays allocated between methods (cuBLAS workspaces, ~65 MiB): counted in every peak
                result[f"{name}_cuda_before_mb"] = round(torch.cuda.memory_allocated(device) / 2**20, 1)
            r = Runner(name, base, tokenizer, batch, device, total)
            r.step()  # optimizer state now exists: the peak of the next step is the steady state
            result[f"{name}_peak_mb"] = round(peak_mb(r, device), 1)
            del r

    # issue 14's targets: on a GPU (bf16 32x256) prefix <= 0.75x fine-tuning and <= 0.95x PEFT; on the CPU
    # <= 0.65x fine-tuning, <= 0.92x PEFT and peak memory <= 0.55x fine-tuning
    targets = {"finetune": 0.75, "peft_prefix": 0.95} if device.type == "cuda" else \
        {"finetune": 0.65, "peft_prefix": 0.92, "memory": 0.55}
    if "prefix_s" in result:
        for other in ("finetune", "peft_prefix"):
            if f"{other}_s" in result:
                result[f"prefix_vs_{other}_time"] = round(result["prefix_s"] / result[f"{other}_s"], 3)
                result[f"prefix_vs_{other}_time_target"] = targets[other]
        if "prefix_peak_mb" in result and "finetune_peak_mb" in result:
            result["prefix_vs_finetune_memory"] = round(result["prefix_peak_mb"] / result["finetune_peak_mb"], 3)
            if "memory" in targets:
                result["prefix_vs_finetune_memory_target"] = targets["memory"]
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
