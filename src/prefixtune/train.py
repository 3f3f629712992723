"""`prefixtune train`: one training loop for every method.

AdamW over `method.trainable_parameters()`, linear warm-up then linear decay
(`transformers.get_linear_schedule_with_warmup`), gradient accumulation, gradient clipping,
loss on target tokens only (the `batching.collate` layout).

Output (written by `train(method, examples, hparams, out_dir)`):
    OUT/                  appears only when training completes (`files.atomic_dir`):
        weights.safetensors, method.json   (see `prefixtune.method_dir`)
        log.jsonl          one line per optimizer step: step, epoch, loss (the objective), token_loss (the
                           same per target token: dev_loss's scale), lr (and dev_loss)
    No wall-clock time in OUT (the same run writes the same bytes); `prefixtune train` records it in
    OUT.run.json (cli.py).
    OUT.partial/          exists only while training runs or after it was interrupted:
        checkpoint.pt      trainable tensors, optimizer, scheduler, RNG states, step (every
                           --save-every optimizer steps, written atomically)
        log.jsonl          the log so far
Running the same command again with the same --out resumes from OUT.partial/checkpoint.pt;
on the CPU the final tensors are bit-identical to those of an uninterrupted run.

Model selection on dev (`--dev FILE --eval-every N [--patience K]`, the paper's Appendix A: early
stopping on a dev set): the dev loss (the training objective, per target token over the whole dev set,
dropout off) every N optimizer steps and at the last step, logged as `dev_loss` in that step's log row;
the parameters with the lowest dev loss are the ones saved (`--select-by rouge2`: the highest ROUGE-2 of the
dev set decoded, logged as `dev_rouge2`); K evaluations without a new best stop the run. method.json records best_step, best_dev_loss, dev_curve, stopped_early and steps_run. The
checkpoint holds the best parameters and the curve, so a resumed run ends exactly where an uninterrupted
one does.

Reproducibility: the order of examples in epoch e is `randperm` of a torch.Generator seeded
with (seed, e), so optimizer step s always sees the same examples: the sampler position is
just the step. Dropout draws from the global torch RNG, whose state the checkpoint keeps.
"""

import dataclasses
import json
import random
import shutil
import sys
from pathlib import Path

import torch

from .configs import SelectConfig, TrainConfig, from_args
from .configs import add_arguments as add_config_arguments
from .errors import InputError, where
from .batching import IGNORE, Limits, collate, encode_pair, with_source_prefix
from .files import atomic_dir, atomic_path, read_jsonl
from .methods.config import CONFIGS as METHOD_CONFIGS
from .methods.config import method_config, own_fields
from .models import resolve_device
from .progress import Progress
from .registry import METHODS
from .resume import fingerprint, load_checkpoint, read_log, save_checkpoint
from .schedule import autocast, make_optimizer, plan, step_batches, to_device
from .selection import dev_loss, dev_rouge2, rules, selected  # noqa: F401 (dev_loss: part of this module's interface)


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


def _pairs(items) -> list[tuple[str, str]]:
    """(source, target) pairs from pairs or from {"source", "target"} dicts."""
    return [(e["source"], e["target"]) if isinstance(e, dict) else tuple(e) for e in items]


def train(method, examples, hparams: TrainConfig, out_dir, info: dict | None = None, dev=None,
          select: SelectConfig | None = None) -> dict:
    """Train `method` on `examples` ((source, target) text pairs); write OUT and return its method.json dict
    (see the module doc). With `dev` pairs and `hparams.eval_every`: model selection on dev (`select`: the dev
    loss by default, or ROUGE-2 of a decode of the dev set), the first rule's best parameters saved, the
    second rule's as alt.safetensors (method_dir). `info` is added to method.json (`info["model"]` names the
    base model for `load_method`; default: the model's `name_or_path`). Seed the RNG before building the
    method (as `run` does) for a reproducible initialization. The method is left trained (with the first
    rule's parameters), in eval mode, on the device it trained on."""
    hp, select = hparams, select or SelectConfig()
    examples, dev = _pairs(examples), _pairs(dev or [])
    hp.check(has_dev=bool(dev))
    select.check(has_dev=bool(dev))
    if not examples:
        raise InputError("no training examples")
    out = Path(out_dir)
    info = dict(info or {})
    info.setdefault("model", method.model.config.name_or_path)
    if select != SelectConfig():  # a dev-loss run's method.json is as before SelectConfig existed
        info["select"] = dataclasses.asdict(select)
    device = resolve_device(hp.device)
    limits = Limits(hp.max_source_len, hp.max_target_len)
    encoded = [encode_pair(method.tokenizer, s, t, method.encoder_decoder, limits) for s, t in examples]
    dev_batches = _batches(method, dev, hp.batch_size, limits, device)
    key = "dev_loss" if select.select_by == "dev_loss" else f"dev_{select.select_by}"
    selections = rules(hp.eval_every, hp.eval_every_alt, hp.patience, key) if dev else {}

    method.to(device)
    params = method.trainable_parameters()
    if not params:
        raise InputError(f"method '{method.config.method}' has no trainable parameters")
    per_epoch, total = plan(len(encoded), hp)
    optimizer, scheduler = make_optimizer(params, hp, total)
    torch.manual_seed(hp.seed)
    random.seed(hp.seed)
    run = _Run(out, fingerprint(method, examples, hp, info, dev), method, optimizer, scheduler, selections)
    start, loss = run.resume(total)

    order_cache, steps_run = {}, total
    method.train()
    with open(run.log_path, "a", encoding="utf-8") as log, \
            Progress(total, f"train {method.config.method}", "step", initial=start) as progress:
        for step in range(start, total):
            epoch, groups = step_batches(step, len(encoded), hp, per_epoch, order_cache)
            row = {"step": step + 1, "epoch": epoch, **_step(method, encoded, groups, hp, device)}
            loss = row["loss"]
            if hp.max_grad_norm:
                torch.nn.utils.clip_grad_norm_(params, hp.max_grad_norm)
            row["lr"] = scheduler.get_last_lr()[0]
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            due = [s for s in selections.values() if s.due(step + 1, total)]
            if due:
                with autocast(device, hp.dtype):
                    row["dev_loss"] = dev_loss(method, dev_batches)
                    if key == "dev_rouge2":
                        row["dev_rouge2"] = dev_rouge2(method, dev, select, limits)
            stop = any([s.update(step + 1, row, method) for s in due])  # noqa: C419 (update every rule)
            log.write(json.dumps(row) + "\n")
            progress.update(1, _note(row, selections.get("primary")), force=bool(due))
            if stop:
                steps_run = step + 1
                best = selections["primary"]
                progress.line(f"stopped early at step {steps_run}: no lower dev loss in {hp.patience} "
                              f"evaluations (best {best.best_loss:.4f} at step {best.best_step})")
                break
            if hp.save_every and (step + 1) % hp.save_every == 0 and step + 1 < total:
                log.flush()
                run.save(step + 1, loss)
    method.eval()
    info.update(selected(selections, steps_run < total, len(dev)))
    info.update(hparams=dataclasses.asdict(hp), device=str(device), train_examples=len(encoded),
                trainable_params_training=sum(p.numel() for p in params),  # during training (e.g. the prefix MLP)
                steps=total, steps_run=steps_run, epochs_run=steps_run / per_epoch, final_loss=loss)
    return run.finish(info)


def _batches(method, pairs, batch_size, limits, device) -> list[dict]:
    """Dev pairs as model batches, in order."""
    pad_id = method.tokenizer.pad_token_id
    encoded = [encode_pair(method.tokenizer, s, t, method.encoder_decoder, limits) for s, t in pairs]
    return [to_device(collate(encoded[i:i + batch_size], pad_id, method.encoder_decoder), device)
            for i in range(0, len(encoded), batch_size)]


def _step(method, encoded, groups, hp: TrainConfig, device) -> dict:
    """Forward and backward over one optimizer step's micro-batches: its loss (the objective, mean over
    micro-batches) and the same per target token (dev_loss's scale, for the log)."""
    loss, nll, tokens = 0.0, 0.0, 0
    for idx in groups:
        batch = to_device(collate([encoded[i] for i in idx], method.tokenizer.pad_token_id,
                                  method.encoder_decoder), device)
        with autocast(device, hp.dtype):
            part = method.loss(batch, hp.loss) / len(groups)
        part.backward()
        loss += part.item()
        n = int((batch["labels"] != IGNORE).sum())
        nll += part.item() * len(groups) * (len(idx) if hp.loss == "sequence" else n)
        tokens += n
    return {"loss": loss, "token_loss": nll / tokens}


def _note(row: dict, primary) -> str:
    note = f"loss {row['loss']:.4f}"
    if "dev_loss" in row:
        note += f"  dev {row['dev_loss']:.4f}" + (f"  ROUGE-2 {row['dev_rouge2']:.2f}" if "dev_rouge2" in row else "")
        if primary is not None and primary.best_step is not None:
            note += f" (best {primary.best_loss:.4f} at {primary.best_step})"
    return note


class _Run:
    """OUT.partial/ (checkpoint and log while training runs) and OUT (written when it completes)."""

    def __init__(self, out: Path, print_, method, optimizer, scheduler, selections):
        self.out, self.print_, self.method = out, print_, method
        self.optimizer, self.scheduler, self.selections = optimizer, scheduler, selections
        self.partial = out.with_name(out.name + ".partial")
        self.ckpt, self.log_path = self.partial / "checkpoint.pt", self.partial / "log.jsonl"

    def resume(self, total) -> tuple[int, float]:
        """(first step, loss so far): from the checkpoint, or (0, nan) in a fresh partial folder."""
        if not self.ckpt.is_file():
            if self.partial.exists():
                shutil.rmtree(self.partial)
            self.partial.mkdir(parents=True)
            self.log_path.write_text("")
            return 0, float("nan")
        state = load_checkpoint(self.ckpt, self.method, self.optimizer, self.scheduler, self.print_)
        for name, s in self.selections.items():
            s.load(state["selections"][name])
        rows = read_log(self.log_path)
        with atomic_path(self.log_path) as tmp:  # drop what the interrupted run logged after its checkpoint
            tmp.write_text("".join(json.dumps(r) + "\n" for r in rows if r["step"] <= state["step"]))
        print(f"{self.out}: resumed from step {state['step']} of {total} ({self.ckpt})", file=sys.stderr)
        return state["step"], state["loss"]

    def save(self, step, loss):
        save_checkpoint(self.ckpt, self.method, self.optimizer, self.scheduler, step, loss, self.print_,
                        self.selections)

    def finish(self, info: dict) -> dict:
        """Write OUT atomically: the second rule's parameters (when they differ), then the first rule's with
        method.json and the log; remove OUT.partial."""
        from .method_dir import ALT_WEIGHTS, save_method, save_weights

        with atomic_dir(self.out) as tmp:
            alt = self.selections.get("alt")
            if alt is not None and info["alt"]["weights"]:
                alt.restore(self.method)
                save_weights(self.method, tmp / ALT_WEIGHTS)
            if self.selections:
                self.selections["primary"].restore(self.method)  # the lowest dev loss: the parameters kept
            meta = save_method(self.method, tmp, info)
            shutil.copyfile(self.log_path, tmp / "log.jsonl")
        shutil.rmtree(self.partial, ignore_errors=True)
        return meta


# ----- command line -----
def add_arguments(p):
    p.add_argument("--model", required=True, help="tiny-gpt2, tiny-llama, tiny-bart, smollm2-135m, hub id or dir")
    p.add_argument("--method", required=True, help=f"the method to train: {', '.join(METHODS)}")
    p.add_argument("--train", required=True, type=Path, help="JSONL with 'source' and 'target' per line")
    p.add_argument("--out", required=True, type=Path, help="method directory to write")
    p.add_argument("--dev", type=Path, default=None,
                   help="JSONL dev set: keep the parameters with the lowest dev loss (needs --eval-every)")
    for cls in METHOD_CONFIGS:  # every method's own settings; run() refuses those the chosen method lacks
        add_config_arguments(p, cls, skip=("method", "extra"))
    add_config_arguments(p, TrainConfig)
    add_config_arguments(p, SelectConfig)


def run(args):
    from .methods import build, method_class
    from .models import load_model

    # Cheap checks first: bad input fails before any model is loaded, and leaves no OUT.
    method_class(args.method)
    config = method_config(args.method, **{f.name: getattr(args, f.name) for cls in METHOD_CONFIGS
                                           for f in own_fields(cls) if getattr(args, f.name) != f.default})
    config.check()
    hp, select = from_args(TrainConfig, args), from_args(SelectConfig, args)
    hp.check(has_dev=args.dev is not None)
    select.check(has_dev=args.dev is not None)
    if hp.threads is not None:
        torch.set_num_threads(hp.threads)
    resolve_device(hp.device)
    prefix = hp.source_prefix
    examples = [(with_source_prefix(s, prefix), t) for s, t in read_examples(args.train)]
    dev = [(with_source_prefix(s, prefix), t) for s, t in read_examples(args.dev)] if args.dev is not None else None
    try:
        model, tokenizer = load_model(args.model)
    except InputError as e:  # hub errors span several lines; the CLI promises one
        raise InputError(" ".join(str(e).split())) from None
    torch.manual_seed(hp.seed)  # the method's initialization depends on the seed only
    random.seed(hp.seed)
    method = build(model, tokenizer, config)
    info = {"model": args.model, "train_file": str(args.train), "source_prefix": prefix}
    if dev is not None:
        info["dev_file"] = str(args.dev)
    meta = train(method, examples, hp, args.out, info=info, dev=dev, select=select)
    print(f"wrote {args.out}: {meta['steps_run']} steps, final loss {meta['final_loss']:.4f}, "
          f"{meta['trainable_params']} parameters kept ({100 * meta['trainable_fraction']:.3f}% of the base)")
