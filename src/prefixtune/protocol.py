"""The protocol table: every setting of the paper's protocol (docs/paper_settings.yaml: the paper's value, the
authors' effective value, where each stands) beside what the `paper` and `cpu` presets run (params.yaml).
scripts/protocol-md writes it as docs/protocol.md; the reproduction checklist (report/checklist.py) reads its rows.

A row's status per preset: `same` (our value equals the expected one), `differs: <why>` (a deliberate difference
explained in paper_settings.yaml), or `DRIFT` (differs with no explanation: tests/test_protocol.py fails).
"""

import math
from pathlib import Path

import yaml

from . import params as P
from .registry import describe

COUNTS = {"samples": "sample", "seeds": "seed"}  # settings that count distinct values over the selected runs
SETS = {"sizes": "size", "prefix_lens": "prefix_len"}  # settings that list them
# The protocol's own settings: no config field holds them (every other setting's meaning is its flag's help)
OWN_MEANINGS = {
    "dev": "model selection on the run's dev set: the kept step is the one with the best dev number",
    "eval_set": "the sets decoded and scored with the run's kept parameters",
    "test_sample": "how many inputs of the evaluation set a run decodes, drawn at random (null: all)",
    "samples": "training subsamples per cell (a low-data cell draws this many subsets of the training set)",
    "seeds": "seeds per training subsample",
    "sizes": "training set sizes of the low-data experiment",
    "prefix_lens": "prefix lengths P of the prefix-length experiment",
    "runs": "trained runs the entry selects",
}


def meaning(setting: str) -> str | None:
    """What a protocol setting means: the help of the config field of that name (configs.py, methods/config.py;
    training first, as a run's settings name the training batch size and source length), or OWN_MEANINGS."""
    from dataclasses import fields

    from .configs import DecodeConfig, SelectConfig, TrainConfig
    from .methods.config import AdapterConfig, VirtualTokenConfig

    for cls in (TrainConfig, VirtualTokenConfig, AdapterConfig, SelectConfig, DecodeConfig):
        for f in fields(cls):
            if f.name == setting and "help" in f.metadata:
                return f.metadata["help"]
    return OWN_MEANINGS.get(setting)


def selected(runs, where):
    def ok(r):
        return all((v in r["experiments"]) if k == "experiment" else r[k] == v for k, v in where.items())
    return [r for r in runs if ok(r)]


def order(v):
    """Numbers first, in numeric order; then anything else by its text."""
    return (0, v, "") if isinstance(v, (int, float)) and not isinstance(v, bool) else (1, 0, str(v))


def ours(rows, setting):
    """Our value of `setting` over the selected runs: one value, or every value when they differ."""
    if setting == "runs":
        return len(rows)
    if setting in COUNTS:
        return len({r[COUNTS[setting]] for r in rows})
    if setting in SETS:
        return sorted({r[SETS[setting]] for r in rows}, key=order)
    if setting == "eval_set":  # the sets decoded with the run's own (first-rule) parameters
        values = {", ".join(k for k, t in r["tests"].items() if t["selection"] == "primary") for r in rows}
    else:
        values = {(bool(r["dev"]) if setting == "dev" else r[setting]) for r in rows}
    return values.pop() if len(values) == 1 else sorted(values, key=order)


def same(a, b):
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return math.isclose(float(a), float(b), rel_tol=1e-9)
    return a == b


def fmt(v):
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, list):
        return ", ".join(map(fmt, v))
    return str(v).replace("|", "\\|")


PRESETS = ("paper", "cpu")


def status(value, expected, why):
    """`same` (equal to the expected value), `differs: <why>`, or `DRIFT` (different, no reason given);
    "–" where the preset has no run the row selects."""
    if value is None:
        return "–"
    return "same" if same(value, expected) else f"differs: {' '.join(why.split())}" if why else "DRIFT"


def source_note(entry) -> str:
    """An entry's note: where the paper states it, then where the authors' code settles it (as "Code: ..."),
    each a sentence of its own."""
    paper, code = entry.get("source", "").strip(), entry.get("authors_source", "").strip()
    if paper and not paper.endswith("."):
        paper += "."
    if paper and code and not code.startswith("Code:"):
        code = f"Code: {code}"
    return " ".join(x for x in (paper, code) if x)


def rows_of(root: Path):
    """One row per (entry, setting): the paper's value, the authors' effective value, ours in each preset.

    The expected value is the authors' effective one where the code settles it (the code produced the
    paper's numbers), else the paper's; a row is `same` only where the paper, the authors' code and both
    presets that run it agree."""
    runs = {name: [P.run_record(r) for r in P.build(root / "params.yaml", {"preset": name}).runs.values()]
            for name in PRESETS}
    out = []
    for entry in yaml.safe_load((root / "docs" / "paper_settings.yaml").read_text(encoding="utf-8")):
        paper, authors = entry.get("paper", {}), entry.get("authors", {})
        why = {"paper": entry.get("ours", {}), "cpu": entry.get("cpu", {})}
        for setting in dict.fromkeys([*paper, *authors, *why["paper"]]):
            expected = authors.get(setting, paper.get(setting))
            row = {**entry["where"], "setting": setting, "paper": paper.get(setting, "not printed"),
                   "authors": authors.get(setting, "–"),
                   "source": source_note(entry)}
            for name in PRESETS:
                sel = selected(runs[name], entry["where"])
                value = ours(sel, setting) if sel or (setting == "runs" and name == "paper") else None
                row[f"ours_{name}"] = value
                row[f"{name}_status"] = status(value, expected, why[name].get(setting))
            statuses = [row[f"{n}_status"] for n in PRESETS if row[f"{n}_status"] != "–"]
            followed = all(x == "same" for x in statuses)
            row["same"] = followed and setting in paper and setting in authors and same(paper[setting],
                                                                                         authors[setting])
            row["basis"] = "" if row["same"] or not followed else "authors' code" if setting in authors else "paper"
            out.append(row)
    return out


def models(root: Path, preset: str) -> list:
    """The exact models a preset's runs use (registry.describe of params.yaml's model names)."""
    grid = P.build(root / "params.yaml", {"preset": preset})
    return sorted({describe(r.settings["model"]) for r in grid.runs.values()})


def render(root: Path) -> tuple[str, int]:
    rows = rows_of(root)
    drift = sum("DRIFT" in (r["paper_status"], r["cpu_status"]) for r in rows)
    n_same = sum(r["same"] for r in rows)
    n_code = sum(r["basis"] == "authors' code" for r in rows)
    n_paper = sum(r["basis"] == "paper" for r in rows)
    head = ["experiment", "dataset", "method", "size", "setting", "paper", "authors' code", "source",
            "ours: paper preset", "ours: cpu preset", "status"]
    lines = ["# The protocol: the paper, the authors' code, and our presets\n",
             "Written by `scripts/protocol-md` from `docs/paper_settings.yaml` (the paper's values, the authors' "
             "effective values, each with where it stands: the paper's section or table in the ACL version, the "
             "authors' code (XiangLi1999/PrefixTuning) as `file:line@commit`) and `params.yaml` (what `prefixtune "
             "params show --preset paper --json` and `--preset cpu --json` resolve for the runs each row selects); "
             "`tests/test_protocol.py` fails when a preset differs from the expected value without a stated reason.\n",
             "The expected value is the authors' effective one (argparse default plus the launch block's overrides) "
             "where their code settles it, since that code produced the paper's numbers; otherwise the paper's. "
             "\"not printed\": the paper does not state it; \"–\" under the authors' code: not settled from the code "
             "(or not read); \"–\" under a preset: it has no run the row selects.\n",
             "Models: " + "; ".join(f"{name} preset: {', '.join(models(root, name))}" for name in PRESETS) + ".\n",
             f"{len(rows)} settings: {n_same} the same in the paper, the authors' code and every preset that runs "
             f"them; {n_code} as the authors' code where the paper is silent or says otherwise; {n_paper} as the "
             f"paper where the authors' code was not read or does not settle it; the rest differ for the reason "
             f"given; {drift} drifted.\n",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    notes = {}  # source text -> its number: each entry's sources once, below the table
    for r in rows:
        st = "same" if r["same"] else f"as the {r['basis']}" if r["basis"] else "; ".join(
            f"{n}: {r[f'{n}_status']}" for n in PRESETS if r[f"{n}_status"] != "–")
        lines.append("| " + " | ".join(fmt(r.get(k)) for k in ("experiment", "dataset", "method", "size")) + " | "
                     + " | ".join([r["setting"], fmt(r["paper"]), fmt(r["authors"]),
                                  f"[{notes.setdefault(r['source'], len(notes) + 1)}]",
                                  fmt(r["ours_paper"]), fmt(r["ours_cpu"]), st]) + " |")
    lines += ["", "## What each setting means", "",
              "The help of the command-line flag of that name (src/prefixtune/configs.py, "
              "src/prefixtune/methods/config.py), or the "
              "protocol's own definition (protocol.py's OWN_MEANINGS).", "",
              "| setting | meaning |", "|---|---|"]
    lines += [f"| {s} | {fmt(meaning(s))} |" for s in sorted({r['setting'] for r in rows})]
    lines += ["", "## Sources", ""] + [f"{n}. {fmt(text)}" for text, n in notes.items()]
    return "\n".join(lines) + "\n", drift
