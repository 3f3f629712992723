"""Resuming an interrupted training run: the checkpoint in OUT.partial/ (trainable tensors, optimizer,
scheduler, RNG states, step, the dev selection so far), its fingerprint, and the log it left.

On the CPU a resumed run ends with tensors bit-identical to those of an uninterrupted one: the example
order is a pure function of (seed, epoch), and the RNG states are restored.
"""

import hashlib
import json
import random
from dataclasses import asdict
from pathlib import Path

import torch

from .errors import InputError
from .files import atomic_path
from .selection import trainable_named


def fingerprint(method, examples, hp, info: dict, dev=()) -> str:
    """What must match for a checkpoint to resume this run (not save_every or device)."""
    h = hashlib.sha256()
    hp_dict = {k: v for k, v in asdict(hp).items() if k not in ("save_every", "device", "threads")}
    h.update(json.dumps([info.get("model"), method.config.to_dict(), hp_dict], sort_keys=True).encode())
    for source, target in examples:
        h.update(json.dumps([source, target]).encode())
    for source, target in dev:
        h.update(json.dumps(["dev", source, target]).encode())
    return h.hexdigest()


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


def save_checkpoint(path: Path, method, optimizer, scheduler, step, loss, print_=None, selections=None):
    state = {
        "selections": {name: s.state() for name, s in (selections or {}).items()},
        "step": step,
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
