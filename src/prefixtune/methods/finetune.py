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
    """Only the top two transformer layers train (the paper's FT-top2 baseline)."""

    name = "finetune-top2"

    def trained_modules_parameters(self):
        layers = top_layers(self.model)
        return [p for layer in layers[-2:] for p in layer.parameters()]


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
