"""Model selection on a dev set (`prefixtune train --dev FILE --eval-every N [--patience K]`, the paper's
Appendix A: early stopping on dev): the dev loss, the best parameters so far, the curve, the stop rule."""

import torch

from .examples import IGNORE


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
