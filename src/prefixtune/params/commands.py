"""The command lines of the stages, built from one run's resolved settings (both engines run these)."""

import shlex
from pathlib import Path

from ..registry import PREFIX_METHODS  # methods whose runs have a prefix length and init


def _num(v):
    return repr(float(v)) if isinstance(v, str) else str(v)


def train_cmd(model, base, mcfg, hp, train_file, out, seed, prefix_len, init_text, dev_file=None):
    a = ["prefixtune", "train", "--model", model, "--method", base, "--train", train_file, "--out", out]
    if dev_file:
        a += ["--dev", dev_file, "--eval-every", str(hp["eval_every"])]
        if hp.get("eval_every_alt"):
            a += ["--eval-every-alt", str(hp["eval_every_alt"])]
        if hp.get("patience"):
            a += ["--patience", str(hp["patience"])]
    if base in PREFIX_METHODS and prefix_len is not None:  # None: the init text's token count
        a += ["--prefix-len", str(prefix_len)]
    if base == "prefix":
        a += ["--mid-dim", str(mcfg.get("mid_dim", hp["mid_dim"]))]
        if not mcfg.get("reparam", hp["reparam"]):
            a += ["--no-reparam"]
    if init_text:
        a += ["--init-text", init_text]
    if hp.get("source_prefix"):
        a += ["--source-prefix", hp["source_prefix"]]
    if base == "adapter":
        a += ["--adapter-fraction", _num(mcfg.get("adapter_fraction", hp["adapter_fraction"])),
              "--adapter-design", mcfg.get("adapter_design", hp["adapter_design"])]
    a += ["--epochs", str(hp["epochs"])]
    if hp.get("max_steps") is not None:
        a += ["--max-steps", str(hp["max_steps"])]
    a += ["--lr", _num(hp["lr"]), "--batch-size", str(hp["batch_size"]), "--grad-accum", str(hp["grad_accum"]),
          "--warmup-steps", str(hp["warmup_steps"]), "--loss", hp["loss"], "--dtype", hp["dtype"],
          "--seed", str(seed)]
    if hp.get("threads"):
        a += ["--threads", str(hp["threads"])]
    if hp.get("max_source_len"):
        a += ["--max-source-len", str(hp["max_source_len"])]
    return shlex.join(a) + (" " + hp["extra"] if hp.get("extra") else "")


def decode_cmd(model, method_dir, test_input, hyp, dp, alt_of=None):
    """`alt_of`: decode the second selection rule's parameters, copying `alt_of` (the first rule's output)
    when both rules kept the same step."""
    a = ["prefixtune", "decode", "--model", model, "--method-dir", method_dir, "--input", test_input, "--out", hyp,
         "--beam", str(dp["beam"]), "--length-penalty", _num(dp["length_penalty"]),
         "--hyp-length", dp["hyp_length"], "--max-new-tokens", str(dp["max_new_tokens"]),
         "--batch-size", str(dp["batch_size"])]
    if dp.get("max_source_len"):
        a += ["--max-source-len", str(dp["max_source_len"])]
    if dp.get("min_new_tokens"):
        a += ["--min-new-tokens", str(dp["min_new_tokens"])]
    if dp.get("ban_newlines"):
        a += ["--ban-newlines"]
    if alt_of:
        a += ["--selection", "alt", "--same-step-as", alt_of]
    return shlex.join(a) + (" " + dp["extra"] if dp.get("extra") else "")


def score_cmd(task, hyp, refs, out, test_input):
    return shlex.join(["prefixtune", "score", "--task", task, "--hyp", hyp, "--ref", refs, "--out", out]
                      + (["--categories", test_input] if task == "webnlg" else []))


def testset_cmd(src_input, src_refs, n, out_input, out_refs):
    """The first n test inputs and their reference groups (refs: groups separated by blank lines)."""
    q = shlex.quote
    return (f"mkdir -p {q(str(Path(out_input).parent))} && head -n {n} {q(src_input)} > {q(out_input)} && "
            f"awk 'BEGIN {{RS=\"\"; ORS=\"\\n\\n\"}} NR <= {n}' {q(src_refs)} > {q(out_refs)}")


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
            "select_by": "dev_loss" if dev_file else None,
            "patience": hp.get("patience") if dev_file else None, "test_limit": limit, "beam": dp["beam"],
            "length_penalty": dp["length_penalty"], "hyp_length": dp["hyp_length"],
            "max_new_tokens": dp["max_new_tokens"],
            "min_new_tokens": dp.get("min_new_tokens", 0), "ban_newlines": bool(dp.get("ban_newlines"))}
