"""Infix-tuning ablation (Li & Liang 2021, Sec. 7.3): [x; INFIX; y] with trained per-layer keys/values.

Placement: the repo's source ends with SEP (`[pad.., x, SEP | y, EOS]`) and the logits at SEP
predict y_1, so INFIX sits *before* SEP: `[x; INFIX; SEP, y]`. SEP and y attend to the infix, x
does not (the infix is causal-later than x). The infix takes positions |x|..|x|+P-1, SEP continues
at |x|+P (positions skip padding, as everywhere in the repo).

Implementation with the cache: run x, append the P infix keys/values to every layer of the
`DynamicCache` (batch x num_key_value_heads x P x head_dim; GQA-aware), then run SEP (and y when
training: gradient flows to the infix through the cache). `prefill` does the same with SEP only,
and the base `step` continues. Decoder-only: the paper defines infix for GPT-2 table-to-text;
an encoder-decoder model raises InputError.

Parametrization, init and export reuse prefix.py's `PrefixGroup` (P = MLP(P') or P directly;
merged (layers, 2, kv_heads, P, head_dim) exported as `infix`). `init_text` follows prefix.py's
rule (the text defines P) and starts the infix at the keys/values the model computes for those
words alone (positions 0..P-1): under RoPE those keys carry positions 0..P-1, not the infix's
|x|..|x|+P-1, so this init is an approximation of "the words written between x and SEP".
"""

import torch

from ..errors import InputError
from ..examples import positions
from .base import DecodeState, Method, cache_arg, init_text_ids, master_dtype, model_cache
from .prefix import PrefixGroup


def kv_shape(config):
    """(layers, key/value heads, head_dim) of a decoder-only model config (GPT-2, Llama)."""
    heads = config.num_attention_heads
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    return config.num_hidden_layers, kv_heads, head_dim


class Infix(Method):
    """P trained key/value vectors per layer between source and SEP; exported merged as `infix`
    of shape (layers, 2, kv_heads, P, head_dim)."""

    name = "infix"
    base_forward = False  # its forward runs the source, the infix, then the target

    def __init__(self, model, tokenizer, config):
        if model.config.is_encoder_decoder:
            raise InputError("method 'infix' is decoder-only (the paper defines it for GPT-2); "
                             "use prefix or embedding for encoder-decoder models")
        super().__init__(model, tokenizer, config)
        ids = init_text_ids(tokenizer, config)
        layers, kv_heads, head_dim = kv_shape(model.config)
        emb = model.get_input_embeddings().weight
        self.group = PrefixGroup(layers, kv_heads, head_dim, config.prefix_len, emb.shape[1], config.mid_dim,
                                 config.reparam, master_dtype(model), emb.device)
        if ids is not None:
            with torch.no_grad():
                cache = model_cache(model(input_ids=torch.tensor([ids], device=emb.device), use_cache=True))
                self.group.init_to(torch.stack([torch.stack([k[0], v[0]]) for k, v, *_ in cache]))

    def kv(self) -> torch.Tensor:
        """The infix as (layers, 2, kv_heads, P, head_dim), in the model's dtype."""
        return self.group().to(self.model.dtype)

    def exported(self):
        return {"infix": self.group().detach().contiguous()}

    def load_exported(self, tensors):
        self.group.load(tensors["infix"])

    def _run(self, batch, labels=None):
        """Run [x] -> append infix -> run [SEP, y..]. Returns (output of the second run, holding the
        cache; attention mask over x, infix, SEP, y; its position ids; logits of x or None)."""
        from transformers import DynamicCache

        ids, mask = batch["input_ids"], batch["attention_mask"]
        b, num = ids.shape[0], self.config.prefix_len
        cut = batch.get("source_len", ids.shape[1]) - 1  # x = columns [:cut], SEP = column cut
        full = torch.cat([mask[:, :cut], mask.new_ones(b, num), mask[:, cut:]], 1)
        pos = positions(full)
        cache, first = DynamicCache(), None
        if cut:
            first = self.model(input_ids=ids[:, :cut], attention_mask=mask[:, :cut], position_ids=pos[:, :cut],
                               **cache_arg(cache), use_cache=True).logits
        for layer, (k, v) in enumerate(self.kv()):
            cache.update(k.expand(b, -1, -1, -1), v.expand(b, -1, -1, -1), layer)
        out = self.model(input_ids=ids[:, cut:], attention_mask=full, position_ids=pos[:, cut + num:],
                         labels=None if labels is None else labels[:, cut:], **cache_arg(cache), use_cache=True)
        return out, full, pos[:, cut + num:], first

    def forward(self, batch):
        """Training: loss over y (x's labels are all ignored); logits aligned with input_ids."""
        out, _, _, first = self._run(batch, batch.get("labels"))
        if first is not None:
            out["logits"] = torch.cat([first, out.logits], 1)
        return out

    @torch.no_grad()
    def prefill(self, batch):
        out, mask, pos, _ = self._run(batch)
        return out.logits[:, -1], DecodeState(model_cache(out), mask, next_position=pos[:, -1] + 1)
