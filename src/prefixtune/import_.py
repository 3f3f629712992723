"""`prefixtune import --from peft PEFT_DIR --out DIR [--model NAME]`: a PEFT prefix-tuning checkpoint as a
`prefix` method directory (see prefixtune.export for the layouts)."""

from pathlib import Path

import torch

from .errors import InputError, where
from .export import from_peft_rows
from .files import read_json_object


def add_arguments(p):
    p.add_argument("--from", dest="source", required=True, choices=["peft"], help="source format")
    p.add_argument("peft_dir", type=Path, metavar="PEFT_DIR", help="folder with adapter_config.json")
    p.add_argument("--out", required=True, type=Path, help="method directory to write")
    p.add_argument("--model", default=None,
                   help="base model (built-in name, folder or hub id); default: the config's base_model_name_or_path")


def read_peft(peft_dir) -> tuple[dict, dict]:
    """(adapter_config.json, tensors) of a PEFT checkpoint folder; InputError naming the file if unusable."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    peft_dir = Path(peft_dir)
    config_path = peft_dir / "adapter_config.json"
    config = read_json_object(config_path, "no such file (not a PEFT checkpoint folder?)")
    if config.get("peft_type") != "PREFIX_TUNING":
        raise InputError(f"{where(config_path, entry='peft_type')}: {config.get('peft_type')!r} is not PEFT prefix "
                         "tuning")
    if config.get("task_type") != "CAUSAL_LM" or config.get("num_transformer_submodules", 1) != 1:
        raise InputError(f"{where(config_path, entry='task_type')}: {config.get('task_type')!r}: only decoder-only "
                         "(CAUSAL_LM) prefixes import; an encoder-decoder prefix from PEFT has no encoder part")
    weights = peft_dir / "adapter_model.safetensors"
    if weights.is_file():
        try:
            tensors = load_file(str(weights))
        except (SafetensorError, OSError, ValueError) as e:
            raise InputError(f"{weights}: unreadable safetensors file ({e})") from None
    elif (peft_dir / "adapter_model.bin").is_file():
        tensors = torch.load(peft_dir / "adapter_model.bin", map_location="cpu", weights_only=True)
    else:
        raise InputError(f"{weights}: no such file (nor adapter_model.bin)")
    return config, tensors


def merged_rows(config: dict, tensors: dict, where_: str) -> torch.Tensor:
    """PEFT's prompt_embeddings as the projected rows (P, layers*2*token_dim), applying an MLP once if the
    checkpoint holds one instead of its output."""
    p, layers, dim = config["num_virtual_tokens"], config["num_layers"], config["token_dim"]
    want = (p, layers * 2 * dim)
    rows = tensors.get("prompt_embeddings")
    if rows is not None and tuple(rows.shape) == want:
        return rows.float()
    mlp = {k.split("transform.", 1)[1]: v for k, v in tensors.items() if "transform." in k}
    emb = rows if rows is not None else next((v for k, v in tensors.items() if k.endswith("embedding.weight")), None)
    if emb is not None and config.get("prefix_projection") and {"0.weight", "0.bias", "2.weight", "2.bias"} <= set(mlp):
        with torch.no_grad():
            hidden = torch.tanh(emb.float() @ mlp["0.weight"].float().T + mlp["0.bias"].float())
            out = hidden @ mlp["2.weight"].float().T + mlp["2.bias"].float()
        if tuple(out.shape) == want:
            return out
    raise InputError(f"{where_}: expected 'prompt_embeddings' of shape {want} (or an embedding with its "
                     f"projection MLP), found {sorted((k, tuple(v.shape)) for k, v in tensors.items())}")


def from_peft(peft_dir, out, model_name=None) -> dict:
    """Write PEFT_DIR's prefix as a `prefix` method directory `out`; returns its method.json dict."""
    from .files import atomic_dir
    from .method_dir import save_method
    from .methods import build
    from .methods.config import VirtualTokenConfig
    from .methods.kv import kv_shape
    from .models import load_model

    config, tensors = read_peft(peft_dir)
    model_name = model_name or config.get("base_model_name_or_path")
    if not model_name:
        raise InputError(f"{where(Path(peft_dir) / 'adapter_config.json', entry='base_model_name_or_path')}: "
                         "empty; name the base model with --model")
    rows = merged_rows(config, tensors, str(Path(peft_dir) / "adapter_model.safetensors"))
    model, tokenizer = load_model(model_name)
    if model.config.is_encoder_decoder:
        raise InputError(f"--model {model_name}: an encoder-decoder model; a PEFT CAUSAL_LM prefix is for "
                         "decoder-only models")
    layers, kv_heads, head_dim = kv_shape(model.config)
    if rows.shape[1] != layers * 2 * kv_heads * head_dim:
        raise InputError(f"{peft_dir}: its prefix has {rows.shape[1]} values per virtual token; '{model_name}' "
                         f"needs {layers * 2 * kv_heads * head_dim} ({layers} layers x 2 x {kv_heads} kv heads x "
                         f"{head_dim}): another base model?")
    with torch.random.fork_rng(devices=[]):
        method = build(model, tokenizer, VirtualTokenConfig("prefix", prefix_len=rows.shape[0], reparam=False))
    method.load_exported({"prefix": from_peft_rows(rows, layers, kv_heads, head_dim)})
    with atomic_dir(out) as tmp:
        return save_method(method, tmp, {"model": model_name, "imported_from": {"format": "peft",
                                                                                 "dir": str(peft_dir)}})


def run(args):
    meta = from_peft(args.peft_dir, args.out, args.model)
    print(f"wrote {args.out}: prefix P={meta['config']['prefix_len']} on '{meta['model']}' "
          f"({meta['trainable_params']} values)")
