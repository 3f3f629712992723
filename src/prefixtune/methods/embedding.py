"""Embedding-only ablation (Li & Liang 2021, Sec. 7.2): P trainable virtual tokens at the input only.

Decoder-only rows become `[V_0..V_{P-1}, pad.., x, SEP | y, EOS, pad..]` as `inputs_embeds`:
the virtual tokens take positions 0..P-1 and the source continues at P (`positions(mask, P)`),
so `step` from the base class decodes unchanged. BART: the virtual tokens are prepended to the
encoder input (learned positions 0..P-1, source from P). `forward` returns logits aligned with
`input_ids` (virtual positions dropped).

Training: P = MLP(P') (`reparam`; P' (P, hidden) -> Linear(hidden, mid_dim) -> tanh ->
Linear(mid_dim, hidden)) or P directly. `init_text` (same rule as prefix.py): the text defines P
(`config.prefix_len` must be its token count, or None: see base.init_text_ids); P starts as those
words' input embeddings, so at step 0 the method equals the frozen model with the words prepended.
Random init: P' ~ N(0, 1) (reparam) or P ~ N(0, std of the embedding matrix) (direct).
Trainable tensors are kept at least float32; they are cast to the model's dtype when used.
"""


import torch
from torch import nn

from ..decoding.cache import DecodeState
from ..batching import IGNORE, positions
from .base import Method, init_text_ids, master_dtype
from .kv import cache_arg, model_cache


class VirtualTokens(nn.Module):
    """P rows of width `dim`: a trained table (direct) or MLP(P') (reparam).

    prefix.py's `PrefixGroup` is the same idea shaped as per-layer keys/values; this one is the
    plain (P, dim) table that input embeddings need (a KV-shaped group would compute 2x the rows).
    """

    def __init__(self, num, dim, reparam, mid_dim, std, dtype, device):
        super().__init__()
        kw = dict(dtype=dtype, device=device)
        self.table = nn.Parameter(torch.randn(num, dim, **kw) * (1.0 if reparam else std))
        self.mlp = nn.Sequential(nn.Linear(dim, mid_dim, **kw), nn.Tanh(), nn.Linear(mid_dim, dim, **kw)) \
            if reparam else None

    def forward(self) -> torch.Tensor:
        return self.table if self.mlp is None else self.mlp(self.table)

    @torch.no_grad()
    def init_to(self, target: torch.Tensor) -> None:
        """Make forward() == target. Reparam: P' := target and the last layer is solved by least
        squares (minimum norm) so MLP(P') = target, exact when P <= mid_dim + 1 -- the closed form of
        the MSE regression Li & Liang's code runs for this (prefix.py does the same)."""
        self.table.copy_(target)
        if self.mlp is None:
            return
        hidden = self.mlp[1](self.mlp[0](self.table)).double()
        design = torch.cat([hidden, hidden.new_ones(len(hidden), 1)], 1)  # [tanh(W1 P' + b1), 1]
        solution = torch.linalg.pinv(design) @ target.double()  # rows: W2^T, then b2
        self.mlp[2].weight.copy_(solution[:-1].T)
        self.mlp[2].bias.copy_(solution[-1])

    @torch.no_grad()
    def load(self, rows: torch.Tensor) -> None:
        """Hold `rows` directly (drops the MLP), as after training."""
        if rows.shape != self.table.shape:  # P' and P are both (P, hidden)
            raise ValueError(f"embedding tensor has shape {tuple(rows.shape)}, expected {tuple(self.table.shape)}")
        self.table = nn.Parameter(rows.detach().to(self.table).clone())
        self.mlp = None


class Embedding(Method):
    """P virtual input embeddings; exported as the merged P x hidden table `embedding`."""

    name = "embedding"
    base_forward = False  # its forward lays the batch out differently

    def __init__(self, model, tokenizer, config):
        super().__init__(model, tokenizer, config)
        ids = init_text_ids(tokenizer, config)
        emb = model.get_input_embeddings()  # BART's includes embed_scale: virtual rows live after it
        self.virtual_len = config.prefix_len
        self.tokens = VirtualTokens(config.prefix_len, emb.weight.shape[1], config.reparam, config.mid_dim,
                                    emb.weight.float().std().item(), master_dtype(model), emb.weight.device)
        if ids is not None:
            with torch.no_grad():
                self.tokens.init_to(emb(torch.tensor(ids, device=emb.weight.device)).to(self.tokens.table.dtype))

    def exported(self):
        return {"embedding": self.tokens().detach().contiguous()}

    def load_exported(self, tensors):
        self.tokens.load(tensors["embedding"])

    def _inputs(self, batch):
        """(inputs_embeds, attention mask, position ids or None) with the virtual tokens in front."""
        ids, mask = batch["input_ids"], batch["attention_mask"]
        b, num = ids.shape[0], self.virtual_len
        real = self.model.get_input_embeddings()(ids)
        embeds = torch.cat([self.tokens().to(real.dtype)[None].expand(b, -1, -1), real], 1)
        if self.encoder_decoder:  # learned positions 0.. over [V, x] (source is right-padded)
            return embeds, self._with_virtual(mask), None
        pos = torch.cat([torch.arange(num, device=ids.device).expand(b, num), positions(mask, num)], 1)
        return embeds, self._with_virtual(mask), pos

    def forward(self, batch):
        embeds, mask, pos = self._inputs(batch)
        labels = batch.get("labels")
        if self.encoder_decoder:
            return self.model(inputs_embeds=embeds, attention_mask=mask, labels=labels, use_cache=False)
        if labels is not None:
            labels = torch.cat([labels.new_full((len(labels), self.virtual_len), IGNORE), labels], 1)
        out = self.model(inputs_embeds=embeds, attention_mask=mask, position_ids=pos, labels=labels,
                         use_cache=False)
        out["logits"] = out.logits[:, self.virtual_len:]
        return out

    @torch.no_grad()
    def prefill(self, batch):
        from transformers import DynamicCache, EncoderDecoderCache

        embeds, mask, pos = self._inputs(batch)
        if self.encoder_decoder:
            encoder_outputs = self.model.get_encoder()(inputs_embeds=embeds, attention_mask=mask)
            state = DecodeState(EncoderDecoderCache(DynamicCache(), DynamicCache()), mask,
                                encoder_outputs=encoder_outputs)
            start = torch.full((len(embeds),), self.model.config.decoder_start_token_id, dtype=torch.long,
                               device=embeds.device)
            return self.step(state, start), state
        out = self.model(inputs_embeds=embeds, attention_mask=mask, position_ids=pos,
                         **cache_arg(DynamicCache()), use_cache=True)
        return out.logits[:, -1], DecodeState(model_cache(out), mask, next_position=pos[:, -1] + 1)
