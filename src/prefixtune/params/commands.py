"""The command lines of the stages, built from one run's resolved settings (both engines run these): the grid's
settings become typed configs (configs.TrainConfig, configs.DecodeConfig, methods.config.MethodConfig) and the
configs their flags (configs.to_argv), the same flags `prefixtune train` and `decode` read back."""

import dataclasses
import shlex
from pathlib import Path

from ..configs import DecodeConfig, SelectConfig, TrainConfig, to_argv
from ..methods.config import MethodConfig
from ..methods.config import method_config as make_config
from ..registry import (
    PREFIX_METHODS,  # methods whose runs have a prefix length and init
)

TRAIN_FIELDS = {f.name for f in dataclasses.fields(TrainConfig)}
DECODE_FIELDS = {f.name for f in dataclasses.fields(DecodeConfig)}


def train_config(hp: dict, seed: int, dev_file) -> TrainConfig:
    """The TrainConfig of one run's resolved `train` settings (a null in params.yaml: the config's default)."""
    values = {k: v for k, v in hp.items() if k in TRAIN_FIELDS and v is not None}
    if not dev_file:  # model selection settings apply with a dev set only
        for k in ("eval_every", "eval_every_alt", "patience"):
            values.pop(k, None)
    return TrainConfig(**{**values, "seed": seed})


def select_config(hp: dict, dp: dict, dev_file) -> SelectConfig:
    """What model selection looks at: the dev loss, or ROUGE-2 of the dev set decoded as the run decodes its test
    set (the authors' low-data XSum validates with the test generation, seq2seq/finetune.py:245-261@7544769)."""
    by = hp.get("select_by") or "dev_loss"
    if not dev_file or by == "dev_loss":
        return SelectConfig()
    d = decode_config(dp)
    return SelectConfig(select_by=by, dev_beam=d.beam, dev_length_penalty=d.length_penalty,
                        dev_max_new_tokens=d.max_new_tokens, dev_min_new_tokens=d.min_new_tokens,
                        dev_batch_size=d.batch_size)


def method_config(base, mcfg: dict, hp: dict, prefix_len, init_text) -> MethodConfig:
    """The MethodConfig of one run: the method label's own settings (`methods:`) over `train`'s."""
    def get(key):
        return mcfg.get(key, hp[key])

    if base == "adapter":
        return make_config(base, adapter_fraction=float(get("adapter_fraction")),
                           adapter_design=get("adapter_design"))
    if base not in PREFIX_METHODS:
        return make_config(base)
    kw = {"mid_dim": get("mid_dim"), "reparam": get("reparam")} if base == "prefix" else {}
    return make_config(base, prefix_len=prefix_len, init_text=init_text, **kw)


def train_cmd(model, base, mcfg, hp, train_file, out, seed, prefix_len, init_text, dev_file=None, dp=None):
    """`prefixtune train` of one run: the run's files, then the flags of its MethodConfig, TrainConfig and
    SelectConfig (those that differ from the defaults, configs.to_argv; `dp`: the run's decode settings)."""
    method, train = method_config(base, mcfg, hp, prefix_len, init_text), train_config(hp, seed, dev_file)
    a = ["prefixtune", "train", "--model", model, "--method", base, "--train", train_file, "--out", out]
    a += ["--dev", dev_file] if dev_file else []
    # P is given when the grid fixes it; None (an init text's token count) and the methods without P: not
    skip = ("method", "extra") + (() if base in PREFIX_METHODS and prefix_len is not None else ("prefix_len",))
    a += to_argv(method, skip) + to_argv(train) + to_argv(select_config(hp, dp or {}, dev_file))
    return shlex.join(a) + (" " + hp["extra"] if hp.get("extra") else "")


def decode_config(dp: dict) -> DecodeConfig:
    return DecodeConfig(**{k: v for k, v in dp.items() if k in DECODE_FIELDS and v is not None})


def decode_cmd(model, method_dir, test_input, hyp, dp, alt_of=None):
    """`prefixtune decode` of one run and test set, with the flags of its DecodeConfig; `alt_of`: decode the
    second selection rule's parameters, copying `alt_of` (the first rule's output) when both kept the same step."""
    a = ["prefixtune", "decode", "--model", model, "--method-dir", method_dir, "--input", test_input, "--out", hyp,
         *to_argv(decode_config(dp))]
    if alt_of:
        a += ["--selection", "alt", "--same-step-as", alt_of]
    return shlex.join(a) + (" " + dp["extra"] if dp.get("extra") else "")


def score_cmd(task, hyp, refs, out, test_input):
    return shlex.join(["prefixtune", "score", "--task", task, "--hyp", hyp, "--ref", refs, "--out", out]
                      + (["--categories", test_input] if task == "webnlg" else []))


def testset_cmd(src_input, src_refs, out_input, out_refs, sample=None, seed=0, first=None):
    """The test slice: `sample` inputs drawn at random with `seed` (when set), then the first `first` (when set),
    with their reference groups (prefixtune.testset)."""
    return shlex.join(["prefixtune", "testset", "--input", src_input, "--refs", src_refs,
                       *(["--sample", str(sample), "--seed", str(seed)] if sample else []),
                       *(["--first", str(first)] if first else []), "--out", out_input, "--out-refs", out_refs])


def download_cmd(source, mirror=None):
    a = ["prefixtune", "download", "--dataset", source, "--out", f"data/raw/{source}"]
    return shlex.join(a + (["--mirror", mirror] if mirror else []))


def data_cmds(preset, data, used, sizes, samples):
    """(downloads, linearize commands, linearize inputs), each by source, for the sources a grid uses."""
    downloads, linearize, deps = {}, {}, {}
    for source, files in used.items():
        if files:  # a user's own files: nothing to download
            files = {k: v for k, v in files.items() if v}
            deps[source] = list(files.values())
            a = ["prefixtune", "linearize", "--dataset", "jsonl",
                 *(x for split, f in files.items() for x in (f"--{split}", f))]
        else:
            downloads[source] = download_cmd(source, data.get("mirror"))
            deps[source] = [f"data/raw/{source}"]
            a = ["prefixtune", "linearize", "--dataset", source, "--raw", f"data/raw/{source}"]
        a += ["--out", f"data/{preset}/{source}", "--seed", str(data.get("split_seed", 0))]
        if source in sizes:
            a += ["--sizes", *map(str, sorted(sizes[source])), "--samples", str(samples[source])]
        if data.get("max_source_tokens"):
            a += ["--max-source-tokens", str(data["max_source_tokens"])]
        linearize[source] = shlex.join(a)
    return downloads, linearize, deps


def settings(base, mcfg, hp, dp, init_text, dev_file, limit) -> dict:
    """A run's resolved training and decoding settings (null where one does not apply)."""
    adapter = base == "adapter"
    return {"adapter_fraction": mcfg.get("adapter_fraction", hp["adapter_fraction"]) if adapter else None,
            "adapter_design": mcfg.get("adapter_design", hp["adapter_design"]) if adapter else None,
            "lr": hp["lr"], "batch_size": hp["batch_size"], "max_steps": hp["max_steps"], "epochs": hp["epochs"],
            "warmup_steps": hp["warmup_steps"], "max_source_len": hp.get("max_source_len"), "loss": hp["loss"],
            "dtype": hp["dtype"],
            "init_text": init_text, "source_prefix": hp.get("source_prefix"),
            "dev": dev_file, "eval_every": hp.get("eval_every") if dev_file else None,
            "eval_every_alt": hp.get("eval_every_alt") if dev_file else None,
            "select_by": (hp.get("select_by") or "dev_loss") if dev_file else None,
            "patience": hp.get("patience") if dev_file else None, "test_limit": limit, "beam": dp["beam"],
            "length_penalty": dp["length_penalty"], "hyp_length": dp["hyp_length"],
            "max_new_tokens": dp["max_new_tokens"],
            "min_new_tokens": dp.get("min_new_tokens", 0), "ban_newlines": bool(dp.get("ban_newlines"))}
