"""`prefixtune reproduce`: the reproduction report of one preset, from its finished runs.

Writes results/<preset>/reproduction.md (the claims ledger with verdicts, every number the paper prints beside
ours, the reproducibility checklist), reproduction.csv (one row per paper number) and claims.csv (one row per
claim, comparison and selection rule). Reads params.yaml (the grid), the run folders (scores, method.json,
<output>.run.json), docs/paper_results.yaml (the paper's numbers), docs/claims.yaml (the claims ledger),
docs/paper_settings.yaml (the protocol, through prefixtune.protocol) and data/releases.csv (the data pins).
Runs not finished yet are left out and counted; a claim gets a verdict only where its rule has its pairs.
"""

import math
from pathlib import Path

import yaml

from . import params as P
from .aggregate import grid_of
from .errors import InputError
from .files import atomic_open
from .plot import caption_of
from .registry import describe
from .report import checklist, claims, numbers
from .report.runs import load

NUMBER_KEYS = ("id", "table", "page", "dataset", "model", "method", "row", "experiment", "split", "column",
               "metric", "value")
CLAIM_KEYS = ("id", "claim", "where", "experiment", "compare", "metric", "rule")
HEADLINE = {"e2e": "BLEU", "webnlg": "BLEU_A", "dart": "BLEU", "xsum": "rouge2"}  # the dev-beside-test metric
# What each column of the two CSV files means (the report prints them; a test checks they are the files' columns).
CSV_COLUMNS = {
    "reproduction.csv": {
        "id": "the number's id in docs/paper_results.yaml (table.dataset.model.method.column)",
        "table": "the paper's table", "page": "its page in the ACL PDF, 1–16 (proceedings page: page + 4581)",
        "dataset": "the dataset", "model": "the paper's model for the number", "method": "the method",
        "row": "the table's row label as printed", "column": "the table's column label as printed",
        "split": "the set the paper scores", "metric": "the metric (docs/paper_results.yaml's name)",
        "paper": "the paper's value as printed", "ours": "our mean over the matching runs, on the paper's scale",
        "ours_std": "their standard deviation (empty for one run)", "n": "how many of our runs the mean is over",
        "difference": "ours − paper", "epsilon": "ε, where the number is judged (our model is the paper's)",
        "our_model": "the exact model our runs used", "status": "reproduced within ε, differs by more than ε, "
        "proxy: <model>, pending, not run (and why) or not computed (which metric)"},
    "claims.csv": {
        "claim": "the claim's id in docs/claims.yaml", "text": "the claim", "where": "where the paper states it",
        "experiment": "params.yaml's experiment that tests it", "metric": "the metric compared",
        "rule": "better, comparable, not_worse or peak (the verdicts above)",
        "margin": "the bound of a comparable or not_worse claim, on the paper's scale of the metric",
        "proxy": "True when the preset runs the claim's experiment on a model other than the paper's (False where "
                 "it does not run the experiment)",
        "paper": "the paper's number for the claim, in the claim's unit", "a": "the first side (method or init)",
        "b": "the side it is compared with", "verdict": "the verdict, or pending (pairs finished of those planned) "
        "or not run (why)", "model": "the exact model the preset runs the claim on", "test": "the set decoded "
        "and scored", "selection": "the selection rule whose parameters were decoded", "pairs": "paired runs",
        "mean_difference": "the mean of a − b over the pairs, on the paper's scale of the metric (E2E BLEU ×100)",
        "low": "the 95% interval's lower bound (empty while pending)", "high": "its upper bound"}}


def add_arguments(p):
    p.add_argument("--params", default="params.yaml")
    p.add_argument("--overlay", default=None, help="JSON deep-merged over params.yaml (Snakemake --config)")
    p.add_argument("--preset", default=None, help="default: params.yaml's preset")
    p.add_argument("--runs", default=None, help="the preset's run folders (default: runs/<preset>)")
    p.add_argument("--paper", default="docs/paper_results.yaml", help="the paper's numbers")
    p.add_argument("--claims", default="docs/claims.yaml", help="the claims ledger")
    p.add_argument("--out", default=None, help="the report (default: results/<preset>/reproduction.md); "
                   "reproduction.csv and claims.csv are written beside it")


def read_yaml(path, kind: str):
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: missing ({kind})")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise InputError(f"{path}:{mark.line + 1 if mark else '?'}: not valid YAML ({kind})") from None


def checked(entries, path, keys, kind) -> list:
    """`entries` as a list of mappings that each hold `keys`; else an InputError naming the entry."""
    if not isinstance(entries, list):
        raise InputError(f"{path}: expected a list of {kind}")
    for i, e in enumerate(entries):
        missing = [k for k in keys if not isinstance(e, dict) or k not in e]
        if missing:
            name = e.get("id", f"entry {i + 1}") if isinstance(e, dict) else f"entry {i + 1}"
            raise InputError(f"{path}: {kind} {name}: missing {', '.join(missing)}")
    return entries


def read_claims(path) -> list:
    out = checked(read_yaml(path, "the claims ledger"), path, CLAIM_KEYS, "claim")
    for c in out:
        if c["rule"] not in claims.RULES:
            raise InputError(f"{path}: claim {c['id']}: rule {c['rule']!r} is not one of {', '.join(claims.RULES)}")
        if c["rule"] != "peak" and not all(k in c for k in ("a", "b", "pair_on")):
            raise InputError(f"{path}: claim {c['id']}: rule {c['rule']} needs a, b and pair_on")
        if c["rule"] in ("comparable", "not_worse") and not isinstance(c.get("margin"), (int, float)):
            raise InputError(f"{path}: claim {c['id']}: rule {c['rule']} needs a numeric margin")
        if c["metric"] not in numbers.COLUMNS:
            raise InputError(f"{path}: claim {c['id']}: unknown metric {c['metric']!r}")
    return out


def ci(row) -> str:
    if math.isnan(row.get("low", math.nan)):
        return "–" if math.isnan(row.get("mean_difference", math.nan)) else f"{row['mean_difference']:+.2f}"
    return f"{row['mean_difference']:+.2f} [{row['low']:+.2f}, {row['high']:+.2f}]"


def claims_section(ledger) -> list:
    rows = []
    for r in ledger.to_dict("records"):
        sides = f"{r['a']} vs {r['b']}" if isinstance(r.get("b"), str) and r["b"] else str(r.get("a") or "–")
        sel = r.get("selection")
        proxy = r.get("proxy") is True and not r["verdict"].startswith("not run")
        test = r.get("test")
        rows.append([r["claim"], r["text"], r["where"], r["experiment"], test if isinstance(test, str) else "–",
                     sides or "–", sel if isinstance(sel, str) else "–", checklist.fmt(r.get("pairs")), ci(r),
                     r["verdict"] + (" (proxy)" if proxy else ""), checklist.fmt(r.get("paper"), "g")])
    return checklist.md_table(["id", "claim", "where", "experiment", "decoded set", "a vs b", "selection", "pairs",
                               "mean a − b [95% CI]", "verdict", "paper's number"], rows)


def verdict_words(ledger) -> str:
    """What each verdict says, rule by rule, with the margins the ledger sets (claims.py's judge)."""
    bounded = ledger[ledger.rule.isin(["comparable", "not_worse"])].drop_duplicates("claim")
    margins = "; ".join(f"{r.claim}: {r.margin:g} ({r.metric})" for r in bounded.itertuples())
    return ("Verdicts: a 'better' claim (a beats b) holds when the interval lies above 0, is reversed when it lies "
            "below 0, and is not resolved when it contains 0; a 'comparable' claim holds when the interval lies "
            "inside ±margin, does not hold when it lies outside, and is not resolved otherwise; a 'not_worse' claim "
            "(a at least as good as b) holds when the interval lies above −margin, does not hold when it lies below, "
            "and is not resolved otherwise; a 'peak' claim names the prefix length with the best mean score. "
            f"Margins: {margins or 'none in this ledger'}. A pending claim "
            "shows its mean so far and no interval.")


def numbers_section(table) -> list:
    counts = table.status.value_counts()
    lines = [f"{len(table)} numbers: " + "; ".join(f"{n} {s}" for s, n in counts.items()) + ".", ""]
    ours = table[table.n > 0]
    if len(ours):
        lines += checklist.md_table(
            ["id", "paper", "ours (mean ± std)", "runs", "ours − paper", "ε", "status", "our model"],
            [[r.id, f"{r.paper:g}", f"{r.ours:.{d}f} ± {checklist.fmt(r.ours_std, f'.{d}f')}", r.n,
              f"{r.difference:+.{d}f}", checklist.fmt(r.epsilon, "g"), r.status, r.our_model]
             for r in ours.itertuples() for d in [3 if abs(r.paper) < 1.5 else 2]]) + [""]  # fractions: 3 places
    for (tab, status), g in table[table.n == 0].groupby(["table", "status"], sort=False):
        lines.append(f"- {tab}: {len(g)} numbers {status}")
    return lines


def figures(grid, done) -> list:
    """The preset's figures with their captions, once every run is in (the plot stage draws them then; the report
    sits beside plots/)."""
    if done < len(grid.runs) or not grid.plots:
        return []
    lines = ["The figures of these runs (results/" + grid.preset + "/plots, drawn by the plot stage):", ""]
    for path in grid.plots:
        rel = Path(path).relative_to(grid.results)
        lines += [f"![{rel.stem}]({rel.as_posix()})", "", f"*{caption_of(path)}*", ""]
    return lines


def render(preset, grid, runs, ledger, table, protocol_rows, releases) -> str:
    models = sorted({(ds, describe(grid.settings["datasets"][ds]["model"])) for ds in {r.dataset for r in
                                                                                       grid.runs.values()}})
    done = runs.run.nunique() if len(runs) else 0
    per_exp = {e: (sum(1 for r in grid.runs.values() if e in r.experiments),
                   runs[runs.experiment == e].run.nunique() if len(runs) else 0) for e in grid.settings["experiments"]}
    lines = [f"# Reproduction report: the `{preset}` preset", "",
             "Written by `prefixtune reproduce` from params.yaml, the finished runs under runs/" + preset + ", "
             "docs/paper_results.yaml (the paper's numbers, ACL 2021 version), docs/claims.yaml (its claims) and "
             "docs/paper_settings.yaml (its protocol); do not edit by hand.", "",
             "Models: " + "; ".join(f"{ds}: {m}" for ds, m in models) + ".", "",
             f"Runs finished: {done} of {len(grid.runs)} (" + ", ".join(
                 f"{e}: {d} of {n}" for e, (n, d) in per_exp.items()) + "; a run in two experiments counts in "
             "both).", "",
             "## The claims ledger", "",
             "Each claim of the paper, the experiment that tests it, and its verdict on the finished runs: the paired "
             "differences a − b (runs paired as docs/claims.yaml says), their mean and two-sided 95% interval by "
             "Student's t with n − 1 degrees of freedom, n the number of pairs; pending until every pair the preset "
             "plans has finished (at least 3), so that a claim pooled over sizes is not judged on the first sizes "
             "in. Differences, intervals and margins are on the paper's scale of the claim's metric (E2E BLEU: "
             "points, ×100). A verdict marked (proxy) is a finding on a model other than the paper's, not a "
             "judgement of the paper. " + verdict_words(ledger) + " `paper's number`: the number the paper states "
             "for the claim, where it states one, in the claim's own unit (the BLEU gap of a 'better' claim, the "
             "threshold prefix length of a 'peak' claim). Selection: the authors' rule keeps the parameters with "
             "the lowest dev loss looked at every `eval_every` steps (50 in the low-data runs, their code's "
             "default); 'every tenth of the budget' looks every `eval_every_alt` steps, on the same training. "
             f"Figures under results/{preset}/plots are redrawn by the plot stage once every run of the preset has "
             "finished; until then the files there are those of the last complete grid, if any.", "",
             *claims_section(ledger), "",
             *figures(grid, done),
             "## The paper's numbers beside ours", "",
             "Every number of the paper's results tables (docs/paper_results.yaml), matched to the runs of the same "
             "experiment, dataset, method and set, authors' selection rule, on the paper's scale "
             "(src/prefixtune/report/numbers.py). \"Reproduced within ε\" only where our model is the paper's (ε "
             "per metric on the paper's scale: " + ", ".join(f"{m} {e:g}" for m, e in numbers.EPSILON.items())
             + "); a number from an experiment run on another model is shown beside ours as \"proxy\", not "
             "judged. \"not computed\": MoverScore (mover), BERTScore (bert) and BLEURT (bleurt), which Table 2 "
             "prints for DART and this pipeline does not compute. The paper's figures (Figures 3–8: low-data, prefix "
             "length, initialization, data efficiency) print no values, so their experiments have no row here; "
             "their comparisons are in the claims ledger above.", "",
             *numbers_section(table), "",
             "## Reproducibility checklist", "", "### Compute and software (as each run's train stage recorded them)",
             "", *checklist.compute(runs), "", "### Parameters", "",
             "Trainable (kept): the parameters a run trains and keeps (prefix-tuning: the prefix P, after the "
             "reparametrization MLP that trained it is dropped; fine-tuning: every weight); fraction: of the base "
             "model's. A real-word init's P is its own number of tokens (the authors' code; params.yaml), a random "
             "init's the preset's prefix length: the rows by init show what each trained.", "",
             *checklist.parameters(runs), "",
             "### Time per run", "",
             "Wall-clock minutes from each stage's run.json, mean over the cell's runs on one CPU; a run that "
             "shared the cores with other work took longer (docs/results.md gives CPU seconds beside them for the "
             "cpu preset).", "", *checklist.times(runs), "",
             "### Validation beside each decoded result, runs per cell and their spread", "",
             "Model selection's number (the dev loss per target token at the kept step, on the run's dev set) beside "
             "the score of the set the run decodes; mean ± std over the cell's runs (training subsamples x seeds).",
             ""]
    for task in sorted(set(runs.task)) if len(runs) else []:
        metric = HEADLINE.get(task)
        if metric:
            scale = 100.0 if task == "e2e" and metric == "BLEU" else 1.0
            lines += [f"{task}, {metric}{' x 100' if scale != 1 else ''}:", "",
                      *checklist.dev_beside_test(runs[runs.task == task], metric, lambda t, s=scale: s), ""]
    lines += ["### Hyper-parameters and how each was chosen", "",
              "The settings of the paper's protocol this preset runs (docs/protocol.md has every row with its source, "
              "file:line in the authors' code). 'The paper preset': this project's preset of the paper's full "
              "protocol (params.yaml), not the paper itself.", "",
              *checklist.hyperparameters(protocol_rows, preset), "",
              "What each setting means: the help of its command-line flag (src/prefixtune/configs.py, "
              "src/prefixtune/methods/config.py), or the protocol's own definition for those no flag sets (dev, "
              "eval_set, samples, seeds, sizes):", "",
              *checklist.meanings(protocol_rows, preset), "",
              "Chosen by a search on a low-data dev set (never the test set), as A.2 chooses hyper-parameters; "
              "params.yaml's comments say which value each run uses:", "",
              *checklist.dev_searches(f"{grid.results}/tuning"), "",
              "### Data", "", *checklist.data_pins(releases, sorted(grid.downloads)), "",
              "## The CSV files beside this report", ""]
    for name, cols in CSV_COLUMNS.items():
        lines += [f"{name}, one row per " + ("paper number" if name == "reproduction.csv" else
                                             "claim, comparison (a vs b) and selection rule") + ":", "",
                  *checklist.md_table(["column", "meaning"], [[c, m] for c, m in cols.items()]), ""]
    return "\n".join(lines)


def run(args):
    from .data.sources import SOURCES
    from .protocol import rows_of

    grid = grid_of(args)
    preset = grid.preset
    out = Path(args.out or f"results/{preset}/reproduction.md")
    paper_doc = read_yaml(args.paper, "the paper's numbers")
    if not isinstance(paper_doc, dict):
        raise InputError(f"{args.paper}: expected a mapping with numbers and claims")
    paper = checked(paper_doc.get("numbers"), args.paper, NUMBER_KEYS, "number")
    paper_claims = {c["id"]: c for c in checked(paper_doc.get("claims"), args.paper, ("id", "value"), "claim")}
    ledger_in = read_claims(args.claims)
    runs = load(grid, Path(args.runs or f"runs/{preset}"))
    paper_models = {ds: d["model"] for ds, d in P.load_doc(args.params)["defaults"]["datasets"].items()}
    planned = {(e, r.dataset, r.method, t["test"]) for r in grid.runs.values() for e in r.experiments
               for t in r.tests.values()}
    table = numbers.compare(paper, runs, grid.settings, paper_models, describe, planned)
    ledger = claims.verdicts(ledger_in, runs, grid, paper_claims, paper_models)
    ledger = ledger.reindex(columns=list(CSV_COLUMNS["claims.csv"]))  # the same columns for every preset
    table = table.reindex(columns=list(CSV_COLUMNS["reproduction.csv"]))
    text = render(preset, grid, runs, ledger, table, rows_of(Path(args.params).resolve().parent), SOURCES)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(out.with_name("reproduction.csv")) as f:
        table.to_csv(f, index=False)
    if "pairs" in ledger:  # a count: no "2.0" where some rows have none
        ledger["pairs"] = ledger["pairs"].astype("Int64")
    with atomic_open(out.with_name("claims.csv")) as f:
        ledger.to_csv(f, index=False)
    with atomic_open(out) as f:
        f.write(text)
    print(f"wrote {out}, reproduction.csv and claims.csv beside it: {runs.run.nunique() if len(runs) else 0} of "
          f"{len(grid.runs)} runs finished")
