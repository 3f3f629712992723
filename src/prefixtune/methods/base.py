"""The interface every method shares, as PEFT's tuners do: wrap a frozen base model, expose
trainable parameters, export/load the tensors the method keeps, and run the model for
training (`forward`) and for generation (`prefill`, then `step` one token at a time).

The base class is a complete implementation for methods that only change weights
(finetune, finetune-top2, adapter): the model runs as it is. Methods that add activations
(prefix, embedding-only, infix) override `prefix_cache` and `virtual_len`, or `forward` and
`prefill` where they need a different layout.
"""

import torch
from torch import nn

from ..configs import LOSSES
from ..decoding.cache import DecodeState
from ..errors import InputError
from ..batching import IGNORE, positions
from .config import MethodConfig
from .kv import cache_arg, model_cache


def init_text_ids(tokenizer, config: MethodConfig) -> list[int] | None:
    """Token ids of `config.init_text` (None without one). The text decides P, as in the authors' code
    (train_control.py: preseqlen = len(init_shallow_word)): a `config.prefix_len` of None becomes its token
    count; any other count is an InputError naming both numbers (a run named p10 must train P = 10)."""
    if not config.init_text:
        if config.prefix_len is None:
            raise InputError("no prefix length: give --prefix-len, or --init-text (P = its token count)")
        return None
    ids = tokenizer(config.init_text, add_special_tokens=False)["input_ids"]
    if not ids:
        raise InputError(f"init text {config.init_text!r} has no tokens")
    if config.prefix_len is None:
        config.prefix_len = len(ids)
    elif config.prefix_len != len(ids):
        raise InputError(f"--init-text {config.init_text!r} is {len(ids)} tokens for this model's tokenizer, but "
                         f"--prefix-len is {config.prefix_len}: the text sets P, so give --prefix-len {len(ids)} "
                         "(or leave it out)")
    return ids


def last_positions(length: int, keep: int, device) -> torch.Tensor:
    """`logits_to_keep` for the last `keep` of `length` positions, as indices rather than the int `keep`.
    transformers slices an int as `hidden[:, -keep:]`, a strided view, and the LM head then runs as a batched
    matmul over a copy of its weight per row (49,152 x 576 for SmolLM2): 0.97 s against 0.19 s for a bf16 step's
    head at 8 x 33 kept positions, and 3 s of a 21 s decode of 50 inputs. Indices gather a contiguous copy of the
    kept hidden states, and the head is one matmul."""
    return torch.arange(length - keep, length, device=device)


def master_dtype(model) -> torch.dtype:
    """Trainable tensors stay at least float32 (a master copy for bf16 models)."""
    return torch.promote_types(next(model.parameters()).dtype, torch.float32)


class Method(nn.Module):
    """A frozen base model plus whatever one method trains. Subclasses set `name`."""

    name = "base"
    virtual_len = 0  # positions the method places before the source (P for prefix)
    base_forward = True  # decoder-only `forward` is this class's (False where a subclass changes it)
    uses_prefix_len = False  # traits: set from registry.py for every registered subclass
    changes_base_weights = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        from ..registry import METHODS

        if cls.name in METHODS:
            traits = METHODS[cls.name]
            cls.uses_prefix_len, cls.changes_base_weights = traits.uses_prefix_len, traits.changes_base_weights

    def __init__(self, model, tokenizer, config: MethodConfig):
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer
        self.config = config
        self.encoder_decoder = bool(model.config.is_encoder_decoder)
        model.requires_grad_(False)

    # ----- what trains and what is kept -----
    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    def exported(self) -> dict[str, torch.Tensor]:
        """The tensors that define the trained method (what `save` writes). Subclasses define it."""
        raise NotImplementedError

    def load_exported(self, tensors: dict[str, torch.Tensor]) -> None:
        """Inverse of `exported`: afterwards the method computes what it computed when saved."""
        raise NotImplementedError

    def num_exported(self) -> int:
        """Parameters the method keeps per task (the paper's "% of parameters")."""
        return sum(t.numel() for t in self.exported().values())

    def base_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    # ----- hooks for activation methods -----
    def prefix_cache(self, batch_size: int):
        """A Cache already holding the method's per-layer keys/values, or None."""
        return None

    # ----- running the model -----
    def forward(self, batch: dict):
        """Run the model on a batch from `batching.collate`; returns its output (`.loss` with labels)."""
        b = batch["input_ids"].shape[0]
        cache = self.prefix_cache(b)
        if self.encoder_decoder:
            return self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                              labels=batch.get("labels"), **cache_arg(cache), use_cache=False)
        return self._run_decoder(batch, cache, labels=batch.get("labels"))

    def _run_decoder(self, batch: dict, cache, **extra):
        """The decoder-only model call of `forward` and `loss`: virtual positions, padding-free ids."""
        return self.model(input_ids=batch["input_ids"], attention_mask=self._with_virtual(batch["attention_mask"]),
                          position_ids=positions(batch["attention_mask"], self.virtual_len),
                          **cache_arg(cache), use_cache=cache is not None, **extra)

    def loss(self, batch: dict, per: str = "sequence") -> torch.Tensor:
        """The training loss. per="token": the mean NLL over target tokens, `forward(batch).loss`.
        per="sequence" (the paper's): NLL summed over each target, averaged over the batch -- Eq. 2 sums
        log p over the target tokens, and the authors' gpt2/train_e2e.py trains with `--objective_mode 1`
        (modeling_gpt2.py: `loss.view(bsz, seqlen).sum(dim=-1)`, then `.mean()` in trainer_prefix.py).
        The two differ by the batch's target tokens per row, which changes what clipping at norm 1 does.
        Computed with less work where it can:

        Decoder-only methods that run the model as `forward` does get logits only from the last
        source position on (`logits_to_keep`): source positions carry no loss, and the LM head and
        log-softmax over the vocabulary (49,152 words for SmolLM2) are a large share of a step.
        """
        if per not in LOSSES:
            raise ValueError(f"loss per {per!r}: expected 'sequence' or 'token'")
        if self.encoder_decoder or not self.base_forward or "source_len" not in batch:
            mean = self(batch).loss
        else:
            cache = self.prefix_cache(batch["input_ids"].shape[0])
            keep = batch["input_ids"].shape[1] - batch["source_len"] + 1
            ids = batch["input_ids"]
            out = self._run_decoder(batch, cache, logits_to_keep=last_positions(ids.shape[1], keep, ids.device))
            # logits[:, i] predicts token source_len + i (the last one predicts past the end: dropped).
            labels = batch["labels"][:, batch["source_len"]:]
            mean = nn.functional.cross_entropy(out.logits[:, :-1].flatten(0, 1).float(), labels.flatten(),
                                               ignore_index=IGNORE)
        if per == "token":
            return mean
        # sum = mean x target tokens (labels other than IGNORE: the first column, a source token, never counts)
        return mean * (batch["labels"] != IGNORE).sum() / batch["labels"].shape[0]

    @torch.no_grad()
    def prefill(self, batch: dict):
        """Run the sources of a batch (no labels); return (logits of the first target token, state)."""
        b = batch["input_ids"].shape[0]
        cache = self.prefix_cache(b)
        if self.encoder_decoder:
            from transformers import DynamicCache, EncoderDecoderCache

            cache = cache or EncoderDecoderCache(DynamicCache(), DynamicCache())
            encoder_outputs = self.model.get_encoder()(input_ids=batch["input_ids"],
                                                       attention_mask=batch["attention_mask"])
            state = DecodeState(cache, batch["attention_mask"], encoder_outputs=encoder_outputs)
            start = torch.full((b,), self.model.config.decoder_start_token_id, dtype=torch.long,
                               device=batch["input_ids"].device)
            return self.step(state, start), state
        from transformers import DynamicCache

        cache = cache if cache is not None else DynamicCache()
        mask = self._with_virtual(batch["attention_mask"])
        pos = positions(batch["attention_mask"], self.virtual_len)
        out = self.model(input_ids=batch["input_ids"], attention_mask=mask, position_ids=pos,
                         **cache_arg(cache), use_cache=True,  # only the last position's logits are needed
                         logits_to_keep=last_positions(batch["input_ids"].shape[1], 1, pos.device))
        state = DecodeState(model_cache(out), mask, next_position=pos[:, -1] + 1)
        return out.logits[:, -1], state

    @torch.no_grad()
    def step(self, state: DecodeState, tokens: torch.Tensor) -> torch.Tensor:
        """Feed one token per row (B,); update `state` in place; return next-token logits (B, V)."""
        if self.encoder_decoder:
            out = self.model(encoder_outputs=state.encoder_outputs, attention_mask=state.attention_mask,
                             decoder_input_ids=tokens[:, None], **cache_arg(state.cache), use_cache=True)
            state.cache = model_cache(out)
            return out.logits[:, -1]
        state.attention_mask = torch.cat([state.attention_mask, state.attention_mask.new_ones(len(tokens), 1)], 1)
        out = self.model(input_ids=tokens[:, None], attention_mask=state.attention_mask,
                         position_ids=state.next_position[:, None], **cache_arg(state.cache), use_cache=True)
        state.cache = model_cache(out)
        state.next_position = state.next_position + 1
        return out.logits[:, -1]

    def _with_virtual(self, mask: torch.Tensor) -> torch.Tensor:
        if not self.virtual_len:
            return mask
        return torch.cat([mask.new_ones(mask.shape[0], self.virtual_len), mask], dim=1)
