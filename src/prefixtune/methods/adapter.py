"""Adapter-tuning baseline (Houlsby et al. 2019; the paper's ADAPTER rows, 0.1% and 3%).

A bottleneck `h + up(relu(down(h)))` after the attention output and after the feed-forward
output of every layer (GPT-2 and Llama blocks; BART encoder and decoder layers, where "after
attention" is self-attention and "after feed-forward" is fc2), inserted with forward hooks on
those modules, so the transformers code runs unchanged. Adapter weights stay >= float32. `up`
starts at zero: the wrapped model starts identical to the base. The bottleneck size r is the
integer >= 1 that puts the trainable count `sites * (r * (2 * hidden + 1) + hidden)` closest to
`adapter_fraction` x base parameters (on SmolLM2-135M one unit of r is 0.051% of the model, so
0.1% is met as r=1, 0.077%; 3% as r=58, 3.009%).

Hooks stay on the model for its lifetime: wrap a model with one Adapter only.
"""

import torch
from torch import nn

from .base import Method


class Bottleneck(nn.Module):
    def __init__(self, dim: int, size: int):
        super().__init__()
        self.down = nn.Linear(dim, size)  # PyTorch's default init
        self.up = nn.Linear(size, dim)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, h):  # computed in the adapter's (master, >= float32) dtype, added in the model's
        return h + self.up(torch.relu(self.down(h.to(self.down.weight.dtype)))).to(h.dtype)


def adapter_sites(model) -> list[nn.Module]:
    """The modules whose outputs get an adapter: [attention, feed-forward] per layer, in order."""
    base = model.base_model
    if hasattr(base, "h"):  # GPT-2
        return [m for block in base.h for m in (block.attn, block.mlp)]
    if hasattr(base, "layers"):  # Llama
        return [m for layer in base.layers for m in (layer.self_attn, layer.mlp)]
    if hasattr(base, "encoder") and hasattr(base, "decoder"):  # BART
        return [m for layer in (*base.encoder.layers, *base.decoder.layers) for m in (layer.self_attn, layer.fc2)]
    raise TypeError(f"don't know where to put adapters in {type(model).__name__}")


def adapter_count(sites: int, dim: int, size: int) -> int:
    """Trainable parameters of `sites` bottlenecks of width `size` on hidden size `dim`."""
    return sites * (size * (2 * dim + 1) + dim)


def bottleneck_size(base_params: int, sites: int, dim: int, fraction: float) -> int:
    """The r >= 1 whose `adapter_count` is closest to fraction x base_params (it is linear in r)."""
    return max(1, round((fraction * base_params / sites - dim) / (2 * dim + 1)))


def _hook(adapter):
    def hook(module, args, output):
        if isinstance(output, tuple):  # attention modules return (hidden, weights)
            return (adapter(output[0]), *output[1:])
        return adapter(output)

    return hook


class Adapter(Method):
    """Bottleneck adapters; exported tensors are the adapter weights only (`adapters.I.down.weight`, ...)."""

    name = "adapter"

    def __init__(self, model, tokenizer, config):
        super().__init__(model, tokenizer, config)
        sites = adapter_sites(model)
        dim = model.config.hidden_size
        self.size = bottleneck_size(self.base_parameters(), len(sites), dim, config.adapter_fraction)
        like = model.get_input_embeddings().weight  # trainable weights stay >= float32, as in prefix.py
        self.adapters = nn.ModuleList(Bottleneck(dim, self.size) for _ in sites).to(
            like.device, torch.promote_types(like.dtype, torch.float32))
        self._handles = [m.register_forward_hook(_hook(a)) for m, a in zip(sites, self.adapters)]

    def exported(self):
        return {f"adapters.{k}": v.detach() for k, v in self.adapters.state_dict().items()}

    def load_exported(self, tensors):
        self.adapters.load_state_dict({k.removeprefix("adapters."): v for k, v in tensors.items()})
