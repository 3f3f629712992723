"""The methods' configs: what defines a method's trainable part, saved next to its tensors (method.json).

One class per kind of method, as PEFT's tuner configs (PrefixTuningConfig, LoraConfig) each hold their own
method's fields; `prefixtune train` takes every field as a flag (configs.add_arguments) and refuses one that the
chosen method does not take. The registry (registry.py, `Traits.config`) says which class a method uses.

    MethodConfig         the base: the method's name (fine-tuning and FT-top2 take nothing else)
    VirtualTokenConfig   prefix, embedding-only, infix: P, the reparametrization MLP, the init text
    AdapterConfig        adapters: their size and design
"""

import dataclasses
import importlib
from dataclasses import asdict, dataclass, field

from ..configs import flag, positive, setting
from ..errors import InputError


@dataclass
class MethodConfig:
    """The base of every method's config."""

    method: str
    extra: dict = field(default_factory=dict)  # free settings of a user's own method

    def check(self):
        """InputError for values no run can use."""

    def to_dict(self):
        return asdict(self)


@dataclass
class VirtualTokenConfig(MethodConfig):
    """Methods that train P virtual positions: prefix-tuning, embedding-only, infix."""

    prefix_len: int | None = setting(None, "P, virtual tokens; default: the init text's token count, else 10")
    mid_dim: int = setting(512, "hidden size of the reparametrization MLP (the paper: 512; XSum 800)")
    reparam: bool = setting(True, "train P through the MLP, P = MLP(P') (the paper); --no-reparam optimizes P "
                            "directly")
    init_text: str | None = setting(None, "initialize the prefix from the model's activations on these real words")

    def __post_init__(self):
        if self.prefix_len is None and not self.init_text:
            self.prefix_len = 10

    def check(self):
        if self.prefix_len is not None:
            positive(self, "prefix_len")
        positive(self, "mid_dim")


@dataclass
class AdapterConfig(MethodConfig):
    """Adapters (Lin et al. 2020; Houlsby et al. 2019), sized as a fraction of the base model."""

    adapter_fraction: float = setting(0.001, "adapter size as a fraction of the base model's parameters (the "
                                      "paper's 0.1% and 3%)")
    adapter_design: str = setting("lin", "lin: one adapter with LayerNorm after each block (Lin et al. 2020, as "
                                  "the authors' code); houlsby: two per block, after attention and after the "
                                  "feed-forward", choices=("lin", "houlsby"))

    def check(self):
        if not 0 < self.adapter_fraction < 1:
            raise InputError(f"--adapter-fraction is a fraction of the base model's parameters, between 0 and 1 "
                             f"exclusive (got {self.adapter_fraction}; the paper's are 0.001 and 0.03)")


CONFIGS = (VirtualTokenConfig, AdapterConfig)  # the subclasses with fields of their own (train's flags)


def own_fields(cls) -> list:
    """The fields `cls` adds to MethodConfig."""
    base = {f.name for f in dataclasses.fields(MethodConfig)}
    return [f for f in dataclasses.fields(cls) if f.name not in base]


def config_class(method: str) -> type:
    """The config class of a registered method (registry.py: Traits.config)."""
    from ..registry import METHODS

    if method not in METHODS:
        raise InputError(f"unknown method '{method}' (choose from {', '.join(METHODS)})")
    module, name = METHODS[method].config.split(":")
    return getattr(importlib.import_module(module), name)


def method_config(method: str, **settings) -> MethodConfig:
    """The config of `method` with `settings`; InputError naming a setting that the method does not take."""
    cls = config_class(method)
    taken = {f.name for f in own_fields(cls)}
    wrong = [k for k in settings if k not in taken]
    if wrong:
        takes = ", ".join(f"--{flag(n)}" for n in sorted(taken)) or "no settings of its own"
        raise InputError(f"method '{method}' does not take --{flag(wrong[0])} (it takes {takes})")
    return cls(method, **settings)


def from_dict(values: dict) -> MethodConfig:
    """The config that method.json's `config` holds. Earlier versions saved every method's fields on every
    method (one MethodConfig for all); those of another method's class are dropped, anything else is a
    ValueError."""
    if not isinstance(values.get("method"), str):
        raise ValueError("no 'method' name")
    cls = config_class(values["method"])
    known = {f.name for f in dataclasses.fields(cls)}
    elsewhere = {f.name for c in CONFIGS for f in own_fields(c)}
    unknown = sorted(set(values) - known - elsewhere)
    if unknown:
        raise ValueError(f"unknown setting '{unknown[0]}' for method '{values['method']}'")
    return cls(**{k: v for k, v in values.items() if k in known})


def applicable(method: str, settings: dict) -> dict:
    """The part of `settings` that `method` takes (a sweep over methods with one set of settings)."""
    taken = {f.name for f in own_fields(config_class(method))}
    return {k: v for k, v in settings.items() if k in taken}
