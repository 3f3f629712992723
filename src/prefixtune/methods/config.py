"""MethodConfig: everything that defines a method's trainable part, saved next to its tensors (method.json)."""

from dataclasses import asdict, dataclass, field

from ..configs import setting


@dataclass
class MethodConfig:
    """A method and its own settings; `prefixtune train` takes each field as a flag (configs.add_arguments)."""

    method: str
    prefix_len: int | None = setting(None, "P, virtual tokens (prefix, embedding, infix); default: the init text's "
                                     "token count, else 10")
    mid_dim: int = setting(512, "hidden size of the reparametrization MLP (the paper: 512; XSum 800)")
    reparam: bool = setting(True, "train P through the MLP, P = MLP(P') (the paper); --no-reparam optimizes P "
                            "directly")
    init_text: str | None = setting(None, "initialize the prefix from the model's activations on these real words")
    adapter_fraction: float = setting(0.001, "adapter size as a fraction of the base model's parameters (the "
                                      "paper's 0.1% and 3%)")
    adapter_design: str = setting("lin", "lin: one adapter with LayerNorm after each block (Lin et al. 2020, as "
                                  "the authors' code); houlsby: two per block, after attention and after the "
                                  "feed-forward", choices=("lin", "houlsby"))
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.prefix_len is None and not self.init_text:
            self.prefix_len = 10

    def to_dict(self):
        return asdict(self)
