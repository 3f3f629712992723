"""The trained-method directory: the only reader and writer of its format.

    DIR/method.json           base model name (`model`), the MethodConfig dict (`config`),
                              `trainable_params` (= method.num_exported()), `base_params`,
                              `trainable_fraction`, plus whatever the trainer adds (training
                              hyper-parameters, seconds, steps, final loss, ...)
    DIR/weights.safetensors   method.exported(): only the tensors the method keeps
    DIR/alt.safetensors       the same for the second selection rule (`alt` in method.json, `train
                              --eval-every-alt`), only when it kept another step than the first

`save_method(method, dir, info)` writes both files (each atomically; `prefixtune train` wraps the
whole directory in `files.atomic_dir`). `load_method(dir)` rebuilds the base model named in
method.json, wraps it with the method and loads the tensors; bad directories raise InputError
naming the file.
"""

from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .errors import InputError, where
from .files import atomic_path, read_json_object, write_json
from .methods import Method, build
from .methods.config import from_dict as config_from_dict

META = "method.json"
WEIGHTS = "weights.safetensors"
ALT_WEIGHTS = "alt.safetensors"
SELECTIONS = ("primary", "alt")


def save_weights(method: Method, path) -> int:
    """method.exported() into one safetensors file (atomically); returns the number of values kept."""
    # contiguous CPU copies: safetensors refuses views and shared storage (tied weights).
    tensors = {n: t.detach().to("cpu", copy=True).contiguous() for n, t in method.exported().items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp))  # no metadata: method.json holds it (dict order made bytes differ)
    return sum(t.numel() for t in tensors.values())


def save_method(method: Method, dir, info: dict) -> dict:
    """Write `method` into `dir` (created if needed); return the method.json dict written.

    `info` must name the base model (`info["model"]`, what `load_model` accepts); its other keys
    are stored as they are. The keys this function computes (config, parameter counts) win.
    """
    dir = Path(dir)
    if "model" not in info:
        raise ValueError("save_method: info must name the base model ('model')")
    dir.mkdir(parents=True, exist_ok=True)
    kept = save_weights(method, dir / WEIGHTS)
    base = method.base_parameters()
    meta = dict(info)
    meta.update(
        method=method.config.method,
        config=method.config.to_dict(),
        trainable_params=kept,
        base_params=base,
        trainable_fraction=kept / base,
    )
    write_json(dir / META, meta)
    return meta


def read_info(dir) -> dict:
    """The method.json of a trained-method directory (InputError naming the file if unusable)."""
    path = Path(dir) / META
    if not Path(dir).is_dir():
        raise InputError(f"{dir}: no such method directory")
    info = read_json_object(path, "no such file (not a trained-method directory?)")
    for key in ("model", "config"):
        if key not in info:
            raise InputError(f"{where(path, entry=key)}: missing")
    if not isinstance(info["config"], dict):
        raise InputError(f"{where(path, entry='config')}: expected an object")
    return info


def weights_file(dir, selection: str = "primary") -> Path:
    """The weights of one selection rule: weights.safetensors, or alt.safetensors when the second rule
    (method.json `alt`) kept another step; InputError when the directory has no second rule."""
    dir = Path(dir)
    if selection == "primary":
        return dir / WEIGHTS
    alt = read_info(dir).get("alt")
    if not isinstance(alt, dict):
        raise InputError(f"{where(dir / META, entry='alt')}: missing (trained without --eval-every-alt)")
    return dir / ALT_WEIGHTS if alt.get("weights") else dir / WEIGHTS


def load_method(dir, model=None, tokenizer=None, selection: str = "primary") -> Method:
    """Rebuild the method saved in `dir`, in eval mode on the CPU (`selection` alt: the second rule's
    parameters, see weights_file).

    The base model named in method.json is loaded with `load_model` unless `model` and
    `tokenizer` are given (then they must be that same base model, unmodified).
    """
    dir = Path(dir)
    info = read_info(dir)
    meta = dir / META
    try:
        config = config_from_dict(info["config"])
    except (TypeError, ValueError) as e:
        raise InputError(f"{where(meta, entry='config')}: {e}") from None
    weights = weights_file(dir, selection)
    if not weights.is_file():
        raise InputError(f"{weights}: no such file")
    try:
        tensors = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as e:
        raise InputError(f"{weights}: unreadable safetensors file ({e})") from None
    if model is None:
        from .models import load_model

        model, tokenizer = load_model(info["model"])
    elif tokenizer is None:
        raise ValueError("load_method: give the tokenizer along with the model")
    # Building may draw random numbers (fresh initializations that load_exported overwrites):
    # keep the caller's RNG stream as it was.
    with torch.random.fork_rng(devices=[]):
        method = build(model, tokenizer, config)
    try:
        method.load_exported(tensors)
    except (KeyError, RuntimeError, ValueError) as e:
        raise InputError(f"{weights}: does not fit method '{config.method}' on '{info['model']}' ({e})") from None
    return method.eval()
