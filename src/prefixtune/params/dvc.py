"""The DVC pipelines, rendered from params.yaml (DVC cannot expand the grid itself).

    dvc.yaml, runs.yaml           the default preset (params.yaml's `preset:`): `dvc repro`; runs.yaml holds
                                  each run's resolved settings, the `params:` of its train stage (so
                                  `dvc params diff` and `dvc exp show` list lr, P, steps, method, size per run)
    pipelines/downloads/dvc.yaml  the raw releases, shared by every preset
    pipelines/<preset>/           another preset's dvc.yaml and runs.yaml, written on request
                                  (`prefixtune params render PRESET`; not committed, and not git-ignored
                                  either: DVC refuses an ignored dvc.yaml), then kept up to date:
                                  `dvc repro pipelines/<preset>/dvc.yaml`
A run's outputs are not in DVC's cache (`cache: false`): git holds what a finished run needs (see .gitignore:
the cpu preset's runs/, fine-tuned weights excepted), and scripts/run-grid continues a grid on a fresh clone
without redoing them. Only what is rendered is in DVC's view: DVC parses every dvc.yaml and dvc.lock of the
repository on each command, and the paper preset's 630 stages alone took it about 5 s on a no-op `dvc repro`.
Each preset writes under its own data/, runs/ and results/ folders (see grid.py), so the files never
overlap and running one preset leaves the others' outputs and dvc.lock alone. The first stage of each
preset, `grid`, fails when params.yaml changed and these files were not re-rendered.
"""

from pathlib import Path

import yaml

from ..code_deps import code_deps
from ..errors import InputError
from .grid import Grid, expand, lowdata_methods
from .schema import PARAMS, SCHEMA, check_doc, load_doc, preset_settings
from .stages import metrics, stage_name, table  # noqa: F401 (stage_name: re-exported)

DOWNLOADS = "pipelines/downloads/dvc.yaml"
HEAD = ("# GENERATED from params.yaml by `prefixtune params render`: do not edit.\n"
        "# After an edit of params.yaml (or `dvc exp run -S ...`), run `prefixtune params render`: until then the\n"
        "# first stage (grid) fails. Snakemake reads params.yaml directly (workflow/Snakefile).\n")


def pipeline_file(preset, default) -> str:
    return "dvc.yaml" if preset == default else f"pipelines/{preset}/dvc.yaml"


def runs_file(preset, default) -> str:
    return "runs.yaml" if preset == default else f"pipelines/{preset}/runs.yaml"


def _param_key(rid):
    return stage_name("run", rid)


DECODE_KEYS = ("beam", "length_penalty", "hyp_length", "max_new_tokens", "min_new_tokens", "ban_newlines",
               "test_limit")


def run_params(grid: Grid) -> dict:
    """pipelines/<preset>/runs.yaml: run key -> its settings as DVC params, `train` (the train stage's) and
    `decode` (the decode stages'), so that a decoding setting never makes a train stage look changed."""
    out = {}
    for rid, r in grid.runs.items():
        cell = {"id": rid, "dataset": r.dataset, "method": r.method, "size": r.size, "sample": r.sample,
                "seed": r.seed, "prefix_len": r.prefix_len, "init": r.init}
        train = {k: v for k, v in r.settings.items() if k not in DECODE_KEYS}
        out[_param_key(rid)] = {"train": {**cell, **train}, "decode": {k: r.settings[k] for k in DECODE_KEYS}}
    return {"runs": out}


def preset_stages(grid: Grid, default, stages=None) -> dict:
    """The preset's stage table (stages.py; `stages` if given) as DVC stages, with what only DVC needs."""
    ok, params_file = f"runs/{grid.preset}/grid.ok", runs_file(grid.preset, default)
    st = {"grid": {"cmd": f"prefixtune params check --out {ok}", "deps": [*code_deps("params"), SCHEMA],
                   "params": [{"params.yaml": None}], "outs": [{ok: {"cache": False}}]}}
    # Code is a dependency: each stage lists the files it runs (code.code_deps), so that `dvc status` names
    # exactly the stages an edit reaches. (A digest stage per kind would shorten the files, but DVC reports
    # only the digest stage as changed until it re-runs: the stages behind it look up to date.)
    measured = set(metrics(grid))
    for s in stages if stages is not None else table(grid):
        if s.kind == "download":
            continue  # pipelines/downloads/dvc.yaml: shared by every preset
        d = {"cmd": s.cmd}
        if s.kind in ("train", "decode"):
            rid = s.key if s.kind == "train" else s.key.rsplit("/", 1)[0]
            d["params"] = [{params_file: [f"runs.{_param_key(rid)}.{s.kind}"]}]
        d["deps"] = [*([ok] if s.kind == "linearize" else []), *s.deps, *s.code]
        cached = s.kind in ("linearize", "testset")  # data; runs and results are git's (see the docstring)
        outs = [o for o in s.outs if s.kind != "score" and o not in measured]
        if outs:
            d["outs"] = [o if cached else {o: {"cache": False}} for o in outs]
        if len(outs) < len(s.outs):
            d["metrics"] = [{o: {"cache": False}} for o in s.outs if o not in outs]
        st[s.name] = d
    return st


DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml: 10x faster on the paper preset's 14k lines


def _yaml(obj) -> str:
    return yaml.dump(obj, Dumper=DUMPER, sort_keys=False, width=10_000, default_flow_style=False)


def csv_plots(grid) -> list:
    """The low-data curves as DVC plots (`dvc plots show`, and `dvc plots diff` to overlay two experiments or
    revisions): per dataset, the CSV that `prefixtune plot` writes beside its PNG, size on x, a line per method
    (DVC's linear template draws one line per y column, so the CSV is wide: one column per method)."""
    out = []
    for ds, methods in lowdata_methods(grid.runs.values()).items():
        out.append({f"{grid.results}/plots/lowdata_{ds}.csv": {
            "template": "linear", "x": "size", "y": methods, "title": f"{ds}: low-data (mean per size)",
            "x_label": "training examples", "y_label": "headline metric (BLEU x100, ROUGE-1)"}})
    return out


def _dump(stages, wdir=None, plots=None) -> str:
    if wdir:
        stages = {name: {"wdir": wdir, **s} for name, s in stages.items()}
    if wdir and plots:  # top-level plots are paths relative to the dvc.yaml, not to a stage's wdir
        plots = [f"{wdir}/{p}" if isinstance(p, str) else {f"{wdir}/{k}": v for k, v in p.items()} for p in plots]
    doc = {"stages": stages, **({"plots": plots} if plots else {})}
    body = _yaml(doc)
    return HEAD + body.replace("- params.yaml: null\n", "- params.yaml:\n")


def rendered(root: Path) -> list[str]:
    """Presets whose pipeline was rendered before (pipelines/<preset>/dvc.yaml exists)."""
    return sorted(p.parent.name for p in (root / "pipelines").glob("*/dvc.yaml") if p.parent.name != "downloads")


def render_all(path=PARAMS, presets=()) -> dict:
    """Every generated file: repository path -> its text (deterministic): the default preset's pipeline, the
    shared downloads, and the pipelines of `presets` and of every preset rendered before."""
    doc = load_doc(path)
    check_doc(doc, Path(path))  # the schema; each preset's own checks run below, as it is expanded
    root, default, names = Path(path).resolve().parent, doc.get("preset", "cpu"), list(doc.get("presets") or {})
    for name in presets:
        if name not in names:
            raise InputError(f"{path}: unknown preset '{name}' (known: {', '.join(names)})")
    wanted = {default, *presets, *(p for p in rendered(root) if p in names)}
    files, downloads = {}, {}
    for name in names:  # downloads of every preset: shared, so one file names them all
        grid = expand(preset_settings(doc, name, Path(path)), where=Path(path))
        stages = table(grid)
        for s in stages:
            if s.kind == "download" and downloads.setdefault(s.key, s).cmd != s.cmd:
                raise InputError(f"{path}: presets download '{s.key}' differently ({downloads[s.key].cmd!r} vs "
                                 f"{s.cmd!r}): data.mirror must be the same in every preset (downloads are shared)")
        if name in wanted:
            wdir = None if name == default else "../.."
            files[pipeline_file(name, default)] = _dump(preset_stages(grid, default, stages), wdir,
                                                        [*grid.plots, *csv_plots(grid)])
            files[runs_file(name, default)] = ("# GENERATED by `prefixtune params render`: each run's resolved "
                                               "settings (DVC params of its stages).\n" + _yaml(run_params(grid)))
    files[DOWNLOADS] = _dump({s.name: {"cmd": s.cmd, "deps": [*s.deps, *s.code], "outs": list(s.outs)}
                              for _, s in sorted(downloads.items())}, "../..")
    return files


def stale_files(path=PARAMS) -> list[str]:
    """Generated files that are missing or differ from what `render` would write (beside params.yaml)."""
    root = Path(path).resolve().parent
    return [f for f, text in render_all(path).items()
            if not (root / f).is_file() or (root / f).read_text(encoding="utf-8") != text]


def orphans(path=PARAMS) -> list[Path]:
    """Rendered pipelines of presets that params.yaml no longer has, or of the default preset (dvc.yaml's)."""
    root = Path(path).resolve().parent
    doc = load_doc(path)
    keep = set(doc.get("presets") or {}) - {doc.get("preset", "cpu")}
    return [f for f in sorted((root / "pipelines").glob("*/*.yaml"))
            if f.parent.name != "downloads" and f.parent.name not in keep]


def render(path=PARAMS, presets=()) -> list[str]:
    """Write the generated files (atomically), remove those of presets that are gone; the paths written."""
    from ..files import atomic_open

    root = Path(path).resolve().parent
    files = render_all(path, presets)
    for f in orphans(path):
        f.unlink()
        if not any(f.parent.iterdir()):
            f.parent.rmdir()
    for f, text in files.items():
        with atomic_open(root / f) as out:
            out.write(text)
    return list(files)


def check(path=PARAMS):
    """InputError unless every generated file is what `render` would write from params.yaml."""
    stale = stale_files(path) + [str(f) for f in orphans(path)]
    if stale:
        raise InputError(f"{stale[0]}: out of date with {path} (preset: {load_doc(path).get('preset')}"
                         f"{f'; and {len(stale) - 1} more' if len(stale) > 1 else ''}): run `prefixtune params "
                         f"render`, then `dvc repro` / `dvc exp run` again")
