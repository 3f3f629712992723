"""The run grid: one preset's settings -> every run of every experiment, with its files and commands.

Each preset writes only under its own folders, so running one never touches another's results:
    data/<preset>/<source>/      linearized data and low-data subsamples (data/raw/<source>: shared downloads)
    data/<preset>/slices/        the test slices: an experiment's test_sample inputs drawn at random and/or the
                                 first data.test_limit, when set
    runs/<preset>/<run id>/      method/ (train), <test>.hyp.txt (decode), <test>.scores.json (score)
    results/<preset>/            tables/, metrics/, plots/ (aggregate, plot)
A run id names its cell: e.g. `e2e/prefix/n100-s0-seed0-p10-random` (dataset, method label, size and
subsample, seed, and for prefix-length methods P and the init label).
"""

import itertools
import re
import shlex
from dataclasses import dataclass, field

from ..errors import InputError
from . import commands as C
from .commands import PREFIX_METHODS  # noqa: F401 (re-exported)
from .schema import PARAMS

TABLES = ("main", "lowdata", "extrapolation", "ablations")



@dataclass
class Run:
    id: str  # e.g. e2e/prefix/n100-s0-seed0-p10-random
    preset: str
    dataset: str
    method: str  # label from `methods` (e.g. adapter-3)
    base_method: str  # the prefixtune method (`method` is its label in params.yaml, e.g. adapter-3)
    size: int | str
    sample: int
    seed: int
    prefix_len: int | None
    init: str | None
    experiments: list
    tables: list
    source: str  # data/<preset>/<source> holds its linearized data
    train_file: str
    train_cmd: str
    tests: dict = field(default_factory=dict)  # test name -> {input, refs, hyp, scores, decode_cmd, score_cmd}
    settings: dict = field(default_factory=dict)  # the resolved training/decoding settings (`params show --json`)
    dev_file: str | None = None  # model selection: the dev set `train --dev` reads
    test_sample: int | None = None  # its decoded sets: this many inputs drawn at random (None: every input)

    @property
    def dir(self):
        return f"runs/{self.preset}/{self.id}"

    @property
    def method_dir(self):
        return f"{self.dir}/method"


@dataclass
class Grid:
    settings: dict
    downloads: dict  # source -> cmd (out data/raw/<source>); built-in releases only
    linearize: dict  # source -> cmd (out data/<preset>/<source>)
    linearize_deps: dict  # source -> what its linearize reads: data/raw/<source>, or a user's files
    testsets: dict  # slice name -> {input, refs, src_input, src_refs, source, cmd}
    runs: dict  # id -> Run
    plots: list  # PNG files the plot stage writes

    @property
    def preset(self):
        return self.settings["preset"]

    @property
    def results(self):
        return f"results/{self.preset}"

    def data(self, source):
        return f"data/{self.preset}/{source}"

    def data_files(self, source) -> list:
        """The files in data/<preset>/<source> that the runs and test slices read: what linearize must make
        for them (Snakemake's linearize rules declare these, so each job depends on its own files only)."""
        files = set()
        for r in self.runs.values():
            if r.source == source:
                files |= {r.train_file, *([r.dev_file] if r.dev_file else [])}
                files |= {t[k] for t in r.tests.values() for k in ("input", "refs")
                          if t[k].startswith(self.data(source) + "/")}
        files |= {t[k] for t in self.testsets.values() if t["source"] == source for k in ("src_input", "src_refs")}
        return sorted(files)

    def scores(self):
        return [t["scores"] for r in self.runs.values() for t in r.tests.values()]


def run_id(dataset, method, size, sample, seed, prefix_len=None, init=None):
    """e.g. e2e/prefix/n100-s0-seed0-p10-random; `-ptext-<init>` when the init text sets P (prefix_len None)."""
    data = "full" if size == "full" else f"n{size}-s{sample}"
    tail = f"-p{'text' if prefix_len is None else prefix_len}-{init}" if init is not None else ""
    return f"{dataset}/{method}/{data}-seed{seed}{tail}"


ID_RE = re.compile(r"(?P<dataset>[^/]+)/(?P<method>[^/]+)/(?:full|n(?P<size>\d+)-s(?P<sample>\d+))"
                   r"-seed(?P<seed>\d+)(?:-p(?P<prefix_len>\d+|text)-(?P<init>[A-Za-z0-9_]+))?")


def parse_run_id(rid: str) -> dict:
    """The fields of a run id (inverse of run_id)."""
    m = ID_RE.fullmatch(rid)
    if not m:
        raise InputError(f"not a run id: {rid!r}")
    d = m.groupdict()
    return {"dataset": d["dataset"], "method": d["method"],
            "size": int(d["size"]) if d["size"] else "full", "sample": int(d["sample"] or 0),
            "seed": int(d["seed"]),
            "prefix_len": int(d["prefix_len"]) if (d["prefix_len"] or "text") != "text" else None,
            "init": d["init"]}


def _matches(when, ctx):
    return all(str(ctx.get(k)) == str(v) for k, v in when.items())


def _known(where, path, name, known):
    if name not in known:
        raise InputError(f"{where}: {path}: unknown {path.rsplit('.', 1)[-1].rstrip('s')} '{name}' "
                         f"(known: {', '.join(known)})")


def cells(s: dict, where=PARAMS):
    """(experiment name, experiment, dataset, method label, size, sample, seed, prefix length, init label)
    for every cell of every experiment, after checking the names each one uses."""
    for name, exp in s["experiments"].items():
        for ds in exp["datasets"]:
            _known(where, f"experiments.{name}.datasets", ds, s["datasets"])
        for label in exp["methods"]:
            _known(where, f"experiments.{name}.methods", label, s["methods"])
        for init in exp.get("inits", []):
            _known(where, f"experiments.{name}.inits", init, s["inits"])
        for ds, label, size in itertools.product(exp["datasets"], exp["methods"], exp.get("sizes", ["full"])):
            if size != "full" and s["datasets"][ds].get("split"):
                raise InputError(f"{where}: experiments.{name}: low-data sizes need a dataset without a split, "
                                 f"not '{ds}'")
            samples = range(exp.get("samples", 1)) if size != "full" else [0]
            for sample, seed, plen, init in itertools.product(samples, exp.get("seeds", [0]),
                                                              exp.get("prefix_lens", [None]),
                                                              exp.get("inits", [None])):
                yield name, exp, ds, label, size, sample, seed, plen, init


def expand(s: dict, where=PARAMS) -> Grid:
    """One preset's effective settings -> its Grid (every run of every experiment, deduplicated by id)."""
    preset, data = s["preset"], s["data"]
    limit = data.get("test_limit")
    runs, sizes, samples, used, testsets = {}, {}, {}, {}, {}
    for name, exp, ds, label, size, sample, seed, plen, init in cells(s, where):
        dcfg, mcfg = s["datasets"][ds], s["methods"][label]
        base, source, split = mcfg["method"], dcfg.get("source", ds), dcfg.get("split")
        root = f"data/{preset}/{source}"
        base_dir = root + (f"/{split}" if split else "")
        used.setdefault(source, dcfg.get("files"))
        if size != "full":
            sizes.setdefault(source, set()).add(size)
            samples[source] = max(samples.get(source, 1), exp.get("samples", 1))
        hp, dp = dict(s["train"]), dict(s["decode"])
        hp["loss"] = mcfg.get("loss", hp["loss"])  # the method's objective; overrides may change it (XSum)
        for o in s["overrides"]:
            if _matches(o.get("when", {}), {"dataset": ds, "method": label, "size": size, "experiment": name}):
                hp.update(o.get("train", {}))
                dp.update(o.get("decode", {}))
        p = i = None
        if base in PREFIX_METHODS:
            i = init or hp["init"]
            _known(where, "train.init", i, s["inits"])
            # P: the experiment's prefix_lens; else, with a text init, the text's token count (the authors'
            # code; `train` checks an explicit P against it); else the method's or train's prefix_len
            p = plen if plen is not None else None if s["inits"][i] else mcfg.get("prefix_len", hp["prefix_len"])
        rid = run_id(ds, label, size, sample, seed, p, i)
        low = f"{root}/lowdata"
        train_file = f"{base_dir}/train.jsonl" if size == "full" else f"{low}/train-n{size}-s{sample}.jsonl"
        dev_file = None
        if hp.get("dev"):  # the dev set of this training set: its 30% low-data one
            if not hp.get("eval_every"):
                raise InputError(f"{where}: train.dev is true for run {rid} but train.eval_every is not set")
            dev_file = f"{base_dir}/dev.jsonl" if size == "full" else f"{low}/dev-n{size}-s{sample}.jsonl"
        init_text = s["inits"].get(i) if i else None
        run = Run(rid, preset, ds, label, base, size, sample, seed, p, i, [name], [exp["table"]], source,
                  train_file, "", dev_file=dev_file)
        run.train_cmd = C.train_cmd(dcfg["model"], base, mcfg, hp, train_file, run.method_dir, seed, p, init_text,
                                    dev_file, dp)
        run.settings = {"model": dcfg["model"], **C.settings(base, mcfg, hp, dp, init_text, dev_file, limit)}
        drawn, draw_seed = exp.get("test_sample"), data.get("split_seed", 0)  # a random test subset, when set
        run.test_sample = drawn
        for test in exp.get("tests") or dcfg.get("tests", ["test"]):
            src_in, src_refs = f"{base_dir}/{test}.jsonl", f"{base_dir}/{test}.refs.txt"
            tin, trefs = src_in, src_refs
            if limit or drawn:
                slug = "-".join([ds, test, *([f"random{drawn}-seed{draw_seed}"] if drawn else []),
                                 *([f"first{limit}"] if limit else [])])
                tin, trefs = f"data/{preset}/slices/{slug}.jsonl", f"data/{preset}/slices/{slug}.refs.txt"
                testsets[slug] = {"input": tin, "refs": trefs, "source": source, "src_input": src_in,
                                  "src_refs": src_refs,
                                  "cmd": C.testset_cmd(src_in, src_refs, tin, trefs, drawn, draw_seed, limit)}
            hyp, sc = f"{run.dir}/{test}.hyp.txt", f"{run.dir}/{test}.scores.json"
            run.tests[test] = {"test": test, "selection": "primary", "input": tin, "refs": trefs, "hyp": hyp,
                               "scores": sc, "decode_cmd": C.decode_cmd(dcfg["model"], run.method_dir, tin, hyp, dp),
                               "score_cmd": C.score_cmd(dcfg["task"], hyp, trefs, sc, tin)}
            if dev_file and hp.get("eval_every_alt"):  # the second selection rule's parameters, decoded too
                ahyp, asc = f"{run.dir}/{test}-alt.hyp.txt", f"{run.dir}/{test}-alt.scores.json"
                run.tests[f"{test}-alt"] = {
                    "test": test, "selection": "alt", "input": tin, "refs": trefs, "hyp": ahyp, "scores": asc,
                    "decode_cmd": C.decode_cmd(dcfg["model"], run.method_dir, tin, ahyp, dp, alt_of=hyp),
                    "score_cmd": C.score_cmd(dcfg["task"], ahyp, trefs, asc, tin)}
        old = runs.get(rid)
        if old is None:
            runs[rid] = run
        elif old.train_cmd != run.train_cmd or old.tests != run.tests:
            raise InputError(f"{where}: run {rid} is defined by experiments {old.experiments[0]} and {name} "
                             f"with different settings (see `overrides`)")
        else:
            old.experiments.append(name)
            if exp["table"] not in old.tables:
                old.tables.append(exp["table"])
    _merge_text_twins(runs)
    downloads, linearize, deps = C.data_cmds(preset, data, used, sizes, samples)
    return Grid(s, downloads, linearize, deps, testsets, runs, expected_plots(runs.values(), f"results/{preset}"))


def _merge_text_twins(runs: dict):
    """One training, one run: a run whose init text sets P (`-ptext-`) and a run of the same cell and text with P
    given are the same training when their commands differ only in the run folder and P, since `train` takes an
    explicit P only where it is the text's token count (methods/base.py: init_text_ids). The run with P given
    stays, and lists both experiments (e.g. the init experiment's "table-to-text:" runs are the low-data grid's)."""
    def normalized(r):
        argv = shlex.split(r.train_cmd.replace(r.id, "<run>"))
        if "--prefix-len" in argv:
            del argv[argv.index("--prefix-len"):argv.index("--prefix-len") + 2]
        return argv, {k: (t["decode_cmd"].replace(r.id, "<run>"), t["score_cmd"].replace(r.id, "<run>"))
                      for k, t in r.tests.items()}

    for rid, r in list(runs.items()):
        if r.prefix_len is not None or r.init is None:
            continue
        twins = [t for t in runs.values() if t.prefix_len is not None and
                 (t.dataset, t.method, t.size, t.sample, t.seed, t.init) ==
                 (r.dataset, r.method, r.size, r.sample, r.seed, r.init) and normalized(t) == normalized(r)]
        if twins:
            twin = twins[0]
            twin.experiments += [e for e in r.experiments if e not in twin.experiments]
            twin.tables += [t for t in r.tables if t not in twin.tables]
            del runs[rid]


def varying(runs, key):
    """Groups of runs (same experiment, dataset, method, size) in which `key` takes several values (None not
    counted, as plot.varying drops NaN: a P set by the init text is not a prefix length of its own)."""
    groups = {}
    for r in runs:
        for e in r.experiments:
            g = groups.setdefault((e, r.dataset, r.method, r.size), set())
            if getattr(r, key) is not None:
                g.add(getattr(r, key))
    return {g: v for g, v in groups.items() if len(v) > 1}


def lowdata_methods(runs) -> dict:
    """dataset -> its low-data methods, in grid order: the datasets with low-data figures and curves."""
    out = {}
    for r in runs:
        if "lowdata" in r.tables and r.size != "full":
            out.setdefault(r.dataset, {})[r.method] = None
    return {d: list(m) for d, m in out.items()}


def expected_plots(runs, results="results") -> list:
    """The PNG files `prefixtune plot` draws from the tables of these runs (see plot.py)."""
    runs = list(runs)
    low = sorted(lowdata_methods(runs))
    out = [f"{results}/plots/{kind}_{d}.png" for d in low for kind in ("lowdata", "training")]
    abl = [r for r in runs if "ablations" in r.tables]
    if varying(abl, "prefix_len"):
        out.append(f"{results}/plots/prefix_length.png")
    if varying(abl, "init"):
        out.append(f"{results}/plots/init.png")
    return out


def run_record(r: Run) -> dict:
    """One run as `params show --json` prints it (null where a setting does not apply; test_sample and
    test_limit null: the whole test set; dev null: no model selection on a dev set; tests: each decoded set,
    its input file and the selection rule whose parameters decode it)."""
    return {"id": r.id, "preset": r.preset, "experiment": r.experiments[0], "experiments": r.experiments,
            "dataset": r.dataset, "method": r.method, "base_method": r.base_method, "size": r.size, "sample": r.sample,
            "seed": r.seed, "prefix_len": r.prefix_len, "init": r.init, **r.settings, "test_sample": r.test_sample,
            "tests": {name: {"input": t["input"], "selection": t["selection"]} for name, t in r.tests.items()}}
