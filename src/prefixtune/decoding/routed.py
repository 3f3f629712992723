"""Several prefixes in one batch (the paper's deployment claim: one frozen model serves many tasks in one
batch): each row carries its own method's prefix, and every decoding step runs them in one forward of the
frozen model. `decode` uses `Routed` when it is given several methods."""

import copy

import torch

from ..errors import InputError
from ..registry import WEIGHT_METHODS
from .cache import DecodeState


def stack_caches(caches):
    """One cache whose rows are the rows of `caches`, in order (DynamicCache or EncoderDecoderCache)."""
    out = copy.copy(caches[0])
    if hasattr(out, "self_attention_cache"):
        out.self_attention_cache = stack_caches([c.self_attention_cache for c in caches])
        out.cross_attention_cache = stack_caches([c.cross_attention_cache for c in caches])
        out.is_updated = dict(caches[0].is_updated)
        return out
    out.layers = [copy.copy(layer) for layer in out.layers]
    for i, layer in enumerate(out.layers):
        if layer.get_seq_length() > 0:
            layer.keys = torch.cat([c.layers[i].keys for c in caches])
            layer.values = torch.cat([c.layers[i].values for c in caches])
    return out


def stack_states(states):
    """One DecodeState whose rows are the rows of `states`, in order (all of one cache length)."""
    if len({s.attention_mask.shape[1] for s in states}) > 1:
        raise InputError("mixed methods must have the same prefix length")
    first = states[0]
    enc = first.encoder_outputs
    if enc is not None:
        enc = copy.copy(enc)
        enc.last_hidden_state = torch.cat([s.encoder_outputs.last_hidden_state for s in states])
    pos = None if first.next_position is None else torch.cat([s.next_position for s in states])
    return DecodeState(stack_caches([s.cache for s in states]), torch.cat([s.attention_mask for s in states]),
                       next_position=pos, encoder_outputs=enc)


class Routed:
    """Activation methods (prefix, embedding) over one shared frozen model in one batch: row i
    uses `methods[route[i]]` (set `route` before each batch).

    Decoder-only methods with a `prefix_cache` (prefix: its cache is its whole prefix, and it prefills
    with the base `Method.prefill`) prefill the batch in one forward too, from a cache whose row i is
    `methods[route[i]].prefix_cache(1)` (computed once). Otherwise (BART's encoder prefix, embedding)
    each method's own `prefill` runs on its rows and their states are stacked. Either way every
    decoding step runs all rows, each attending to its own prefix, in one forward of the model.
    """

    def __init__(self, methods):
        weights = sorted({m.config.method for m in methods if m.config.method in WEIGHT_METHODS})
        if weights:
            raise InputError(f"method {', '.join(weights)} changes the model's weights: it cannot share a "
                             "batch with other methods (give one --method-dir)")
        if any(m.model is not methods[0].model for m in methods):
            raise InputError("mixed methods must share one base model")
        if len({m.virtual_len for m in methods}) > 1:
            raise InputError("mixed methods must have the same prefix length")
        if len({type(m).step for m in methods}) > 1:
            raise InputError("mixed methods must decode with the same `step`")
        self.methods, self.route = methods, None
        self.prefixes = None
        if not methods[0].encoder_decoder:  # assumes a decoder-only method's prefix_cache is all its prefix
            with torch.no_grad():
                self.prefixes = [m.prefix_cache(1) for m in methods]
            if any(c is None for c in self.prefixes):
                self.prefixes = None

    def prefill(self, batch):
        if self.prefixes is not None:  # one forward: row i starts from its own method's prefix cache
            cache = stack_caches([self.prefixes[r] for r in self.route.tolist()])
            runner = self.methods[0]
            runner.prefix_cache = lambda batch_size: cache  # for this call only
            try:
                return runner.prefill(batch)
            finally:
                del runner.prefix_cache
        groups = [(m, (self.route == g).nonzero()[:, 0]) for g, m in enumerate(self.methods)]
        groups = [(m, rows) for m, rows in groups if len(rows)]
        logits, states = [], []
        for m, rows in groups:
            sub = {k: v.index_select(0, rows) if torch.is_tensor(v) else v for k, v in batch.items()}
            out = m.prefill(sub)
            logits.append(out[0])
            states.append(out[1])
        order = torch.cat([rows for _, rows in groups]).argsort()  # stacked row of each batch row
        return torch.cat(logits)[order], stack_states(states).select(order)

    def step(self, state, tokens):
        return self.methods[0].step(state, tokens)


