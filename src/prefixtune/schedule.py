"""What each optimizer step does: AdamW with linear warm-up and decay, autocast, and which examples it sees (a
pure function of seed, epoch and step, so a resumed run sees the same ones). The settings: configs.TrainConfig."""

import math

import torch

from .configs import TrainConfig


def make_optimizer(params, hp: TrainConfig, total_steps: int):
    """AdamW and the linear warm-up/decay schedule used by `train` (and bench/train_step.py)."""
    from transformers import get_linear_schedule_with_warmup

    optimizer = torch.optim.AdamW(params, lr=hp.lr, weight_decay=hp.weight_decay)
    scheduler = get_linear_schedule_with_warmup(optimizer, hp.warmup_steps, total_steps)
    return optimizer, scheduler


def autocast(device: torch.device, dtype: str):
    """The context a training or dev forward runs in. bfloat16 is mixed precision: matmuls and attention run
    in bfloat16 under torch.autocast, while the model's weights, and so the trainable parameters the optimizer
    updates, stay float32 (the master copies; no loss scaling is needed with bfloat16's exponent range)."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=dtype == "bfloat16")


def to_device(batch: dict, device) -> dict:
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}


def epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    """The example order of one epoch: a pure function of (seed, epoch)."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=g).tolist()


def plan(n: int, hp: TrainConfig) -> tuple[int, int]:
    """(optimizer steps per epoch, total optimizer steps)."""
    batches = math.ceil(n / hp.batch_size)
    per_epoch = math.ceil(batches / hp.grad_accum)
    return per_epoch, hp.max_steps if hp.max_steps is not None else hp.epochs * per_epoch


def step_batches(step: int, n: int, hp: TrainConfig, per_epoch: int, cache: dict) -> tuple[int, list[list[int]]]:
    """(epoch, example indices of each micro-batch) of optimizer step `step` (0-based)."""
    epoch, k = divmod(step, per_epoch)
    if epoch not in cache:
        cache.clear()
        cache[epoch] = epoch_order(n, hp.seed, epoch)
    order = cache[epoch]
    first = k * hp.grad_accum * hp.batch_size
    last = min(first + hp.grad_accum * hp.batch_size, n)
    return epoch, [order[i:min(i + hp.batch_size, last)] for i in range(first, last, hp.batch_size)]
