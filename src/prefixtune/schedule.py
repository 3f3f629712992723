"""What each optimizer step does: the hyper-parameters (`Hparams`), AdamW with linear warm-up and decay,
and which examples it sees (a pure function of seed, epoch and step, so a resumed run sees the same ones)."""

import math
from dataclasses import dataclass

import torch

from .errors import InputError
from .methods.base import LOSSES


DTYPES = ("float32", "bfloat16")


@dataclass
class Hparams:
    """Training hyper-parameters (stored in method.json under `hparams`)."""

    epochs: int = 10
    max_steps: int | None = None  # optimizer steps; wins over epochs when set
    lr: float = 5e-5
    batch_size: int = 5
    grad_accum: int = 1
    warmup_steps: int = 0
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0  # as the paper's transformers Trainer; 0 turns clipping off
    seed: int = 0
    save_every: int = 500  # checkpoint every N optimizer steps; 0: never
    max_source_len: int = 256
    max_target_len: int = 128
    device: str = "auto"  # auto: cuda when present, else cpu
    eval_every: int = 0  # with dev examples: dev loss every N optimizer steps (and at the last step)
    eval_every_alt: int = 0  # a second selection rule on the same training (0: none); see selection.py
    patience: int | None = None  # stop after this many dev evaluations without a new best; None: never
    loss: str = "sequence"  # sequence: NLL summed per target, mean over the batch (the paper's); token: mean
    dtype: str = "float32"  # bfloat16: forward and backward under autocast; the trained weights stay float32

    def check(self, has_dev=False):
        """InputError for values no run can use (`has_dev`: a dev set is given, see --dev)."""
        if has_dev and not self.eval_every:
            raise InputError("--dev needs --eval-every N (dev loss every N optimizer steps)")
        if self.patience is not None and not has_dev:
            raise InputError("--patience needs --dev")
        if self.eval_every_alt and not has_dev:
            raise InputError("--eval-every-alt needs --dev")
        for name in ("epochs", "batch_size", "grad_accum", "max_source_len", "max_target_len"):
            if getattr(self, name) <= 0:
                raise InputError(f"--{name.replace('_', '-')} must be positive (got {getattr(self, name)})")
        if self.max_steps is not None and self.max_steps <= 0:
            raise InputError(f"--max-steps must be positive (got {self.max_steps})")
        if self.patience is not None and self.patience <= 0:
            raise InputError(f"--patience must be positive (got {self.patience})")
        for name in ("warmup_steps", "weight_decay", "max_grad_norm", "save_every", "eval_every", "eval_every_alt"):
            if getattr(self, name) < 0:
                raise InputError(f"--{name.replace('_', '-')} must not be negative (got {getattr(self, name)})")
        if not self.lr > 0:
            raise InputError(f"--lr must be positive (got {self.lr})")
        if self.dtype not in DTYPES:
            raise InputError(f"--dtype must be {' or '.join(DTYPES)} (got {self.dtype!r})")
        if self.loss not in LOSSES:
            raise InputError(f"--loss must be {' or '.join(LOSSES)} (got {self.loss!r})")


def make_optimizer(params, hp: Hparams, total_steps: int):
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


def plan(n: int, hp: Hparams) -> tuple[int, int]:
    """(optimizer steps per epoch, total optimizer steps)."""
    batches = math.ceil(n / hp.batch_size)
    per_epoch = math.ceil(batches / hp.grad_accum)
    return per_epoch, hp.max_steps if hp.max_steps is not None else hp.epochs * per_epoch


def step_batches(step: int, n: int, hp: Hparams, per_epoch: int, cache: dict) -> tuple[int, list[list[int]]]:
    """(epoch, example indices of each micro-batch) of optimizer step `step` (0-based)."""
    epoch, k = divmod(step, per_epoch)
    if epoch not in cache:
        cache.clear()
        cache[epoch] = epoch_order(n, hp.seed, epoch)
    order = cache[epoch]
    first = k * hp.grad_accum * hp.batch_size
    last = min(first + hp.grad_accum * hp.batch_size, n)
    return epoch, [order[i:min(i + hp.batch_size, last)] for i in range(first, last, hp.batch_size)]
