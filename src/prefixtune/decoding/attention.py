"""Attention for decoding on a CPU: one new token per row over the cache, as two matmuls.

Written by hand because torch's CPU SDPA kernels are slow at this shape: one query position, a few dozen
cached keys, 125 rows (25 inputs x 5 beams), SmolLM2's 9 query and 3 key/value heads. Measured with 2
threads (float32, 45 / 80 keys): the flash kernel 2.52 / 3.18 ms a call, the math one 1.30 / 2.62 ms, these two
matmuls 0.83 / 1.62 ms; 30 layers call it at every step. Every other shape (prefill, training: more than one
query) and every bfloat16 call go to transformers' SDPA, so training is untouched.

`decoding_attention(model)` switches a model to it for a `with` block; the scores and softmax are those of
SDPA's math (scaled q.k, masked, softmax in float32), so results agree with SDPA to float rounding.
"""

from contextlib import contextmanager

import torch
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

NAME = "prefixtune_decoding"


def one_query_attention(module, query, key, value, attention_mask, dropout=0.0, scaling=None, **kwargs):
    """transformers' attention-function signature: query (B, H, q, D), key/value (B, H_kv, L, D), mask None,
    boolean (True = attend) or additive, broadcastable to (B, 1, q, L); returns ((B, q, H, D), None)."""
    # float32 only: in bfloat16 the matmul would round q.k to bf16 before the softmax, twice SDPA's error (SDPA's
    # kernels keep float32 scores; measured against float32 attention: 0.007-0.009 vs 0.003-0.005)
    if (query.shape[2] != 1 or query.dtype != torch.float32 or dropout or kwargs.get("output_attentions")
            or kwargs.get("softcap") is not None):
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      **kwargs)
    B, H, _, D = query.shape
    groups = H // key.shape[1]  # query heads per key/value head: head h reads key/value head h // groups
    q = query.view(B, key.shape[1], groups, D)
    scores = torch.matmul(q, key.transpose(2, 3)) * (D ** -0.5 if scaling is None else scaling)  # (B, H_kv, g, L)
    if attention_mask is not None:
        mask = attention_mask[:, :, -1:, :]  # (B or 1, 1, 1, L): the one query's row
        if mask.dtype == torch.bool:
            scores = scores.masked_fill(~mask, float("-inf"))
        else:
            scores = scores + mask
    probs = torch.softmax(scores, dim=-1, dtype=torch.float32).to(value.dtype)
    return torch.matmul(probs, value).view(B, 1, H, D), None


AttentionInterface.register(NAME, one_query_attention)
ALL_MASK_ATTENTION_FUNCTIONS.register(NAME, sdpa_mask)  # the masks SDPA gets


@contextmanager
def decoding_attention(model):
    """Run `model` with `one_query_attention` inside the block; its own attention again after."""
    before = model.config._attn_implementation
    model.set_attn_implementation(NAME)
    try:
        yield model
    finally:
        model.set_attn_implementation(before)
