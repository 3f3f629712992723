"""Every method of the paper behind one interface (see `base.Method`).

`METHODS` maps a CLI name to its class; `build(model, tokenizer, config)` makes one.
"""

import importlib

from ..errors import InputError
from ..registry import (
    METHODS,  # name -> Traits (class path, traits); imported on demand
)


def method_class(name: str):
    if name not in METHODS:
        raise InputError(f"unknown method '{name}' (choose from {', '.join(METHODS)})")
    module, cls = METHODS[name].path.split(":")
    return getattr(importlib.import_module(module), cls)


def build(model, tokenizer, config):
    """Wrap `model` (frozen) with the method that `config.method` names (a `base.Method`)."""
    return method_class(config.method)(model, tokenizer, config)


def __getattr__(name):
    """Method, MethodConfig and DecodeState load torch and transformers: only when asked for, so that the
    registry (methods.registry, no torch) is cheap to read for the grid and the plots."""
    if name == "MethodConfig":
        from .config import MethodConfig

        return MethodConfig
    if name == "DecodeState":
        from ..decoding.cache import DecodeState

        return DecodeState
    if name == "Method":
        from .base import Method

        return Method
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["METHODS", "Method", "MethodConfig", "DecodeState", "build", "method_class"]
