"""`prefixtune export`: a decoder-only prefix as PEFT's prefix tuning, and the row layout both directions share
(the command that reads PEFT checkpoints back, `prefixtune import`, is import_.py).

    prefixtune export --method-dir DIR --to peft --out PEFT_DIR

PEFT (`PrefixTuningConfig`, `PeftModel.from_pretrained`) keeps a prefix as `adapter_config.json` +
`adapter_model.safetensors` holding `prompt_embeddings`: one row per virtual token, [layer 0 key, layer 0
value, layer 1 key, ...], each (kv_heads, head_dim) flattened -- our merged P, permuted. Export writes it
without projection (the MLP was dropped when training ended), through PEFT's own `save_pretrained`, so the
config is the one PEFT itself builds for that base model. Import reads a PEFT checkpoint with or without
projection: PEFT saves the projected prefix (the MLP's output) as `prompt_embeddings`; a checkpoint that
holds the MLP instead (`prompt_encoder...transform.*` and a (P, token_dim) embedding) gets it applied once,
then dropped. Either way the result is a `prefix` method directory that `prefixtune decode` reads.

What PEFT cannot hold is refused in one line: BART's prefix (PEFT has no encoder prefix), and the
embedding-only, infix, adapter and fine-tuning methods.
"""

from pathlib import Path

import torch

from .errors import InputError, where
from .files import atomic_dir


def add_arguments(p):
    p.add_argument("--method-dir", required=True, type=Path, help="a trained method directory (prefixtune train)")
    p.add_argument("--to", required=True, choices=["peft"], help="target format")
    p.add_argument("--out", required=True, type=Path, help="folder to write (PeftModel.from_pretrained reads it)")


def _need_peft():
    try:
        import peft  # noqa: F401
    except ImportError:
        raise InputError("PEFT is not installed: pip install peft") from None


def peft_rows(prefix: torch.Tensor) -> torch.Tensor:
    """Our (layers, 2, kv_heads, P, head_dim) -> PEFT's prompt_embeddings (P, layers*2*kv_heads*head_dim)."""
    return prefix.permute(3, 0, 1, 2, 4).reshape(prefix.shape[3], -1)


def from_peft_rows(rows: torch.Tensor, layers: int, kv_heads: int, head_dim: int) -> torch.Tensor:
    """The inverse of `peft_rows`."""
    return rows.reshape(rows.shape[0], layers, 2, kv_heads, head_dim).permute(1, 2, 3, 0, 4).contiguous()


def to_peft(method_dir, out) -> Path:
    """Write the prefix of `method_dir` as a PEFT prefix-tuning checkpoint in `out`; return `out`."""
    from .method_dir import load_method, read_info

    info = read_info(method_dir)
    method_name = info.get("method") or info["config"].get("method")
    if method_name != "prefix":
        raise InputError(f"{where(Path(method_dir) / 'method.json', entry='method')}: '{method_name}' has no "
                         "PEFT prefix-tuning form (only decoder-only 'prefix' methods export)")
    _need_peft()
    method = load_method(method_dir)
    if method.encoder_decoder:
        raise InputError(f"{method_dir}: a BART prefix has an encoder prefix, which PEFT's prefix tuning cannot "
                         "hold (it prefixes decoder self- and cross-attention only)")
    from peft import PrefixTuningConfig, get_peft_model

    prefix = method.exported()["prefix"]
    config = PrefixTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=prefix.shape[3], prefix_projection=False)
    peft_model = get_peft_model(method.model, config)
    embedding = peft_model.prompt_encoder["default"].embedding.weight
    rows = peft_rows(prefix)
    if embedding.shape != rows.shape:
        raise InputError(f"{method_dir}: PEFT lays this model's prefix out as {tuple(embedding.shape)}, not "
                         f"{tuple(rows.shape)} (a model type PEFT post-processes differently)")
    with torch.no_grad():
        embedding.copy_(rows)
    peft_model.peft_config["default"].base_model_name_or_path = info["model"]
    with atomic_dir(out) as tmp:
        peft_model.save_pretrained(tmp)
    return Path(out)


def run(args):
    out = to_peft(args.method_dir, args.out)
    print(f"wrote {out}: PEFT prefix tuning (load with PeftModel.from_pretrained(base_model, '{out}'))")
