"""The typed settings of training and decoding, each declared once with its default and help (as PEFT's tuner
configs are), and the one translation between them and a stage's command line.

    TrainConfig     the optimizer, the budget, model selection on dev, the run's source prefix
    SelectConfig    what model selection on dev looks at: the dev loss, or ROUGE-2 of a decode of the dev set
    DecodeConfig    beam search and its batching
    (MethodConfig, in methods/config.py, is the method's own part: P, the MLP, the init, the adapter size)

`add_arguments(parser, Config)` makes one `--flag` per field (`--no-<name>` for a field that defaults to True);
`from_args(Config, args)` reads them back; `to_argv(config)` writes the flags of the fields that differ from
their defaults. The grid builds these configs from params.yaml and writes their flags into the stage commands,
so a setting is typed here, named in params.yaml (whose `defaults` equal these defaults: a test), and reaches
its use through the config; nothing re-types it in between.
"""

import argparse
import dataclasses
import types
import typing
from dataclasses import dataclass, field

from .errors import InputError

LOSSES = ("sequence", "token")  # how `Method.loss` normalizes: per target sequence (the paper's), per token
DTYPES = ("float32", "bfloat16")
HYP_LENGTHS = ("sequence", "new-tokens")
SELECT_BY = ("dev_loss", "rouge2")


def setting(default, help, **argparse_kwargs):
    """A config field: its default, its help, and anything argparse needs beyond the type (choices, metavar)."""
    return field(default=default, metadata={"help": help, **argparse_kwargs})


@dataclass
class TrainConfig:
    """Training hyper-parameters (stored in method.json under `hparams`)."""

    epochs: int = setting(5, "passes over the training set (--max-steps wins)")
    max_steps: int | None = setting(None, "optimizer steps; wins over --epochs when set")
    lr: float = setting(5e-5, "peak learning rate (AdamW, linear warm-up then linear decay)")
    batch_size: int = setting(5, "examples per micro-batch")
    grad_accum: int = setting(1, "micro-batches per optimizer step")
    warmup_steps: int = setting(0, "linear warm-up steps")
    weight_decay: float = setting(0.0, "AdamW weight decay")
    max_grad_norm: float = setting(1.0, "gradient clipping norm, as the paper's transformers Trainer; 0: no clipping")
    loss: str = setting("sequence", "sequence: NLL summed over each target, mean over the batch (the authors' "
                        "objective_mode 1 for prefix-tuning); token: mean over target tokens (their baselines)",
                        choices=LOSSES)
    dtype: str = setting("float32", "bfloat16: mixed precision (autocast; the trained weights stay float32); "
                         "slower on CPUs without AVX-512 BF16 (see bench/train_step.py)", choices=DTYPES)
    seed: int = setting(0, "seed of the initialization, the example order and dropout")
    save_every: int = setting(500, "checkpoint into OUT.partial/ every N optimizer steps (0: never)")
    max_source_len: int = setting(256, "source tokens kept (longer sources are cut)")
    max_target_len: int = setting(128, "target tokens kept")
    eval_every: int | None = setting(None, "with --dev: dev loss every N optimizer steps and at the last one; the "
                                     "parameters with the lowest are kept", metavar="N")
    eval_every_alt: int | None = setting(None, "with --dev: a second selection rule on the same training, dev loss "
                                         "also every M steps; its best parameters are kept beside the first "
                                         "rule's (alt.safetensors; decode --selection alt)", metavar="M")
    patience: int | None = setting(None, "with --dev: stop after K evaluations of the first rule without a lower "
                                   "dev loss (default: never)", metavar="K")
    source_prefix: str | None = setting(None, "text written before every source, in training and (from method.json) "
                                        "in decoding: the authors' low-data token for fine-tuning (' {token} {src} "
                                        "{bos} {tgt} {eos}')", metavar="TEXT")
    device: str = setting("auto", "auto (CUDA when present), cpu, cuda, cuda:1, ...")
    threads: int | None = setting(None, "torch CPU threads (default: torch's)")

    def check(self, has_dev=False):
        """InputError for values no run can use (`has_dev`: a dev set is given, see --dev)."""
        if has_dev and not self.eval_every:
            raise InputError("--dev needs --eval-every N (dev loss every N optimizer steps)")
        for name in ("patience", "eval_every_alt"):
            if getattr(self, name) is not None and not has_dev:
                raise InputError(f"--{flag(name)} needs --dev")
        for name in ("epochs", "batch_size", "grad_accum", "max_source_len", "max_target_len"):
            positive(self, name)
        for name in ("max_steps", "patience", "eval_every", "eval_every_alt", "threads"):
            if getattr(self, name) is not None:
                positive(self, name)
        for name in ("warmup_steps", "weight_decay", "max_grad_norm", "save_every"):
            if getattr(self, name) < 0:
                raise InputError(f"--{flag(name)} must not be negative (got {getattr(self, name)})")
        positive(self, "lr")
        if self.source_prefix is not None and not self.source_prefix.strip():
            raise InputError("--source-prefix is empty (leave it out for none)")


@dataclass
class SelectConfig:
    """What model selection on the dev set looks at (with --dev and --eval-every): the dev loss, or the ROUGE-2 of
    the dev sources decoded by beam search (the authors' low-data XSum keeps the epoch with the highest validation
    ROUGE-2, lightning_base.py:762@7544769, its validation decoding the test's). Apart from TrainConfig, and in
    method.json only when not the default, so that a dev-loss run writes what it wrote before it existed."""

    select_by: str = setting("dev_loss", "with --dev: dev_loss keeps the parameters with the lowest dev loss; rouge2 "
                             "the highest ROUGE-2 F (rouge-score, stemmed; mean over the dev set) of the dev sources "
                             "decoded with the --dev-* settings (the dev loss is still logged)", choices=SELECT_BY)
    dev_beam: int = setting(5, "with --select-by rouge2: the dev decode's beam size")
    dev_length_penalty: float = setting(1.0, "with --select-by rouge2: the dev decode's length penalty")
    dev_max_new_tokens: int = setting(100, "with --select-by rouge2: the dev decode's new tokens at most")
    dev_min_new_tokens: int = setting(0, "with --select-by rouge2: no end of sequence before this many new tokens")
    dev_batch_size: int = setting(50, "with --select-by rouge2: dev inputs per decoding batch")

    def check(self, has_dev=False):
        if self.select_by == "rouge2" and not has_dev:
            raise InputError("--select-by rouge2 needs --dev")
        if self.select_by == "dev_loss":
            for f in dataclasses.fields(self):
                if f.name != "select_by" and getattr(self, f.name) != f.default:
                    raise InputError(f"--{flag(f.name)} needs --select-by rouge2 (the dev loss needs no decode)")
        for name in ("dev_beam", "dev_max_new_tokens", "dev_batch_size"):
            positive(self, name)
        if not 0 <= self.dev_min_new_tokens < self.dev_max_new_tokens:
            raise InputError(f"--dev-min-new-tokens must be at least 0 and below --dev-max-new-tokens "
                             f"(got {self.dev_min_new_tokens})")

    def decode_kwargs(self) -> dict:
        """The dev decode's arguments of decoding.search.decode."""
        return {"beam": self.dev_beam, "length_penalty": self.dev_length_penalty, "batch_size": self.dev_batch_size,
                "max_new_tokens": self.dev_max_new_tokens, "min_new_tokens": self.dev_min_new_tokens}


@dataclass
class DecodeConfig:
    """Beam search (the paper's decoding) and how its inputs are batched."""

    beam: int = setting(5, "beam size (1: greedy)")
    length_penalty: float = setting(1.0, "a hypothesis scores sum log-prob / length ** this")
    hyp_length: str = setting("sequence", "the length the penalty divides by: sequence = the prompt and the new "
                              "tokens without eos (the authors' 2021 transformers), new-tokens = the new tokens with "
                              "eos (transformers today)", choices=HYP_LENGTHS)
    max_new_tokens: int = setting(100, "new tokens at most (the authors' --length 100)")
    min_new_tokens: int = setting(0, "no end of sequence before this many new tokens (XSum: 10)")
    batch_size: int = setting(50, "input rows per batch (each times --beam); 50 measured 20-23% faster than 25 on "
                              "2 CPU cores (docs/benchmarks.md)")
    max_source_len: int = setting(256, "source tokens kept")
    ban_newlines: bool = setting(False, "never generate a newline token (the authors' table-to-text bad_words_ids)")
    dtype: str = setting("float32", "the base model's dtype while decoding", choices=DTYPES)
    device: str = setting("auto", "auto (CUDA when present), cpu, cuda, cuda:1, ...")

    def check(self):
        for name in ("beam", "max_new_tokens", "batch_size", "max_source_len"):
            positive(self, name)
        if not 0 <= self.min_new_tokens < self.max_new_tokens:
            raise InputError(f"--min-new-tokens must be at least 0 and below --max-new-tokens "
                             f"(got {self.min_new_tokens})")


# ----- one translation to and from command lines -----
def flag(name: str) -> str:
    return name.replace("_", "-")


def positive(config, name):
    if not getattr(config, name) > 0:
        raise InputError(f"--{flag(name)} must be positive (got {getattr(config, name)})")


def _scalar_type(tp):
    """int for `int | None`, and so on."""
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        (tp,) = [a for a in typing.get_args(tp) if a is not type(None)]
    return tp


def add_arguments(parser, cls, skip=()):
    """One command-line option per field of the config class `cls` (except `skip`), with its default and help."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        extra = {k: v for k, v in f.metadata.items() if k != "help"}
        help_ = f.metadata["help"].replace("%", "%%")  # argparse formats help with %
        tp = _scalar_type(hints[f.name])
        if tp is bool:
            name = f"--no-{flag(f.name)}" if f.default else f"--{flag(f.name)}"
            parser.add_argument(name, dest=f.name, action="store_false" if f.default else "store_true",
                                help=help_)
        else:
            parser.add_argument(f"--{flag(f.name)}", dest=f.name, type=tp, default=f.default,
                                help=help_ + (f" (default {f.default})" if f.default is not None else ""),
                                **extra)


def from_args(cls, args: argparse.Namespace, **given):
    """The config of `cls` that parsed arguments describe (fields missing from `args` keep their default)."""
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if hasattr(args, f.name)}
    return cls(**{**values, **given})


def to_argv(config, skip=()) -> list[str]:
    """The options that give `config` back through `add_arguments`: one per field that differs from its
    default (a float as Python writes it, e.g. 5e-05)."""
    out = []
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if f.name in skip or value == f.default:
            continue
        if isinstance(value, bool):
            out.append(f"--no-{flag(f.name)}" if f.default else f"--{flag(f.name)}")
        else:
            out += [f"--{flag(f.name)}", repr(value) if isinstance(value, float) else str(value)]
    return out
