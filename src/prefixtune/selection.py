"""Model selection on a dev set (`prefixtune train --dev FILE --eval-every N [--eval-every-alt M]
[--patience K]`, the paper's Appendix A: early stopping on dev): the dev loss, and for each selection rule the
best parameters so far, its dev curve and its stop rule.

A rule is "evaluate every N optimizer steps (and at the last step), keep the lowest dev loss". One training
can serve two rules (`primary`: --eval-every, whose parameters are the run's weights; `alt`: --eval-every-alt,
kept beside them), so that a reader sees whether a result depends on how often the dev loss was looked at;
evaluating more often never changes the training itself (eval mode draws no random numbers).
"""

import torch

from .batching import IGNORE


def trainable_named(method) -> dict:
    return {n: p for n, p in method.named_parameters() if p.requires_grad}


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
    """One selection rule: dev loss every `every` steps and at the last one; the best parameters so far,
    the curve, early stopping after `patience` evaluations without a lower dev loss (None: never)."""

    def __init__(self, every: int, patience=None):
        self.every, self.patience, self.curve, self.bad = every, patience, [], 0  # bad: evaluations since the best
        self.best_loss = self.best_step = self.best = None

    def due(self, step: int, total: int) -> bool:
        """Whether this rule looks at the dev loss after optimizer step `step` (1-based) of `total`."""
        return step % self.every == 0 or step == total

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

    def summary(self) -> dict:
        return {"eval_every": self.every, "best_step": self.best_step, "best_dev_loss": self.best_loss,
                "dev_curve": self.curve}


def rules(eval_every: int, eval_every_alt: int = 0, patience=None) -> dict:
    """{name: Selection} for a run with dev examples: `primary` (with the patience), and `alt` when asked."""
    out = {"primary": Selection(eval_every, patience)}
    if eval_every_alt:
        out["alt"] = Selection(eval_every_alt)
    return out
