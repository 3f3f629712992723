"""`prefixtune train`: one training loop for every method.

AdamW over `method.trainable_parameters()`, linear warm-up then linear decay
(`transformers.get_linear_schedule_with_warmup`), gradient accumulation, gradient clipping,
loss on target tokens only (the `examples.collate` layout).

Output (written by `train(method, examples, hparams, out_dir)`):
    OUT/                  appears only when training completes (`files.atomic_dir`):
        weights.safetensors, method.json   (see `prefixtune.checkpoint`)
        log.jsonl          one line per optimizer step: step, epoch, loss, lr, seconds
    OUT.partial/          exists only while training runs or after it was interrupted:
        checkpoint.pt      trainable tensors, optimizer, scheduler, RNG states, step (every
                           --save-every optimizer steps, written atomically)
        log.jsonl          the log so far
Running the same command again with the same --out resumes from OUT.partial/checkpoint.pt;
on the CPU the final tensors are bit-identical to those of an uninterrupted run.

Model selection on dev (`--dev FILE --eval-every N [--patience K]`, the paper's Appendix A: early
stopping on a dev set): the dev loss (the training objective, per target token over the whole dev set,
dropout off) every N optimizer steps and at the last step, logged as `dev_loss` in that step's log row;
the parameters with the lowest dev loss are the ones saved; K evaluations without a new best stop the
run. method.json records best_step, best_dev_loss, dev_curve, stopped_early and steps_run. The
checkpoint holds the best parameters and the curve, so a resumed run ends exactly where an uninterrupted
one does.

Reproducibility: the order of examples in epoch e is `randperm` of a torch.Generator seeded
with (seed, e), so optimizer step s always sees the same examples: the sampler position is
just the step. Dropout draws from the global torch RNG, whose state the checkpoint keeps.
"""

import dataclasses
import hashlib
import json
import math
import os
import random
import shutil
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from .errors import InputError, where
from .examples import IGNORE, Limits, collate, encode_pair
from .files import atomic_dir, atomic_path, read_jsonl
from .methods.base import LOSSES
from .models import resolve_device

# Test hook: SIGKILL this process right after optimizer step N (a real kill: no cleanup runs).
KILL_ENV = "PREFIXTUNE_TEST_KILL_AT_STEP"


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
    patience: int | None = None  # stop after this many dev evaluations without a new best; None: never
    loss: str = "sequence"  # sequence: NLL summed per target, mean over the batch (the paper's); token: mean

    def check(self, has_dev=False):
        """InputError for values no run can use (`has_dev`: a dev set is given, see --dev)."""
        if has_dev and not self.eval_every:
            raise InputError("--dev needs --eval-every N (dev loss every N optimizer steps)")
        if self.patience is not None and not has_dev:
            raise InputError("--patience needs --dev")
        for name in ("epochs", "batch_size", "grad_accum", "max_source_len", "max_target_len"):
            if getattr(self, name) <= 0:
                raise InputError(f"--{name.replace('_', '-')} must be positive (got {getattr(self, name)})")
        if self.max_steps is not None and self.max_steps <= 0:
            raise InputError(f"--max-steps must be positive (got {self.max_steps})")
        if self.patience is not None and self.patience <= 0:
            raise InputError(f"--patience must be positive (got {self.patience})")
        for name in ("warmup_steps", "weight_decay", "max_grad_norm", "save_every", "eval_every"):
            if getattr(self, name) < 0:
                raise InputError(f"--{name.replace('_', '-')} must not be negative (got {getattr(self, name)})")
        if not self.lr > 0:
            raise InputError(f"--lr must be positive (got {self.lr})")
        if self.loss not in LOSSES:
            raise InputError(f"--loss must be {' or '.join(LOSSES)} (got {self.loss!r})")


def read_examples(path) -> list[tuple[str, str]]:
    """(source, target) pairs of a training JSONL file; InputError naming file:line if bad."""
    pairs = []
    for line, row in read_jsonl(path, required=("source", "target")):
        for key in ("source", "target"):
            if not isinstance(row[key], str):
                raise InputError(f"{where(path, line)}: '{key}' must be a string")
        if not row["target"].strip():
            raise InputError(f"{where(path, line)}: 'target' is empty (nothing to learn from this line)")
        pairs.append((row["source"], row["target"]))
    if not pairs:
        raise InputError(f"{path}: no training examples (empty file)")
    return pairs


def make_optimizer(params, hp: Hparams, total_steps: int):
    """AdamW and the linear warm-up/decay schedule used by `train` (and bench/train_step.py)."""
    from transformers import get_linear_schedule_with_warmup

    optimizer = torch.optim.AdamW(params, lr=hp.lr, weight_decay=hp.weight_decay)
    scheduler = get_linear_schedule_with_warmup(optimizer, hp.warmup_steps, total_steps)
    return optimizer, scheduler


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


def fingerprint(method, examples, hp: Hparams, info: dict, dev=()) -> str:
    """What must match for a checkpoint to resume this run (not save_every or device)."""
    h = hashlib.sha256()
    hp_dict = {k: v for k, v in dataclasses.asdict(hp).items() if k not in ("save_every", "device")}
    h.update(json.dumps([info.get("model"), method.config.to_dict(), hp_dict], sort_keys=True).encode())
    for source, target in examples:
        h.update(json.dumps([source, target]).encode())
    for source, target in dev:
        h.update(json.dumps(["dev", source, target]).encode())
    return h.hexdigest()


@torch.no_grad()
def dev_loss(method, batches) -> float:
    """The training objective on the dev set: NLL of the targets, over all dev tokens (per token whatever
    --loss is: on one dev set the two differ by a constant factor, so the best step is the same). Eval mode
    (no dropout, so no random numbers are drawn and resuming stays bit-identical)."""
    was_training = method.training
    method.eval()
    total = tokens = 0.0
    for batch in batches:
        n = int((batch["labels"] != IGNORE).sum())
        total += method.loss(batch, "token").item() * n
        tokens += n
    method.train(was_training)
    return total / tokens


class Selection:
    """Model selection on dev (`--dev`): the best parameters so far, the dev curve, early stopping."""

    def __init__(self, patience=None):
        self.patience, self.curve, self.bad = patience, [], 0  # bad: evaluations since the best
        self.best_loss = self.best_step = self.best = None

    def update(self, step, loss, method) -> bool:
        """Record the dev loss after optimizer step `step`; True when training should stop."""
        self.curve.append({"step": step, "dev_loss": loss})
        if self.best_loss is None or loss < self.best_loss:
            self.best_loss, self.best_step, self.bad = loss, step, 0
            self.best = {n: p.detach().cpu().clone() for n, p in trainable_named(method).items()}
        else:
            self.bad += 1
        return self.patience is not None and self.bad >= self.patience

    def state(self) -> dict:
        return {k: getattr(self, k) for k in ("best_loss", "best_step", "best", "curve", "bad")}

    def load(self, state: dict):
        for k, v in state.items():
            setattr(self, k, v)

    def restore(self, method):
        with torch.no_grad():
            for n, p in trainable_named(method).items():
                p.copy_(self.best[n])


def rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict):
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def trainable_named(method) -> dict:
    return {n: p for n, p in method.named_parameters() if p.requires_grad}


def save_checkpoint(path: Path, method, optimizer, scheduler, step, seconds, loss, print_=None, selection=None):
    state = {
        "selection": selection.state() if selection is not None else None,
        "step": step,
        "seconds": seconds,
        "loss": loss,
        "params": {n: p.detach().cpu() for n, p in trainable_named(method).items()},
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "rng": rng_state(),
        "fingerprint": print_,
    }
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: Path, method, optimizer, scheduler, print_) -> dict:
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # any unreadable file: say which, and how to start over
        raise InputError(f"{path}: unreadable checkpoint ({e}); delete it to start over") from None
    if state.get("fingerprint") != print_:
        raise InputError(f"{path}: checkpoint of a different run (model, method, hyper-parameters or "
                         "data differ); delete its folder or choose another --out")
    params = trainable_named(method)
    if set(params) != set(state["params"]):
        raise InputError(f"{path}: checkpoint tensors do not match the method's trainable parameters")
    with torch.no_grad():
        for n, p in params.items():
            p.copy_(state["params"][n])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    set_rng_state(state["rng"])
    return state


def _pairs(items) -> list[tuple[str, str]]:
    """(source, target) pairs from pairs or from {"source", "target"} dicts."""
    return [(e["source"], e["target"]) if isinstance(e, dict) else tuple(e) for e in items]


def read_log(path: Path) -> list[dict]:
    """The rows of a log.jsonl that an interrupted run left: a kill can cut its last line short (or
    leave a torn write inside it), so rows that do not parse as a JSON object with a step are dropped."""
    rows = []
    if not path.is_file():
        return rows
    for line in path.read_bytes().decode("utf-8", errors="replace").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict) and isinstance(row.get("step"), int):
            rows.append(row)
    return rows


def train(method, examples, hparams: Hparams, out_dir, info: dict | None = None, dev=None) -> dict:
    """Train `method` on `examples` ((source, target) text pairs); write OUT (see module doc).

    With `dev` pairs and `hparams.eval_every`, the dev loss is computed every `eval_every` optimizer steps
    and at the last one; the parameters with the lowest dev loss are the ones saved, training stops after
    `hparams.patience` evaluations without a new best, and method.json records `best_step`,
    `best_dev_loss`, `dev_curve`, `stopped_early` and `steps_run`.

    `info` is added to method.json (`info["model"]` names the base model for `load_method`;
    default: the model's `name_or_path`). Seed the RNG before building the method (as `run` does)
    for a reproducible initialization. Returns the method.json dict. The method is left trained,
    in eval mode, on the device it trained on.
    """
    from .checkpoint import save_method

    hp = hparams
    examples, dev = _pairs(examples), _pairs(dev or [])
    hp.check(has_dev=bool(dev))
    out = Path(out_dir)
    partial = out.with_name(out.name + ".partial")
    info = dict(info or {})
    info.setdefault("model", method.model.config.name_or_path)
    if not examples:
        raise InputError("no training examples")
    device = resolve_device(hp.device)
    limits = Limits(hp.max_source_len, hp.max_target_len)
    pad_id = method.tokenizer.pad_token_id
    encoded = [encode_pair(method.tokenizer, s, t, method.encoder_decoder, limits) for s, t in examples]

    dev_batches = [to_device(collate([encode_pair(method.tokenizer, s, t, method.encoder_decoder, limits)
                                      for s, t in dev[i:i + hp.batch_size]], pad_id, method.encoder_decoder), device)
                   for i in range(0, len(dev), hp.batch_size)]
    selection = Selection(hp.patience) if dev else None

    method.to(device)
    params = method.trainable_parameters()
    if not params:
        raise InputError(f"method '{method.config.method}' has no trainable parameters")
    per_epoch, total = plan(len(encoded), hp)
    optimizer, scheduler = make_optimizer(params, hp, total)
    torch.manual_seed(hp.seed)
    random.seed(hp.seed)

    # Resume, or start a fresh partial folder.
    ckpt, log_path = partial / "checkpoint.pt", partial / "log.jsonl"
    print_ = fingerprint(method, examples, hp, info, dev)
    start, seconds_before, loss = 0, 0.0, float("nan")
    if ckpt.is_file():
        state = load_checkpoint(ckpt, method, optimizer, scheduler, print_)
        start, seconds_before, loss = state["step"], state["seconds"], state["loss"]
        if selection is not None:
            selection.load(state["selection"])
        rows = read_log(log_path)
        with atomic_path(log_path) as tmp:  # drop what the interrupted run logged after its checkpoint
            tmp.write_text("".join(json.dumps(r) + "\n" for r in rows if r["step"] <= start))
        tqdm.write(f"{out}: resumed from step {start} of {total} ({partial / 'checkpoint.pt'})", file=sys.stderr)
    else:
        if partial.exists():
            shutil.rmtree(partial)
        partial.mkdir(parents=True)
        log_path.write_text("")

    kill_at = int(os.environ.get(KILL_ENV, "0") or 0)
    order_cache = {}
    method.train()
    t0 = time.perf_counter()
    steps_run = total
    with open(log_path, "a", encoding="utf-8") as log, \
            tqdm(total=total, initial=start, desc=f"train {method.config.method}", unit="step",
                 disable=None) as bar:
        for step in range(start, total):
            epoch, groups = step_batches(step, len(encoded), hp, per_epoch, order_cache)
            loss = 0.0
            for idx in groups:
                batch = to_device(collate([encoded[i] for i in idx], pad_id, method.encoder_decoder), device)
                # Mean over micro-batches of each one's loss (per target or per token: --loss).
                part = method.loss(batch, hp.loss) / len(groups)
                part.backward()
                loss += part.item()
            if hp.max_grad_norm:
                torch.nn.utils.clip_grad_norm_(params, hp.max_grad_norm)
            lr = scheduler.get_last_lr()[0]
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            row = {"step": step + 1, "epoch": epoch, "loss": loss, "lr": lr}
            stop = False
            if selection is not None and ((step + 1) % hp.eval_every == 0 or step + 1 == total):
                row["dev_loss"] = dev_loss(method, dev_batches)
                stop = selection.update(step + 1, row["dev_loss"], method)
            seconds = seconds_before + time.perf_counter() - t0
            row["seconds"] = round(seconds, 3)
            log.write(json.dumps(row) + "\n")
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
            if stop:
                steps_run = step + 1
                tqdm.write(f"{out}: stopped early at step {steps_run}: no lower dev loss in {hp.patience} "
                           f"evaluations (best {selection.best_loss:.4f} at step {selection.best_step})",
                           file=sys.stderr)
                break
            if hp.save_every and (step + 1) % hp.save_every == 0 and step + 1 < total:
                log.flush()
                save_checkpoint(ckpt, method, optimizer, scheduler, step + 1, seconds, loss, print_, selection)
            if kill_at and step + 1 == kill_at:
                log.flush()
                os.kill(os.getpid(), signal.SIGKILL)
    method.eval()
    seconds = seconds_before + time.perf_counter() - t0
    if selection is not None:
        selection.restore(method)  # the parameters with the lowest dev loss are the ones kept
        info.update(best_step=selection.best_step, best_dev_loss=selection.best_loss, dev_curve=selection.curve,
                    stopped_early=steps_run < total, dev_examples=len(dev))

    trained = sum(p.numel() for p in params)
    info.update(
        hparams=dataclasses.asdict(hp),
        device=str(device),
        train_examples=len(encoded),
        trainable_params_training=trained,  # during training (e.g. prefix MLP included)
        seconds=round(seconds, 3),
        steps=total,
        steps_run=steps_run,
        epochs_run=steps_run / per_epoch,
        final_loss=loss,
    )
    with atomic_dir(out) as tmp:
        meta = save_method(method, tmp, info)
        shutil.copyfile(log_path, tmp / "log.jsonl")
    shutil.rmtree(partial, ignore_errors=True)
    return meta


# ----- command line -----
def add_arguments(p):
    d = Hparams()
    p.add_argument("--model", required=True, help="tiny-gpt2, tiny-llama, tiny-bart, smollm2-135m, hub id or dir")
    p.add_argument("--method", required=True, help="prefix, embedding, infix, adapter, finetune, finetune-top2")
    p.add_argument("--train", required=True, type=Path, help="JSONL with 'source' and 'target' per line")
    p.add_argument("--out", required=True, type=Path, help="method directory to write")
    p.add_argument("--prefix-len", type=int, default=10, help="P, virtual tokens (prefix/embedding/infix)")
    p.add_argument("--mid-dim", type=int, default=512, help="hidden size of the reparametrization MLP")
    p.add_argument("--no-reparam", action="store_true", help="optimize the prefix directly (no MLP)")
    p.add_argument("--init-text", default=None, help="initialize the prefix from these real words")
    p.add_argument("--adapter-fraction", type=float, default=0.001, help="adapter size / base parameters")
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--max-steps", type=int, default=None, help="optimizer steps (wins over --epochs)")
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--grad-accum", type=int, default=d.grad_accum)
    p.add_argument("--warmup-steps", type=int, default=d.warmup_steps)
    p.add_argument("--weight-decay", type=float, default=d.weight_decay)
    p.add_argument("--max-grad-norm", type=float, default=d.max_grad_norm, help="0: no clipping")
    p.add_argument("--loss", choices=LOSSES, default=d.loss,
                   help="sequence: NLL summed over each target, mean over the batch (the paper's, and the "
                   "authors' objective_mode 1); token: mean over target tokens")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--save-every", type=int, default=d.save_every,
                   help="checkpoint into OUT.partial/ every N optimizer steps (0: never)")
    p.add_argument("--max-source-len", type=int, default=d.max_source_len)
    p.add_argument("--max-target-len", type=int, default=d.max_target_len)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--device", default=d.device, help="auto, cpu, cuda, cuda:1, ...")
    p.add_argument("--dev", type=Path, default=None,
                   help="JSONL dev set: keep the parameters with the lowest dev loss (needs --eval-every)")
    p.add_argument("--eval-every", type=int, default=d.eval_every, metavar="N",
                   help="dev loss every N optimizer steps and at the last step")
    p.add_argument("--patience", type=int, default=d.patience, metavar="K",
                   help="stop after K dev evaluations without a lower dev loss (default: never)")


def run(args):
    from .methods import MethodConfig, build, method_class
    from .models import load_model

    # Cheap checks first: bad input fails before any model is loaded, and leaves no OUT.
    method_class(args.method)
    if args.prefix_len <= 0:
        raise InputError(f"--prefix-len must be positive (got {args.prefix_len})")
    if args.mid_dim <= 0:
        raise InputError(f"--mid-dim must be positive (got {args.mid_dim})")
    if not 0 < args.adapter_fraction < 1:
        raise InputError(f"--adapter-fraction is a fraction of the base model's parameters, between 0 and 1 "
                         f"exclusive (got {args.adapter_fraction}; the paper's are 0.001 and 0.03)")
    if args.threads is not None:
        if args.threads <= 0:
            raise InputError(f"--threads must be positive (got {args.threads})")
        torch.set_num_threads(args.threads)
    hp = Hparams(**{f.name: getattr(args, f.name) for f in dataclasses.fields(Hparams)})
    hp.check(has_dev=args.dev is not None)
    resolve_device(hp.device)
    examples = read_examples(args.train)
    dev = read_examples(args.dev) if args.dev is not None else None
    config = MethodConfig(method=args.method, prefix_len=args.prefix_len, mid_dim=args.mid_dim,
                          reparam=not args.no_reparam, init_text=args.init_text,
                          adapter_fraction=args.adapter_fraction)
    try:
        model, tokenizer = load_model(args.model)
    except InputError as e:  # hub errors span several lines; the CLI promises one
        raise InputError(" ".join(str(e).split())) from None
    torch.manual_seed(hp.seed)  # the method's initialization depends on the seed only
    random.seed(hp.seed)
    method = build(model, tokenizer, config)
    info = {"model": args.model, "train_file": str(args.train)}
    if dev is not None:
        info["dev_file"] = str(args.dev)
    meta = train(method, examples, hp, args.out, info=info, dev=dev)
    print(f"wrote {args.out}: {meta['steps_run']} steps, final loss {meta['final_loss']:.4f}, "
          f"{meta['trainable_params']} parameters kept ({100 * meta['trainable_fraction']:.3f}% of the base)")
