"""Prefix-tuning (Li & Liang, 2021): trainable key/value activations that every layer attends to.

Each attention layer sees P extra positions in front of the real ones, whose keys and values are
free parameters: decoder-only models get `[PREFIX; x; y]`; BART gets `[PREFIX; x]` in the encoder
and `[PREFIX'; y]` in the decoder (self-attention) plus a prefix in front of the encoder states in
cross-attention. The prefixes enter the model through its own cache (transformers'
`DynamicCache` / `EncoderDecoderCache`), so the attention code runs unchanged.

Tensors. One prefix group holds `(layers, 2, kv_heads, P, head_dim)` (2 = key, value); keys follow
the key/value heads (GQA: 3 for SmolLM2, not 9). Llama keys in a cache are post-RoPE, so a learned
prefix key is a free vector that is never rotated; real tokens sit at positions P, P+1, ...
(`virtual_len = P`), exactly as if P real tokens had come first -- which is also what PEFT does.
Decoder-only models have one group, `prefix`; BART three, `prefix.encoder`, `prefix.decoder`
(decoder self-attention) and `prefix.cross` (decoder cross-attention).

Training (`config.reparam`, the paper's Section 4.3): each group is P = MLP(P'), with
P' an embedding (P, hidden) -> Linear(hidden, mid_dim) -> tanh -> Linear(mid_dim,
layers*2*kv_heads*head_dim), the layout of PEFT's `PrefixEncoder(prefix_projection=True)`.
`reparam=False` optimizes P directly. `exported()` always returns the merged P (the MLP is a
training device only and is dropped); `num_exported()` counts those, `num_trainable()` what the
optimizer updates (MLP included) -- see `trainable_formula` / `exported_formula`.

Initialization (`config.init_text`, the paper's Section 7.4): P is set to the frozen model's own
keys/values for the tokens of that text, so at step 0 the model behaves as if the words were
prepended. RULE: the text defines P -- `config.prefix_len` must be its token count or None (an error names both; the
warning when they differ), so `method.json` records the P actually used. Without init_text,
P' ~ N(0, 1) and default Linear init (reparam), or P ~ N(0, 1) (direct; PEFT's default).
"""

import warnings

import torch
from torch import nn

from ..decoding.cache import DecodeState
from .base import Method, init_text_ids, master_dtype
from .kv import cache_arg, kv_groups, model_cache


class PrefixGroup(nn.Module):
    """Per-layer key/value prefixes of one kind: `forward()` -> (layers, 2, kv_heads, P, head_dim).

    With `reparam`, the tensor is MLP(P') (trainable P' and MLP); otherwise it is a parameter.
    `load` replaces the MLP by a given P (the merged prefix): afterwards the group is just P.
    """

    def __init__(self, layers, kv_heads, head_dim, length, hidden, mid_dim, reparam, dtype, device):
        super().__init__()
        self.shape = (layers, 2, kv_heads, length, head_dim)
        self.out_dim = layers * 2 * kv_heads * head_dim
        if reparam:
            kw = dict(dtype=dtype, device=device)
            self.embedding = nn.Parameter(torch.randn(length, hidden, **kw))  # P', like nn.Embedding
            self.mlp = nn.Sequential(nn.Linear(hidden, mid_dim, **kw), nn.Tanh(),
                                     nn.Linear(mid_dim, self.out_dim, **kw))
            self.prefix = None
        else:
            self.prefix = nn.Parameter(torch.randn(self.shape, dtype=dtype, device=device))

    def forward(self) -> torch.Tensor:
        if self.prefix is not None:
            return self.prefix
        layers, _, kv_heads, length, head_dim = self.shape
        # PEFT's row layout: token p holds [layer0 key, layer0 value, layer1 key, ...], each (kv_heads, head_dim).
        out = self.mlp(self.embedding).view(length, layers, 2, kv_heads, head_dim)
        return out.permute(1, 2, 3, 0, 4)

    @torch.no_grad()
    def init_to(self, target: torch.Tensor) -> None:
        """Make `forward()` return `target` (layers, 2, kv_heads, P, head_dim) now.

        Direct: copy. Reparametrized: keep the random P' and first layer, put the per-coordinate
        mean of the target in the last bias and solve the last weight by least squares so that
        MLP(P') = target exactly (P' rows give P hidden vectors h_p in R^mid_dim; with P <= mid_dim
        they are linearly independent and the linear system W h_p = t_p - b is solvable). The
        original code regresses the MLP onto these activations with a few hundred MSE steps and PEFT
        has no such init for prefix tuning; the closed form reaches the exact point that regression
        approximates, with no extra hyper-parameters, so the loss at step 0 is the real-words loss.
        """
        if target.shape != self.shape:
            raise ValueError(f"prefix init: expected shape {self.shape}, got {tuple(target.shape)}")
        if self.prefix is not None:
            self.prefix.copy_(target)
            return
        length = self.shape[3]
        t = target.permute(3, 0, 1, 2, 4).reshape(length, self.out_dim).double()
        h = self.mlp[1](self.mlp[0](self.embedding)).double()  # (P, mid_dim)
        bias = t.mean(0)
        weight = (torch.linalg.pinv(h) @ (t - bias)).T  # (out_dim, mid_dim), minimum norm
        last = self.mlp[2]
        last.weight.copy_(weight.to(last.weight.dtype))
        last.bias.copy_(bias.to(last.bias.dtype))
        err = (self.forward() - target).abs().max().item()
        if err > 1e-3 * (1 + target.abs().max().item()):
            warnings.warn(f"prefix init: MLP reproduces the init activations only up to {err:.3g} "
                          f"(P={length} > mid_dim={h.shape[1]}?)")

    @torch.no_grad()
    def load(self, tensor: torch.Tensor) -> None:
        """Hold the merged prefix `tensor` directly (drops P' and the MLP)."""
        if tuple(tensor.shape) != self.shape:
            raise ValueError(f"prefix tensor has shape {tuple(tensor.shape)}, expected {self.shape}")
        ref = self.prefix if self.prefix is not None else self.embedding
        self.embedding = self.mlp = None
        self.prefix = nn.Parameter(tensor.detach().to(dtype=ref.dtype, device=ref.device).clone())


class Prefix(Method):
    """Prefix-tuning; see the module docstring for layout, training and init rules."""

    name = "prefix"

    def __init__(self, model, tokenizer, config):
        super().__init__(model, tokenizer, config)
        init_ids = init_text_ids(tokenizer, config)
        self.virtual_len = config.prefix_len
        param = next(model.parameters())
        dtype = master_dtype(model)  # the cache itself gets the model's dtype
        shapes, hidden = kv_groups(model)
        self.groups = nn.ModuleDict({
            name: PrefixGroup(*shape, config.prefix_len, hidden, config.mid_dim, config.reparam, dtype, param.device)
            for name, shape in shapes.items()})
        if init_ids is not None:
            for name, target in self.activations(init_ids).items():
                self.groups[name].init_to(target)

    # ----- what trains and what is kept -----
    def exported(self) -> dict[str, torch.Tensor]:
        """Merged prefixes only (no MLP): `prefix`, or `prefix.encoder|decoder|cross` for BART."""
        if not self.encoder_decoder:
            return {"prefix": self.groups["prefix"]().detach()}
        return {f"prefix.{name}": group().detach() for name, group in self.groups.items()}

    def load_exported(self, tensors: dict[str, torch.Tensor]) -> None:
        """Load merged prefixes: from now on the method uses P directly (no MLP)."""
        names = {("prefix" if n == "prefix" else f"prefix.{n}"): n for n in self.groups}
        missing = set(names) - set(tensors)
        if missing:
            raise KeyError(f"missing prefix tensors: {sorted(missing)}")
        for key, name in names.items():
            self.groups[name].load(tensors[key])

    def num_trainable(self) -> int:
        """Parameters the optimizer updates now (training: P' and MLP; merged/direct: P)."""
        return sum(p.numel() for p in self.trainable_parameters())

    def exported_formula(self) -> int:
        """Sum over groups of layers * 2 * kv_heads * head_dim * P (= `num_exported()`)."""
        return sum(g.out_dim * g.shape[3] for g in self.groups.values())

    def trainable_formula(self) -> int:
        """Training-time count: per group P*hidden + hidden*mid + mid + mid*out + out (reparam), else P*out."""
        if not self.config.reparam:
            return self.exported_formula()
        hidden, mid, length = kv_groups(self.model)[1], self.config.mid_dim, self.config.prefix_len
        return sum(length * hidden + hidden * mid + mid + mid * g.out_dim + g.out_dim for g in self.groups.values())

    # ----- init from real words -----
    @torch.no_grad()
    def activations(self, ids: list[int]) -> dict[str, torch.Tensor]:
        """The frozen model's keys/values for tokens `ids`, per group (layers, 2, kv_heads, P, head_dim).

        Decoder-only: the model run on `ids` at positions 0..P-1 (Llama keys post-RoPE, as cached).
        BART: the encoder run on `ids` (its self-attention keys/values -> `encoder`), then the decoder
        run on the same `ids` against that encoder output (`decoder` self-attention; `cross` =
        cross-attention keys/values of the encoder states, i.e. of the words).
        """
        from transformers import DynamicCache

        device = next(self.model.parameters()).device
        x = torch.tensor([ids], device=device)
        was_training = self.model.training
        self.model.eval()
        try:
            if not self.encoder_decoder:
                cache = model_cache(self.model(input_ids=x, use_cache=True))
                return {"prefix": _stack(cache)}
            enc_cache = DynamicCache()
            enc = self.model.get_encoder()(input_ids=x, **cache_arg(enc_cache))
            dec = model_cache(self.model(encoder_outputs=enc, decoder_input_ids=x, use_cache=True))
            return {"encoder": _stack(enc_cache), "decoder": _stack(dec.self_attention_cache),
                    "cross": _stack(dec.cross_attention_cache)}
        finally:
            self.model.train(was_training)

    # ----- running the model -----
    def _cache(self, name: str, batch_size: int):
        from transformers import DynamicCache

        p = self.groups[name]().to(self.model.dtype)
        return DynamicCache([(layer[0].expand(batch_size, -1, -1, -1), layer[1].expand(batch_size, -1, -1, -1))
                             for layer in p])

    def prefix_cache(self, batch_size: int):
        """Decoder-only: DynamicCache holding P keys/values per layer. BART: EncoderDecoderCache with
        the decoder self-attention prefix and the cross-attention prefix; the cross part is marked
        not-updated so BartAttention computes the encoder's keys/values on the first call and
        appends them after the prefix (`cross_attention_cache.update`), then reuses [prefix; enc]."""
        if not self.encoder_decoder:
            return self._cache("prefix", batch_size)
        from transformers import EncoderDecoderCache

        cache = EncoderDecoderCache(self._cache("decoder", batch_size), self._cache("cross", batch_size))
        for layer in cache.is_updated:  # the constructor marks non-empty cross caches as final
            cache.is_updated[layer] = False
        return cache

    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor):
        """BART encoder over `[PREFIX; x]`: x at positions 0..L-1 attends to P prefix keys too.

        BartEncoder.forward takes no cache, but forwards extra kwargs to every BartAttention, which
        appends its keys/values to a cache when given one (`cache_arg`); and transformers sizes the
        padding mask from a 2D mask longer than the input (kept for PEFT's prefix tuning). So a
        DynamicCache holding the prefix plus a mask extended by P is all it takes -- no hand-written
        attention. The length check below fails loudly should a transformers version drop that path.
        """
        cache = self._cache("encoder", input_ids.shape[0])
        out = self.model.get_encoder()(input_ids=input_ids, attention_mask=self._with_virtual(attention_mask),
                                       **cache_arg(cache))
        if cache.get_seq_length() != self.virtual_len + input_ids.shape[1]:
            raise RuntimeError("BART encoder did not use the prefix cache (transformers version changed?)")
        return out

    def forward(self, batch: dict):
        if not self.encoder_decoder:
            return super().forward(batch)
        enc = self.encode(batch["input_ids"], batch["attention_mask"])
        # attention_mask is the cross-attention mask here (the encoder already ran): P ones + source mask.
        return self.model(encoder_outputs=enc, attention_mask=self._with_virtual(batch["attention_mask"]),
                          labels=batch.get("labels"), **cache_arg(self.prefix_cache(len(batch["input_ids"]))),
                          use_cache=False)

    @torch.no_grad()
    def prefill(self, batch: dict):
        if not self.encoder_decoder:
            return super().prefill(batch)
        ids = batch["input_ids"]
        enc = self.encode(ids, batch["attention_mask"])
        state = DecodeState(self.prefix_cache(len(ids)), self._with_virtual(batch["attention_mask"]),
                            encoder_outputs=enc)
        start = torch.full((len(ids),), self.model.config.decoder_start_token_id, dtype=torch.long, device=ids.device)
        return self.step(state, start), state


def _stack(cache) -> torch.Tensor:
    """(layers, 2, heads, P, head_dim) from a single-row DynamicCache."""
    return torch.stack([torch.stack([layer.keys[0], layer.values[0]]) for layer in cache.layers])
