"""Key/value caches as transformers holds them: the shim for the name of a model's cache argument, and the
key/value shapes of a model (one definition for prefix-tuning, infix and the PEFT import)."""

import inspect

from transformers import LlamaForCausalLM

# transformers renamed the models' `past_key_values` argument and output field to `cache` (5.2x); the old name
# warns on every call and goes in 5.40. 5.17, the oldest release we support (the GPU image), knows only the
# old one. Every model call here passes its cache through `cache_arg` and reads it back with `model_cache`.
CACHE = "cache" if "cache" in inspect.signature(LlamaForCausalLM.forward).parameters else "past_key_values"




def cache_arg(cache) -> dict:
    """The keyword argument that hands `cache` to a model (or to its attention layers) in this transformers."""
    return {CACHE: cache}


def model_cache(output):
    """The cache a model call returned."""
    return getattr(output, CACHE)


def kv_shape(config):
    """(layers, key/value heads, head_dim) of a decoder-only model config (GPT-2, Llama: GQA-aware)."""
    config = config.get_text_config()
    heads = config.num_attention_heads
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    return config.num_hidden_layers, kv_heads, head_dim


def kv_groups(model):
    """{group: (layers, kv_heads, head_dim)} and the hidden size: `prefix` for a decoder-only model; `encoder`,
    `decoder` and `cross` for an encoder-decoder (BART)."""
    cfg = model.config
    if cfg.is_encoder_decoder:  # BART-like
        d = cfg.d_model
        enc_h, dec_h = cfg.encoder_attention_heads, cfg.decoder_attention_heads
        return {"encoder": (cfg.encoder_layers, enc_h, d // enc_h),
                "decoder": (cfg.decoder_layers, dec_h, d // dec_h),
                "cross": (cfg.decoder_layers, dec_h, d // dec_h)}, d
    return {"prefix": kv_shape(cfg)}, cfg.get_text_config().hidden_size
