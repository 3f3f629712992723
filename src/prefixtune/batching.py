"""Turn (source, target) text pairs into model batches: one layout for training and decoding.

Decoder-only (GPT-2, Llama): each row is `[pad..., x, SEP | y, EOS, pad...]`: the source and a
separator, left-padded so every source ends in the same column, then the target, right-padded.
Labels are -100 everywhere but on `y, EOS`. Decoding feeds only the left part, so training and
generation see the same token positions. SEP is the tokenizer's BOS token (the paper's
`x <bos> y <eos>` for GPT-2), or EOS where the model has no BOS.

Encoder-decoder (BART): `input_ids` is the source (`<s> x </s>`, right-padded) and `labels` the
target (`<s> y </s>` as the tokenizer writes it, -100 on padding); the model shifts labels right
to make the decoder inputs.
"""

from dataclasses import dataclass

import torch

IGNORE = -100


@dataclass
class Limits:
    """Token budgets: longer sources and targets are truncated (params.yaml sets them per task)."""

    max_source_len: int = 256
    max_target_len: int = 128


def with_source_prefix(source: str, prefix: str | None) -> str:
    """The source as a run sees it: `prefix source` when the run has a source prefix (the authors' low-data
    fine-tuning writes ' {lowdata_token} {src} {bos} {tgt} {eos}': the token is text before the source)."""
    return f"{prefix} {source}" if prefix else source


def separator_id(tokenizer) -> int:
    return tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id


def encode_pair(tokenizer, source: str, target: str | None, encoder_decoder: bool, limits=Limits()):
    """Token ids for one example: (source_ids, target_ids); target_ids is [] when target is None."""
    if encoder_decoder:
        src = tokenizer(source, truncation=True, max_length=limits.max_source_len)["input_ids"]
        tgt = [] if target is None else tokenizer(
            text_target=target, truncation=True, max_length=limits.max_target_len)["input_ids"]
        return src, tgt
    src = tokenizer(source, add_special_tokens=False)["input_ids"][: limits.max_source_len - 1]
    src = src + [separator_id(tokenizer)]
    if target is None:
        return src, []
    tgt = tokenizer(" " + target, add_special_tokens=False)["input_ids"][: limits.max_target_len - 1]
    return src, tgt + [tokenizer.eos_token_id]


def collate(pairs, pad_id: int, encoder_decoder: bool) -> dict:
    """Batch a list of (source_ids, target_ids) in the layout of the module docstring.

    Returns `input_ids`, `attention_mask` and (when any target is non-empty) `labels`; for
    decoder-only models also `source_len`, the column where every target starts.
    """
    if encoder_decoder:
        src_len = max(len(s) for s, _ in pairs)
        input_ids = torch.tensor([s + [pad_id] * (src_len - len(s)) for s, _ in pairs])
        batch = {"input_ids": input_ids, "attention_mask": (torch.arange(src_len) < torch.tensor(
            [len(s) for s, _ in pairs])[:, None]).long()}
        tgt_len = max(len(t) for _, t in pairs)
        if tgt_len:
            batch["labels"] = torch.tensor([t + [IGNORE] * (tgt_len - len(t)) for _, t in pairs])
        return batch
    src_len = max(len(s) for s, _ in pairs)
    tgt_len = max(len(t) for _, t in pairs)
    ids, mask, labels = [], [], []
    for s, t in pairs:
        left, right = src_len - len(s), tgt_len - len(t)
        ids.append([pad_id] * left + s + t + [pad_id] * right)
        mask.append([0] * left + [1] * (len(s) + len(t)) + [0] * right)
        labels.append([IGNORE] * src_len + t + [IGNORE] * right)
    batch = {"input_ids": torch.tensor(ids), "attention_mask": torch.tensor(mask), "source_len": src_len}
    if tgt_len:
        batch["labels"] = torch.tensor(labels)
    return batch


def positions(attention_mask: torch.Tensor, offset: int = 0) -> torch.Tensor:
    """Position ids that skip left padding: `offset` + index among the row's real tokens.

    Explicit positions make a row's output independent of how much padding its batch needed
    (RoPE and learned positions alike). Padding positions get `offset` (they are masked anyway).
    """
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0) + offset
