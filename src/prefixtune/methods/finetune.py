"""Fine-tuning baselines: all weights (`finetune`) or the top two layers only (`finetune-top2`)."""

from .base import Method


class Finetune(Method):
    """Every base-model weight trains; the export is the whole model's state."""

    name = "finetune"

    def __init__(self, model, tokenizer, config):
        super().__init__(model, tokenizer, config)
        for p in self.trained_modules_parameters():
            p.requires_grad_(True)

    def trained_modules_parameters(self):
        return list(self.model.parameters())

    def exported(self):
        names = {id(p) for p in self.trained_modules_parameters()}
        # Tied weights (GPT-2's embedding and LM head) appear once: safetensors refuses shared storage.
        return {n: p.detach() for n, p in self.model.named_parameters() if id(p) in names}

    def load_exported(self, tensors):
        missing = set(self.exported()) - set(tensors)
        if missing:
            raise KeyError(f"missing tensors: {sorted(missing)[:3]}")
        params = dict(self.model.named_parameters())
        for n, t in tensors.items():
            params[n].data.copy_(t)


class FinetuneTop2(Finetune):
    """The paper's FT-top2 baseline as the authors' code trains it (gpt2/run_language_modeling.py:798-805,
    `top_layers == 2`): the top two transformer blocks, the final LayerNorm (`ln_f`) and the token embedding
    (`wte`, which GPT-2 ties to the LM head). The paper says only "the top 2 layers"; its code is the
    definition we follow. On a model whose LM head is not tied, both embedding matrices train (in GPT-2 the
    one matrix is both). BART (no FT-top2 in the authors' code): the decoder's top two layers, the shared
    embedding and the decoder's final LayerNorm where the model has one."""

    name = "finetune-top2"

    def trained_modules_parameters(self):
        modules = [*top_layers(self.model)[-2:], final_norm(self.model),
                   self.model.get_input_embeddings(), self.model.get_output_embeddings()]
        unique = {id(p): p for m in modules if m is not None for p in m.parameters()}  # tied weights once
        return list(unique.values())


def top_layers(model):
    """The stack of transformer blocks whose top two `finetune-top2` trains (decoder side for BART)."""
    base = model.base_model
    if hasattr(base, "h"):  # GPT-2
        return list(base.h)
    if hasattr(base, "layers"):  # Llama
        return list(base.layers)
    if hasattr(base, "decoder"):  # BART
        return list(base.decoder.layers)
    raise TypeError(f"don't know the layers of {type(model).__name__}")


def final_norm(model):
    """The LayerNorm after the last block (GPT-2 `ln_f`, Llama `norm`, BART's decoder `layer_norm`), or None."""
    base = model.base_model
    if hasattr(base, "ln_f"):
        return base.ln_f
    if hasattr(base, "norm"):
        return base.norm
    return getattr(getattr(base, "decoder", None), "layer_norm", None)
