"""Infix-tuning ablation (Li & Liang 2021, Sec. 7.3): [x; INFIX; y] with trained per-layer keys/values.

What the infix is follows the authors' code (gpt2/train_control.py:241-272, `get_prompt_p5_infix`); the paper
says only that the infix activations are trained. At every layer the infix's keys/values are the SUM of
  (a) a trained key/value tensor, MLP(P') as in prefix-tuning (or P directly without reparametrization), and
  (b) the frozen model's own keys/values for a second trained embedding sequence E2 (P x hidden, the code's
      `wte2`) placed after x: the model reads [x; E2], so (b) depends on x.
E2 starts N(0, 1) as the code's nn.Embedding does.

Placement: the repo's source ends with SEP (`[pad.., x, SEP | y, EOS]`) and the logits at SEP
predict y_1, so INFIX sits *before* SEP: `[x; INFIX; SEP, y]`. SEP and y attend to the infix, x
does not (the infix is causal-later than x). The infix takes positions |x|..|x|+P-1, SEP continues
at |x|+P (positions skip padding, as everywhere in the repo).

Implementation with the cache: run [x; E2] once, add (a) to the last P keys/values of every layer (a new
`DynamicCache`, batch x num_key_value_heads x len x head_dim; GQA-aware), then run SEP (and y when
training: gradient flows to (a) through the cache and to E2 through the frozen model). `prefill` does the
same with SEP only, and the base `step` continues. Decoder-only: the paper defines infix for GPT-2
table-to-text; an encoder-decoder model raises InputError.

Export: (a) merged to (layers, 2, kv_heads, P, head_dim) as `infix` (the MLP dropped, as prefix.py does) and
E2 as `infix_embedding`. `init_text` follows prefix.py's rule (the text defines P) and starts the infix as
exactly those words written between x and SEP: E2 = their token embeddings and (a) = 0.
"""

import torch
from torch import nn

from ..decoding.cache import DecodeState
from ..errors import InputError
from ..batching import positions
from .base import Method, init_text_ids, master_dtype
from .kv import cache_arg, kv_shape, model_cache
from .prefix import PrefixGroup


class Infix(Method):
    """P key/value vectors per layer between source and SEP: trained ones plus the frozen model's for a trained
    embedding sequence after x; exported as `infix` (layers, 2, kv_heads, P, head_dim) and `infix_embedding`."""

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
        dtype = master_dtype(model)
        self.group = PrefixGroup(layers, kv_heads, head_dim, config.prefix_len, emb.shape[1], config.mid_dim,
                                 config.reparam, dtype, emb.device)
        self.embedding = nn.Parameter(torch.randn(config.prefix_len, emb.shape[1], dtype=dtype, device=emb.device))
        if ids is not None:
            with torch.no_grad():
                self.embedding.copy_(emb[torch.tensor(ids, device=emb.device)])
                self.group.init_to(torch.zeros(self.group.shape, dtype=dtype, device=emb.device))

    def kv(self) -> torch.Tensor:
        """The infix as (layers, 2, kv_heads, P, head_dim), in the model's dtype."""
        return self.group().to(self.model.dtype)

    def exported(self):
        return {"infix": self.group().detach().contiguous(), "infix_embedding": self.embedding.detach().clone()}

    def load_exported(self, tensors):
        self.group.load(tensors["infix"])
        with torch.no_grad():
            self.embedding.copy_(tensors["infix_embedding"])

    def _run(self, batch, labels=None):
        """Run [x; E2] -> add the trained keys/values to E2's -> run [SEP, y..]. Returns (output of the second
        run, holding the cache; attention mask over x, infix, SEP, y; its position ids; logits of x or None)."""
        from transformers import DynamicCache

        ids, mask = batch["input_ids"], batch["attention_mask"]
        b, num = ids.shape[0], self.config.prefix_len
        cut = batch.get("source_len", ids.shape[1]) - 1  # x = columns [:cut], SEP = column cut
        full = torch.cat([mask[:, :cut], mask.new_ones(b, num), mask[:, cut:]], 1)
        pos = positions(full)
        dtype = self.model.dtype
        embeds = torch.cat([self.model.get_input_embeddings()(ids[:, :cut]),
                            self.embedding.to(dtype).expand(b, -1, -1)], 1)
        first = self.model(inputs_embeds=embeds, attention_mask=full[:, :cut + num], position_ids=pos[:, :cut + num],
                           use_cache=True)
        cache = DynamicCache()
        for layer, ((k, v, *_), (dk, dv)) in enumerate(zip(model_cache(first), self.kv())):
            cache.update(torch.cat([k[:, :, :cut], k[:, :, cut:] + dk], 2),
                         torch.cat([v[:, :, :cut], v[:, :, cut:] + dv], 2), layer)
        out = self.model(input_ids=ids[:, cut:], attention_mask=full, position_ids=pos[:, cut + num:],
                         labels=None if labels is None else labels[:, cut:], **cache_arg(cache), use_cache=True)
        return out, full, pos[:, cut + num:], first.logits[:, :cut] if cut else None

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
