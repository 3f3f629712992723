"""Model selection on a dev set (`prefixtune train --dev FILE --eval-every N [--eval-every-alt M]
[--patience K]`, the paper's Appendix A: early stopping on dev): the dev loss, and for each selection rule the
best parameters so far, its dev curve and its stop rule.

A rule is "evaluate every N optimizer steps (and at the last step), keep the lowest dev loss" (or, with
`--select-by rouge2`, the highest ROUGE-2 of the dev set decoded: `dev_rouge2`). One training can serve two rules (`primary`: --eval-every, whose parameters are the run's weights; `alt`: --eval-every-alt,
kept beside them), so that a reader sees whether a result depends on how often the dev loss was looked at;
evaluating more often never changes the training itself (eval mode draws no random numbers).
"""

import torch

from .batching import IGNORE


def trainable_named(method) -> dict:
    return {n: p for n, p in method.named_parameters() if p.requires_grad}


def dev_rouge2(method, pairs, select, limits) -> float:
    """ROUGE-2 F x100 (rouge-score, stemmed; the mean over inputs, metrics/rouge.py) of the dev sources decoded
    by beam search with `select`'s settings (configs.SelectConfig), against each dev target. The authors average
    per-batch bootstrap estimates instead (seq2seq/utils.py:382-394, finetune.py:217-219@7544769), which differs
    from this mean by rounding and batch weighting, not in what it ranks. Decoding draws no random numbers."""
    from .decoding.search import decode
    from .metrics.rouge import corpus_rouge

    was_training = method.training
    hyps = decode([method], [s for s, _ in pairs], limits=limits, progress=False, **select.decode_kwargs())
    method.train(was_training)
    return corpus_rouge(hyps, [[t] for _, t in pairs])["rouge2"]


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
    """One selection rule: a dev number (`key`: dev_loss, lower is better; dev_rouge2, higher) every `every` steps
    and at the last one; the best parameters so far, the curve, early stopping after `patience` evaluations
    without a better number (None: never). `best_loss` holds the best number, whichever it is."""

    def __init__(self, every: int, patience=None, key="dev_loss"):
        self.every, self.patience, self.curve, self.bad = every, patience, [], 0  # bad: evaluations since the best
        self.key, self.higher = key, key != "dev_loss"
        self.best_loss = self.best_step = self.best = None

    def due(self, step: int, total: int) -> bool:
        """Whether this rule looks at the dev loss after optimizer step `step` (1-based) of `total`."""
        return step % self.every == 0 or step == total

    def update(self, step, row: dict, method) -> bool:
        """Record the dev numbers of optimizer step `step` (`row`: dev_loss, and dev_rouge2 when it is the key);
        True when training should stop."""
        self.curve.append({"step": step, **{k: row[k] for k in ("dev_loss", "dev_rouge2") if k in row}})
        value = row[self.key]
        if self.best_loss is None or (value > self.best_loss if self.higher else value < self.best_loss):
            self.best_loss, self.best_step, self.bad = value, step, 0
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

    def summary(self) -> dict:
        out = {"eval_every": self.every, "best_step": self.best_step, "best_dev_loss": self.best_loss}
        if self.higher:  # the dev loss at the kept step stays `best_dev_loss` (what reports read)
            out = {**out, f"best_{self.key}": self.best_loss, "best_dev_loss": self.at_best("dev_loss")}
        return {**out, "dev_curve": self.curve}

    def at_best(self, key):
        """The curve's `key` at the kept step."""
        return next(c[key] for c in self.curve if c["step"] == self.best_step)


def rules(eval_every: int, eval_every_alt: int = 0, patience=None, key="dev_loss") -> dict:
    """{name: Selection} for a run with dev examples: `primary` (with the patience), and `alt` when asked."""
    out = {"primary": Selection(eval_every, patience, key)}
    if eval_every_alt:
        out["alt"] = Selection(eval_every_alt, key=key)
    return out


def selected(selections: dict, stopped_early: bool, dev_examples: int) -> dict:
    """What method.json records of the selection: the first rule's best step, loss and curve (the curve of
    every dev evaluation), and the second rule's under `alt`; the method keeps the first rule's parameters.
    With ROUGE-2 as the key: `select_by`, `best_dev_rouge2`, and `best_dev_loss` at the kept step."""
    if not selections:
        return {}
    primary, alt = selections["primary"], selections.get("alt")
    curve = {c["step"]: c for s in selections.values() for c in s.curve}
    best = primary.summary()
    out = {"best_step": primary.best_step, "best_dev_loss": best["best_dev_loss"],
           "dev_curve": [curve[k] for k in sorted(curve)], "stopped_early": stopped_early,
           "dev_examples": dev_examples, "eval_every": primary.every}
    if primary.higher:
        out = {"select_by": primary.key.removeprefix("dev_"), f"best_{primary.key}": primary.best_loss, **out}
    if alt is not None:
        out["alt"] = {**alt.summary(), "weights": alt.best_step != primary.best_step}
        del out["alt"]["dev_curve"]
    return out
