"""Every method of the paper behind one interface (see `base.Method`).

`METHODS` maps a CLI name to its class; `build(model, tokenizer, config)` makes one.
"""

import importlib

from ..errors import InputError
from .base import DecodeState, Method, MethodConfig

# name -> "module:Class"; imported on demand so one method's bug cannot break the others.
METHODS = {
    "prefix": "prefixtune.methods.prefix:Prefix",
    "embedding": "prefixtune.methods.embedding:Embedding",
    "infix": "prefixtune.methods.infix:Infix",
    "adapter": "prefixtune.methods.adapter:Adapter",
    "finetune": "prefixtune.methods.finetune:Finetune",
    "finetune-top2": "prefixtune.methods.finetune:FinetuneTop2",
}


def method_class(name: str):
    if name not in METHODS:
        raise InputError(f"unknown method '{name}' (choose from {', '.join(METHODS)})")
    module, cls = METHODS[name].split(":")
    return getattr(importlib.import_module(module), cls)


def build(model, tokenizer, config: MethodConfig) -> Method:
    """Wrap `model` (frozen) with the method that `config.method` names."""
    return method_class(config.method)(model, tokenizer, config)


__all__ = ["METHODS", "Method", "MethodConfig", "DecodeState", "build", "method_class"]
