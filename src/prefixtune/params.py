"""params.yaml -> the run grid: the one grid definition both Snakemake and DVC use.

params.yaml has three top-level keys:
  preset    the switch: the name of one entry of `presets` (cpu, paper, tiny, ...)
  defaults  settings shared by every preset
  presets   name -> overrides, deep-merged over `defaults` (mappings merge key by key; lists
            and scalars replace)

Every key is checked against SCHEMA: an unknown preset or a misspelled key is an InputError
naming params.yaml and the key, never a silent default.

`expand(settings)` turns the effective settings into a Grid: which raw datasets to download,
which to linearize (with the union of low-data sizes), which test slices to cut, and one Run per
(dataset, method, size, sample, seed, prefix length, init) cell of every experiment, each with a
stable id (its folder under runs/, e.g. `e2e/prefix/n100-s0-seed0-p10-random`) and the exact
`prefixtune train|decode|score` command lines. The Snakefile imports this module; DVC cannot
import Python, so `prefixtune params render` writes the same grid as a static dvc.yaml (a test
checks that the committed one is up to date) and the first DVC stage, `grid`, runs
`prefixtune params check`, which fails when params.yaml changed and dvc.yaml was not re-rendered.

Commands (`prefixtune params ...` or `python -m prefixtune.params ...`):
  show [--preset P]      print the effective settings and the run list
  render                 write dvc.yaml for params.yaml's preset
  use PRESET             set `preset:` in params.yaml (keeping its comments) and render
  check [--out FILE]     fail unless dvc.yaml is what `render` would write; touch FILE if given
"""

import argparse
import copy
import json
import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .code import code_deps  # noqa: F401 (the Snakefile's rules read it as P.code_deps)
from .errors import InputError

PARAMS = Path("params.yaml")
DVC_YAML = Path("dvc.yaml")
GRID_OK = "runs/grid.ok"
TABLES = ("main", "lowdata", "extrapolation", "ablations")
PREFIX_METHODS = ("prefix", "embedding", "infix")  # methods whose runs have a prefix length and init

# ---------------------------------------------------------------- schema


class Map:
    """A mapping with free keys (names matching `key`), each value checked against `value`."""

    def __init__(self, value, key=r"[A-Za-z0-9_][A-Za-z0-9_.\-]*"):
        self.value, self.key = value, re.compile(key)


class List:
    def __init__(self, item):
        self.item = item


NONE = type(None)
INT, OPT_INT, NUM, STR, OPT_STR, BOOL = (int,), (int, NONE), (int, float), (str,), (str, NONE), (bool,)
SIZE = (int, str)  # a number of training examples, or "full"

TRAIN = {
    "epochs": INT, "max_steps": OPT_INT, "lr": NUM, "batch_size": INT, "grad_accum": INT,
    "warmup_steps": INT, "prefix_len": INT, "mid_dim": INT, "reparam": BOOL,
    "adapter_fraction": NUM, "init": STR, "threads": OPT_INT, "max_source_len": OPT_INT, "loss": STR,
    "dev": BOOL, "eval_every": OPT_INT, "patience": OPT_INT, "extra": STR,
}
DECODE = {
    "beam": INT, "length_penalty": NUM, "max_new_tokens": INT, "batch_size": INT, "max_source_len": OPT_INT,
    "ban_newlines": BOOL, "extra": STR,
}
RESOURCES = {
    "cpus": INT, "mem_mb": INT, "disk_mb": INT, "runtime": INT, "gpus": INT, "gpu_model": STR,
    "slurm_partition": STR, "slurm_account": STR, "constraint": STR, "slurm_extra": STR,
}
SETTINGS = {
    "data": {"mirror": OPT_STR, "split_seed": INT, "max_source_tokens": OPT_INT, "test_limit": OPT_INT},
    # a built-in release (`source`) or a user's own JSONL files (`files`, see prefixtune.data.jsonl)
    "datasets": Map({"source": STR, "files": {"train": STR, "dev": OPT_STR, "test": STR}, "task": STR,
                     "model": STR, "split": OPT_STR, "tests": List(STR)}),
    "methods": Map({"method": STR, "adapter_fraction": NUM, "prefix_len": INT, "mid_dim": INT,
                    "reparam": BOOL}),
    "inits": Map(OPT_STR, key=r"[A-Za-z0-9_]+"),  # label (used in run ids, so no '-') -> init text
    "train": TRAIN,
    "decode": DECODE,
    "overrides": List({"when": {"dataset": STR, "method": STR, "size": SIZE, "experiment": STR},
                       "train": TRAIN, "decode": DECODE}),
    "experiments": Map({"table": STR, "datasets": List(STR), "methods": List(STR), "sizes": List(SIZE),
                        "samples": INT, "seeds": List(INT), "prefix_lens": List(INT), "inits": List(STR)}),
    "resources": Map(RESOURCES),
}
TOP = {"preset": STR, "defaults": SETTINGS, "presets": Map(SETTINGS)}
REQUIRED = {"datasets": ("task", "model"), "methods": ("method",), "experiments": ("table",
            "datasets", "methods")}


def _check(value, spec, where, path):
    """Raise InputError naming `where` and the dotted key path for anything not in `spec`."""
    name = ".".join(path) or "(top)"
    if isinstance(spec, dict):
        if not isinstance(value, dict):
            raise InputError(f"{where}: '{name}' must be a mapping, not {value!r}")
        for k, v in value.items():
            if k not in spec:
                raise InputError(f"{where}: unknown key '{'.'.join(path + [str(k)])}' "
                                 f"(known: {', '.join(spec)})")
            _check(v, spec[k], where, path + [k])
    elif isinstance(spec, Map):
        if not isinstance(value, dict):
            raise InputError(f"{where}: '{name}' must be a mapping, not {value!r}")
        for k, v in value.items():
            if not isinstance(k, str) or not spec.key.fullmatch(k):
                raise InputError(f"{where}: bad name '{'.'.join(path + [str(k)])}' "
                                 f"(allowed: {spec.key.pattern})")
            _check(v, spec.value, where, path + [k])
    elif isinstance(spec, List):
        if not isinstance(value, list):
            raise InputError(f"{where}: '{name}' must be a list, not {value!r}")
        for i, v in enumerate(value):
            _check(v, spec.item, where, path + [str(i)])
    else:
        ok = isinstance(value, spec) and not (isinstance(value, bool) and bool not in spec)
        if float in spec and isinstance(value, str):  # YAML 1.1 reads `5e-5` as a string
            try:
                float(value)
                ok = True
            except ValueError:
                pass
        if not ok:
            kinds = " or ".join("null" if t is NONE else t.__name__ for t in spec)
            raise InputError(f"{where}: '{name}' must be {kinds}, not {value!r}")


def merge(base, over):
    """Deep merge: mappings key by key, anything else (lists, scalars) replaced."""
    out = copy.deepcopy(base)
    for k, v in (over or {}).items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


def load_doc(path=PARAMS) -> dict:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise InputError(f"{path}: not valid YAML: {str(e).splitlines()[0]}") from None
    return doc


def resolve(doc: dict, overlay: dict | None = None, where=PARAMS) -> dict:
    """Validate params.yaml (plus an overlay such as Snakemake's --config) -> the effective settings.

    The overlay is deep-merged over the whole document first, so `{"preset": "paper"}` switches preset
    and `{"presets": {"cpu": {"data": {"test_limit": 20}}}}` widens one setting.
    """
    doc = merge(doc, overlay or {})
    _check(doc, TOP, where, [])
    presets = doc.get("presets") or {}
    name = doc.get("preset", "cpu")
    if name not in presets:
        raise InputError(f"{where}: unknown preset '{name}' (known: {', '.join(presets) or 'none'})")
    settings = merge(doc.get("defaults") or {}, presets[name])
    for section in SETTINGS:
        settings.setdefault(section, [] if isinstance(SETTINGS[section], List) else {})
    for section, keys in REQUIRED.items():
        for entry, value in settings[section].items():
            for k in keys:
                if k not in value:
                    raise InputError(f"{where}: preset '{name}': '{section}.{entry}' needs '{k}'")
    for entry, value in settings["datasets"].items():
        _check_dataset(entry, value, where, name)
    settings["preset"] = name
    return settings


def _check_dataset(entry, d, where, preset):
    """A dataset is a built-in release (`source`) or a user's files (`files`), never both."""
    from .data import DATASETS
    from .data.jsonl import SCORERS

    at = f"{where}: preset '{preset}': 'datasets.{entry}'"
    if ("source" in d) == ("files" in d):
        raise InputError(f"{at} needs either 'source' (a built-in release) or 'files' (your own JSONL files)")
    if "source" in d and d["source"] not in DATASETS:
        raise InputError(f"{at}.source: '{d['source']}' is not one of {', '.join(DATASETS)}")
    if "files" in d:
        if entry in DATASETS:
            raise InputError(f"{at}: a user dataset cannot take a built-in name ({', '.join(DATASETS)})")
        if d["task"] not in SCORERS:
            raise InputError(f"{at}.task: '{d['task']}': user data is scored as one of {', '.join(SCORERS)}")
        if d.get("split") or d.get("tests", ["test"]) != ["test"]:
            raise InputError(f"{at}: 'split' and 'tests' are for built-in releases")
        for split in ("train", "test"):
            if split not in d["files"]:
                raise InputError(f"{at}.files needs '{split}'")


def load(path=PARAMS, overlay=None) -> dict:
    return resolve(load_doc(path), overlay, where=Path(path))


# ---------------------------------------------------------------- the grid


@dataclass
class Run:
    id: str  # e.g. e2e/prefix/n100-s0-seed0-p10-random; the run's folder is runs/<id>
    dataset: str
    method: str  # label from `methods` (e.g. adapter-3); `base` is the prefixtune method
    base: str
    size: int | str
    sample: int
    seed: int
    prefix_len: int | None
    init: str | None
    experiments: list
    tables: list
    source: str  # data/<source> holds its linearized data
    train_file: str
    train_cmd: str
    tests: dict = field(default_factory=dict)  # test name -> {input, refs, hyp, scores, decode_cmd, score_cmd}
    settings: dict = field(default_factory=dict)  # the resolved training/decoding settings (`params show --json`)
    dev_file: str | None = None  # model selection: the dev set `train --dev` reads

    @property
    def dir(self):
        return f"runs/{self.id}"

    @property
    def method_dir(self):
        return f"{self.dir}/method"


@dataclass
class Grid:
    settings: dict
    downloads: dict  # source -> cmd (out data/raw/<source>); built-in releases only
    linearize: dict  # source -> cmd (out data/<source>)
    linearize_deps: dict  # source -> what its linearize reads: data/raw/<source>, or a user's files
    testsets: dict  # slice name -> {input, refs, src_input, src_refs, source, cmd}
    runs: dict  # id -> Run
    plots: list  # PNG files the plot stage writes

    @property
    def preset(self):
        return self.settings["preset"]

    def scores(self):
        return [t["scores"] for r in self.runs.values() for t in r.tests.values()]


def _num(v):
    return repr(float(v)) if isinstance(v, str) else str(v)


def _matches(when, ctx):
    return all(str(ctx.get(k)) == str(v) for k, v in when.items())


def run_id(dataset, method, size, sample, seed, prefix_len=None, init=None):
    data = "full" if size == "full" else f"n{size}-s{sample}"
    tail = f"-p{prefix_len}-{init}" if prefix_len is not None else ""
    return f"{dataset}/{method}/{data}-seed{seed}{tail}"


ID_RE = re.compile(r"(?P<dataset>[^/]+)/(?P<method>[^/]+)/(?:full|n(?P<size>\d+)-s(?P<sample>\d+))"
                   r"-seed(?P<seed>\d+)(?:-p(?P<prefix_len>\d+)-(?P<init>[A-Za-z0-9_]+))?")


def parse_run_id(rid: str) -> dict:
    """The fields of a run id (inverse of run_id)."""
    m = ID_RE.fullmatch(rid)
    if not m:
        raise InputError(f"not a run id: {rid!r}")
    d = m.groupdict()
    return {"dataset": d["dataset"], "method": d["method"],
            "size": int(d["size"]) if d["size"] else "full", "sample": int(d["sample"] or 0),
            "seed": int(d["seed"]), "prefix_len": int(d["prefix_len"]) if d["prefix_len"] else None,
            "init": d["init"]}


def _train_cmd(model, base, mcfg, hp, train_file, out, seed, prefix_len, init_text, dev_file=None):
    a = ["prefixtune", "train", "--model", model, "--method", base, "--train", train_file, "--out", out]
    if dev_file:
        a += ["--dev", dev_file, "--eval-every", str(hp["eval_every"])]
        if hp.get("patience"):
            a += ["--patience", str(hp["patience"])]
    if base in PREFIX_METHODS:
        a += ["--prefix-len", str(prefix_len)]
    if base == "prefix":
        a += ["--mid-dim", str(mcfg.get("mid_dim", hp["mid_dim"]))]
        if not mcfg.get("reparam", hp["reparam"]):
            a += ["--no-reparam"]
    if init_text:
        a += ["--init-text", init_text]
    if base == "adapter":
        a += ["--adapter-fraction", _num(mcfg.get("adapter_fraction", hp["adapter_fraction"]))]
    a += ["--epochs", str(hp["epochs"])]
    if hp.get("max_steps") is not None:
        a += ["--max-steps", str(hp["max_steps"])]
    a += ["--lr", _num(hp["lr"]), "--batch-size", str(hp["batch_size"]), "--grad-accum", str(hp["grad_accum"]),
          "--warmup-steps", str(hp["warmup_steps"]), "--loss", hp["loss"], "--seed", str(seed)]
    if hp.get("threads"):
        a += ["--threads", str(hp["threads"])]
    if hp.get("max_source_len"):
        a += ["--max-source-len", str(hp["max_source_len"])]
    return shlex.join(a) + (" " + hp["extra"] if hp.get("extra") else "")


def _decode_cmd(model, method_dir, test_input, hyp, dp):
    a = ["prefixtune", "decode", "--model", model, "--method-dir", method_dir, "--input", test_input, "--out", hyp,
         "--beam", str(dp["beam"]), "--length-penalty", _num(dp["length_penalty"]),
         "--max-new-tokens", str(dp["max_new_tokens"]), "--batch-size", str(dp["batch_size"])]
    if dp.get("max_source_len"):
        a += ["--max-source-len", str(dp["max_source_len"])]
    if dp.get("ban_newlines"):
        a += ["--ban-newlines"]
    return shlex.join(a) + (" " + dp["extra"] if dp.get("extra") else "")


def _testset_cmd(src_input, src_refs, n, out_input, out_refs):
    """The first n test inputs and their reference groups (refs: groups separated by blank lines)."""
    q = shlex.quote
    return (f"mkdir -p {q(str(Path(out_input).parent))} && head -n {n} {q(src_input)} > {q(out_input)} && "
            f"awk 'BEGIN {{RS=\"\"; ORS=\"\\n\\n\"}} NR <= {n}' {q(src_refs)} > {q(out_refs)}")


def expand(settings: dict, where=PARAMS) -> Grid:
    """Effective settings -> Grid (every run of every experiment, deduplicated by run id)."""
    s = settings
    datasets, methods, inits, data = s["datasets"], s["methods"], s["inits"], s["data"]
    runs, sizes, samples = {}, {}, {}
    used_sources = {}
    testsets = {}
    limit = data.get("test_limit")
    for exp_name, exp in s["experiments"].items():
        if exp["table"] not in TABLES:
            raise InputError(f"{where}: experiments.{exp_name}.table: '{exp['table']}' is not one of "
                             f"{', '.join(TABLES)}")
        for ds in exp["datasets"]:
            if ds not in datasets:
                raise InputError(f"{where}: experiments.{exp_name}.datasets: unknown dataset '{ds}' "
                                 f"(known: {', '.join(datasets)})")
            dcfg = datasets[ds]
            source, split = dcfg.get("source", ds), dcfg.get("split")
            base_dir = f"data/{source}" + (f"/{split}" if split else "")
            used_sources.setdefault(source, dcfg.get("files"))
            for label in exp["methods"]:
                if label not in methods:
                    raise InputError(f"{where}: experiments.{exp_name}.methods: unknown method '{label}' "
                                     f"(known: {', '.join(methods)})")
                mcfg = methods[label]
                base = mcfg["method"]
                for size in exp.get("sizes", ["full"]):
                    if size != "full" and not (isinstance(size, int) and size > 0):
                        raise InputError(f"{where}: experiments.{exp_name}.sizes: {size!r} is neither a "
                                         f"positive number nor 'full'")
                    if size != "full":
                        if split:
                            raise InputError(f"{where}: experiments.{exp_name}: low-data sizes need a "
                                             f"dataset without a split, not '{ds}'")
                        sizes.setdefault(source, set()).add(size)
                        samples[source] = max(samples.get(source, 1), exp.get("samples", 1))
                    for sample in range(exp.get("samples", 1)) if size != "full" else [0]:
                        for seed in exp.get("seeds", [0]):
                            ctx = {"dataset": ds, "method": label, "size": size, "experiment": exp_name}
                            hp, dp = dict(s["train"]), dict(s["decode"])
                            for o in s["overrides"]:
                                if _matches(o.get("when", {}), ctx):
                                    hp.update(o.get("train", {}))
                                    dp.update(o.get("decode", {}))
                            if hp["loss"] not in ("sequence", "token"):
                                raise InputError(f"{where}: train.loss: {hp['loss']!r} is not sequence or token "
                                                 f"(run {ds}/{label}, after `overrides`)")
                            for plen in exp.get("prefix_lens", [None]):
                                for init in exp.get("inits", [None]):
                                    p = i = None
                                    if base in PREFIX_METHODS:
                                        p = plen if plen is not None else mcfg.get("prefix_len", hp["prefix_len"])
                                        i = init or hp["init"]
                                        if i not in inits:
                                            raise InputError(f"{where}: unknown init '{i}' (known: "
                                                             f"{', '.join(inits)})")
                                    rid = run_id(ds, label, size, sample, seed, p, i)
                                    train_file = (f"{base_dir}/train.jsonl" if size == "full" else
                                                  f"data/{source}/lowdata/train-n{size}-s{sample}.jsonl")
                                    out = f"runs/{rid}/method"
                                    dev_file = None
                                    if hp.get("dev"):  # the dev set of this training set: its 30% low-data one
                                        if not hp.get("eval_every"):
                                            raise InputError(f"{where}: train.dev is true for run {rid} but "
                                                             f"train.eval_every is not set")
                                        dev_file = (f"{base_dir}/dev.jsonl" if size == "full" else
                                                    f"data/{source}/lowdata/dev-n{size}-s{sample}.jsonl")
                                    run = Run(rid, ds, label, base, size, sample, seed, p, i, [exp_name],
                                              [exp["table"]], source, train_file,
                                              _train_cmd(dcfg["model"], base, mcfg, hp, train_file, out, seed, p,
                                                         inits.get(i) if i else None, dev_file),
                                              dev_file=dev_file)
                                    run.settings = {
                                        "lr": hp["lr"], "batch_size": hp["batch_size"], "max_steps": hp["max_steps"],
                                        "epochs": hp["epochs"], "warmup_steps": hp["warmup_steps"],
                                        "max_source_len": hp.get("max_source_len"), "loss": hp["loss"],
                                        "init_text": inits.get(i) if i else None, "dev": dev_file, "eval_every":
                                        hp.get("eval_every") if dev_file else None, "patience": hp.get("patience")
                                        if dev_file else None, "test_limit": limit,
                                        "beam": dp["beam"], "length_penalty": dp["length_penalty"],
                                        "max_new_tokens": dp["max_new_tokens"],
                                        "ban_newlines": bool(dp.get("ban_newlines"))}
                                    for test in dcfg.get("tests", ["test"]):
                                        src_in, src_refs = f"{base_dir}/{test}.jsonl", f"{base_dir}/{test}.refs.txt"
                                        if limit:
                                            slug = f"{ds}-{test}-first{limit}"
                                            tin = f"data/slices/{slug}.jsonl"
                                            trefs = f"data/slices/{slug}.refs.txt"
                                            testsets[slug] = {"input": tin, "refs": trefs, "source": source,
                                                              "src_input": src_in, "src_refs": src_refs,
                                                              "cmd": _testset_cmd(src_in, src_refs, limit, tin,
                                                                                  trefs)}
                                        else:
                                            tin, trefs = src_in, src_refs
                                        hyp, sc = f"runs/{rid}/{test}.hyp.txt", f"runs/{rid}/{test}.scores.json"
                                        run.tests[test] = {
                                            "input": tin, "refs": trefs, "hyp": hyp, "scores": sc,
                                            "decode_cmd": _decode_cmd(dcfg["model"], out, tin, hyp, dp),
                                            "score_cmd": shlex.join(
                                                ["prefixtune", "score", "--task", dcfg["task"], "--hyp", hyp,
                                                 "--ref", trefs, "--out", sc]
                                                + (["--categories", tin] if dcfg["task"] == "webnlg" else [])),
                                        }
                                    old = runs.get(rid)
                                    if old is None:
                                        runs[rid] = run
                                    elif old.train_cmd != run.train_cmd or old.tests != run.tests:
                                        raise InputError(f"{where}: run {rid} is defined by experiments "
                                                         f"{old.experiments[0]} and {exp_name} with different "
                                                         f"settings (see `overrides`)")
                                    else:
                                        old.experiments.append(exp_name)
                                        if exp["table"] not in old.tables:
                                            old.tables.append(exp["table"])
    downloads, linearize, linearize_deps = {}, {}, {}
    for source, files in used_sources.items():
        if files:  # a user's own files: nothing to download
            files = {k: v for k, v in files.items() if v}
            linearize_deps[source] = list(files.values())
            a = ["prefixtune", "linearize", "--dataset", "jsonl",
                 *(x for split, f in files.items() for x in (f"--{split}", f))]
        else:
            a = ["prefixtune", "download", "--dataset", source, "--out", f"data/raw/{source}"]
            if data.get("mirror"):
                a += ["--mirror", data["mirror"]]
            downloads[source] = shlex.join(a)
            linearize_deps[source] = [f"data/raw/{source}"]
            a = ["prefixtune", "linearize", "--dataset", source, "--raw", f"data/raw/{source}"]
        a += ["--out", f"data/{source}", "--seed", str(data.get("split_seed", 0))]
        if source in sizes:
            a += ["--sizes", *map(str, sorted(sizes[source])), "--samples", str(samples[source])]
        if data.get("max_source_tokens"):
            a += ["--max-source-tokens", str(data["max_source_tokens"])]
        linearize[source] = shlex.join(a)
    return Grid(s, downloads, linearize, linearize_deps, testsets, runs, expected_plots(runs.values()))


def run_record(r: Run) -> dict:
    """One run as `params show --json` prints it (null where a setting does not apply; test_limit null:
    the whole test set; dev null: no model selection on a dev set)."""
    return {"id": r.id, "experiment": r.experiments[0], "experiments": r.experiments, "dataset": r.dataset,
            "method": r.method, "size": r.size, "sample": r.sample, "seed": r.seed, "prefix_len": r.prefix_len,
            "init": r.init, **r.settings}


def varying(runs, key):
    """Groups of runs (same experiment, dataset, method, size) in which `key` takes several values."""
    groups = {}
    for r in runs:
        for e in r.experiments:
            groups.setdefault((e, r.dataset, r.method, r.size), set()).add(getattr(r, key))
    return {g: v for g, v in groups.items() if len(v) > 1}


def expected_plots(runs) -> list:
    """The PNG files `prefixtune plot` draws from the tables of these runs (see plot.py)."""
    runs = list(runs)
    out = [f"results/plots/lowdata_{d}.png" for d in sorted({r.dataset for r in runs if "lowdata" in r.tables
                                                              and r.size != "full"})]
    abl = [r for r in runs if "ablations" in r.tables]
    if varying(abl, "prefix_len"):
        out.append("results/plots/prefix_length.png")
    if varying(abl, "init"):
        out.append("results/plots/init.png")
    return out


def build(path=PARAMS, overlay=None) -> Grid:
    """params.yaml (+ overlay) -> Grid; what the Snakefile calls."""
    return expand(load(path, overlay), where=Path(path))


def resources(settings: dict, rule: str) -> dict:
    """Resources for one rule: resources.default updated by resources.<rule>."""
    res = dict(settings["resources"].get("default", {}))
    res.update(settings["resources"].get(rule, {}))
    return res


# ---------------------------------------------------------------- DVC: a static dvc.yaml


def stage_name(kind, key):
    return f"{kind}_" + re.sub(r"[^A-Za-z0-9_\-]", "_", key.replace("/", "_"))


def render_dvc(grid: Grid) -> str:
    """The dvc.yaml text for this grid (deterministic)."""
    st = {
        "grid": {"cmd": f"prefixtune params check --out {GRID_OK}",
                 "deps": ["src/prefixtune/params.py"], "params": [{"params.yaml": None}],
                 "outs": [{GRID_OK: {"cache": False}}]},
    }
    code = {stage: code_deps(stage) for stage in ("download", "linearize", "train", "decode", "score", "aggregate",
                                                  "plot")}
    for source, cmd in grid.downloads.items():
        st[stage_name("download", source)] = {"cmd": cmd, "deps": [GRID_OK, *code["download"]],
                                              "outs": [f"data/raw/{source}"]}
    for source, cmd in grid.linearize.items():
        st[stage_name("linearize", source)] = {"cmd": cmd, "deps": grid.linearize_deps[source] + code["linearize"],
                                               "outs": [f"data/{source}"]}
    for slug, t in grid.testsets.items():
        # Dependencies name single files inside data/<source>: DVC hashes them one by one, so widening
        # the grid (more subsamples written by linearize) re-runs only what reads a changed file.
        st[stage_name("testset", slug)] = {"cmd": t["cmd"], "deps": [t["src_input"], t["src_refs"]],
                                           "outs": [t["input"], t["refs"]]}
    for rid, r in grid.runs.items():
        st[stage_name("train", rid)] = {"cmd": r.train_cmd,
                                        "deps": [r.train_file, *([r.dev_file] if r.dev_file else []), *code["train"]],
                                        "outs": [r.method_dir]}
    for rid, r in grid.runs.items():
        for test, t in r.tests.items():
            key = f"{rid}/{test}"
            st[stage_name("decode", key)] = {"cmd": t["decode_cmd"],
                                             "deps": [r.method_dir, t["input"], *code["decode"]], "outs": [t["hyp"]]}
            st[stage_name("score", key)] = {"cmd": t["score_cmd"], "deps": [t["hyp"], t["refs"], *code["score"]],
                                            "outs": [t["scores"]]}
    st["aggregate"] = {"cmd": "prefixtune aggregate --params params.yaml --runs runs --tables results/tables "
                              "--metrics results/metrics",
                       "deps": [*code["aggregate"], *grid.scores(),
                                *(f"{r.method_dir}/method.json" for r in grid.runs.values())],
                       "params": [{"params.yaml": None}],
                       "outs": [{"results/tables": {"cache": False}}],
                       "metrics": [{f"results/metrics/{t}.json": {"cache": False}} for t in TABLES]}
    st["plot"] = {"cmd": "prefixtune plot --tables results/tables --out results/plots",
                  "deps": [*code["plot"], "results/tables"],
                  "outs": [{"results/plots": {"cache": False}}]}
    doc = {"stages": st}
    if grid.plots:
        doc["plots"] = list(grid.plots)
    head = (f"# GENERATED from params.yaml (preset: {grid.preset}) by `prefixtune params render`: do not edit.\n"
            "# Another preset: `prefixtune params use paper` (sets preset: and re-renders), then `dvc repro`.\n"
            "# After `dvc exp run -S ...` or any edit of params.yaml, the first stage (grid) fails until you run\n"
            "# `prefixtune params render`. Snakemake reads params.yaml directly (Snakefile).\n")
    body = yaml.safe_dump(doc, sort_keys=False, width=10_000, default_flow_style=False)
    return head + body.replace("- params.yaml: null\n", "- params.yaml:\n")


def render(path=PARAMS, out=DVC_YAML) -> str:
    from .files import atomic_open

    text = render_dvc(build(path))
    with atomic_open(out) as f:
        f.write(text)
    return text


def check(path=PARAMS, dvc_yaml=DVC_YAML):
    """InputError unless dvc.yaml is what `render` would write from params.yaml."""
    want = render_dvc(build(path))
    have = Path(dvc_yaml).read_text(encoding="utf-8") if Path(dvc_yaml).is_file() else ""
    if want != have:
        preset = load(path)["preset"]
        raise InputError(f"{dvc_yaml}: out of date with {path} (preset: {preset}): "
                         f"run `prefixtune params render`, then `dvc repro` / `dvc exp run` again")


def set_preset(name, path=PARAMS):
    """Rewrite the `preset:` line of params.yaml, keeping everything else (comments included)."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    new, n = re.subn(r"(?m)^preset:[ \t]*[^#\n]*?([ \t]*(#.*)?)$", lambda m: f"preset: {name}{m.group(1)}", text,
                     count=1)
    if n != 1:
        raise InputError(f"{path}: no top-level 'preset:' line to change")
    resolve(yaml.safe_load(new), where=path)  # unknown preset -> error before writing
    from .files import atomic_open

    with atomic_open(path) as f:
        f.write(new)


# ---------------------------------------------------------------- CLI


def add_arguments(p):
    p.add_argument("--params", default=str(PARAMS), help="params file (default params.yaml)")
    sub = p.add_subparsers(dest="action", required=True)
    s = sub.add_parser("show", help="print the effective settings and the runs")
    s.add_argument("--preset", default=None)
    s.add_argument("--json", action="store_true", help="one JSON object per run: its resolved settings")
    sub.add_parser("render", help="write dvc.yaml for params.yaml's preset")
    u = sub.add_parser("use", help="set params.yaml's preset and write dvc.yaml")
    u.add_argument("preset")
    c = sub.add_parser("check", help="fail unless dvc.yaml is up to date with params.yaml")
    c.add_argument("--out", default=None, help="file to write when the check passes")


def run(args):
    if args.action == "show":
        g = build(args.params, {"preset": args.preset} if args.preset else None)
        if args.json:
            print(json.dumps([run_record(r) for r in g.runs.values()], indent=1))
            return
        print(yaml.safe_dump({k: v for k, v in g.settings.items()}, sort_keys=False), end="")
        print(f"# {len(g.runs)} runs, {len(g.scores())} scored test sets, plots: {', '.join(g.plots) or 'none'}")
        for rid, r in g.runs.items():
            print(f"{rid}  [{', '.join(r.experiments)}]")
    elif args.action == "render":
        render(args.params)
        print(f"wrote {DVC_YAML} (preset: {load(args.params)['preset']})")
    elif args.action == "use":
        set_preset(args.preset, args.params)
        render(args.params)
        print(f"preset: {args.preset}; wrote {DVC_YAML}")
    elif args.action == "check":
        check(args.params)
        if args.out:
            from .files import atomic_open

            with atomic_open(args.out) as f:
                f.write("ok\n")


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m prefixtune.params", description=__doc__.splitlines()[0])
    add_arguments(p)
    args = p.parse_args(argv)
    try:
        run(args)
    except InputError as e:
        print(f"prefixtune: error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
