"""Adapter-tuning baseline (the paper's ADAPTER rows, 0.1% and 3%), in two designs:

- `lin` (default; Lin et al. 2020, the design of the authors' code, `adapter_design=1` in their
  transformers/src/transformers/modeling_gpt2_adapter.py:261-284 and :365-415): ONE adapter per block, on the
  block's output after its feed-forward residual, with its own LayerNorm: `h + up(relu(down(LN(h))))`.
  Weights initialised as the authors' code gets them (GPT2PreTrainedModel._init_weights: N(0, 0.02), zero
  biases, LayerNorm 1/0), so the model does not start exactly at the base model.
- `houlsby` (Houlsby et al. 2019; the authors' `adapter_design=2` without its LayerNorm): two bottlenecks
  `h + up(relu(down(h)))` per block, after the attention output and after the feed-forward output, `up`
  zero-initialised (near-identity, as Houlsby et al. do): the wrapped model starts identical to the base.

Sites are the block outputs (lin) or the attention / feed-forward outputs (houlsby) of GPT-2 and Llama blocks
and BART encoder and decoder layers (for BART, where the authors' code has no adapters, "after attention" is
self-attention and "after feed-forward" fc2); adapters are inserted with forward hooks, so the transformers
code runs unchanged. Adapter weights stay >= float32. The bottleneck r is the integer >= 1 that puts the
trainable count (`adapter_count`) closest to `adapter_fraction` x base parameters. On GPT-2 medium (354.8M)
lin gives r = 6 for 0.1% (0.104%) and r = 215 for 3% (3.000%); on SmolLM2-135M r = 2 for 0.1%
(0.090%) and r = 115 for 3% (2.996%) (tests/test_methods.py computes all four from the architectures).

Hooks stay on the model for its lifetime: wrap a model with one Adapter only.
"""

import torch
from torch import nn

from .base import Method

DESIGNS = ("lin", "houlsby")
INIT_STD = 0.02  # GPT-2's initializer_range, which the authors' adapters get from _init_weights


class Bottleneck(nn.Module):
    def __init__(self, dim: int, size: int, design: str):
        super().__init__()
        self.norm = nn.LayerNorm(dim) if design == "lin" else None
        self.down = nn.Linear(dim, size)
        self.up = nn.Linear(size, dim)
        if design == "lin":
            for lin in (self.down, self.up):
                nn.init.normal_(lin.weight, std=INIT_STD)
                nn.init.zeros_(lin.bias)
        else:  # houlsby: PyTorch's default init for down, zero up
            nn.init.zeros_(self.up.weight)
            nn.init.zeros_(self.up.bias)

    def forward(self, h):  # computed in the adapter's (master, >= float32) dtype, added in the model's
        x = h.to(self.down.weight.dtype)
        if self.norm is not None:
            x = self.norm(x)
        return h + self.up(torch.relu(self.down(x))).to(h.dtype)


def _blocks(model) -> list[nn.Module]:
    base = model.base_model
    if hasattr(base, "h"):  # GPT-2
        return list(base.h)
    if hasattr(base, "layers"):  # Llama
        return list(base.layers)
    if hasattr(base, "encoder") and hasattr(base, "decoder"):  # BART
        return [*base.encoder.layers, *base.decoder.layers]
    raise TypeError(f"don't know where to put adapters in {type(model).__name__}")


def adapter_sites(model, design: str = "lin") -> list[nn.Module]:
    """The modules whose outputs get an adapter, in order: each block (lin), or [attention, feed-forward] per
    block (houlsby)."""
    blocks = _blocks(model)
    if design == "lin":
        return blocks
    if hasattr(blocks[0], "attn"):  # GPT-2
        return [m for b in blocks for m in (b.attn, b.mlp)]
    if hasattr(blocks[0], "mlp"):  # Llama
        return [m for b in blocks for m in (b.self_attn, b.mlp)]
    return [m for b in blocks for m in (b.self_attn, b.fc2)]  # BART


def adapter_count(sites: int, dim: int, size: int, design: str = "lin") -> int:
    """Trainable parameters of `sites` bottlenecks of width `size` on hidden size `dim` (lin adds a LayerNorm)."""
    return sites * (size * (2 * dim + 1) + dim + (2 * dim if design == "lin" else 0))


def bottleneck_size(base_params: int, sites: int, dim: int, fraction: float, design: str = "lin") -> int:
    """The r >= 1 whose `adapter_count` is closest to fraction x base_params (it is linear in r)."""
    fixed = adapter_count(sites, dim, 0, design) / sites
    return max(1, round((fraction * base_params / sites - fixed) / (2 * dim + 1)))


def _hook(adapter):
    def hook(module, args, output):
        if isinstance(output, tuple):  # attention modules (and older blocks) return (hidden, ...)
            return (adapter(output[0]), *output[1:])
        return adapter(output)

    return hook


class Adapter(Method):
    """Bottleneck adapters; exported tensors are the adapter weights only (`adapters.I.down.weight`, ...)."""

    name = "adapter"

    def __init__(self, model, tokenizer, config):
        super().__init__(model, tokenizer, config)
        design = config.adapter_design
        if design not in DESIGNS:
            raise ValueError(f"adapter_design must be one of {DESIGNS}, got {design!r}")
        sites = adapter_sites(model, design)
        dim = model.config.hidden_size
        self.size = bottleneck_size(self.base_parameters(), len(sites), dim, config.adapter_fraction, design)
        like = model.get_input_embeddings().weight  # trainable weights stay >= float32, as in prefix.py
        self.adapters = nn.ModuleList(Bottleneck(dim, self.size, design) for _ in sites).to(
            like.device, torch.promote_types(like.dtype, torch.float32))
        self._handles = [m.register_forward_hook(_hook(a)) for m, a in zip(sites, self.adapters)]

    def exported(self):
        return {f"adapters.{k}": v.detach() for k, v in self.adapters.state_dict().items()}

    def load_exported(self, tensors):
        self.adapters.load_state_dict({k.removeprefix("adapters."): v for k, v in tensors.items()})
