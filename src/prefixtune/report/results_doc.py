"""docs/results.md: the cpu proxy's low-data results, from params.yaml and the committed runs; no number in it is
typed by hand (scripts/results-md writes it; tests/test_results_doc.py checks it is current).

Reads params.yaml (the `cpu` grid's low-data runs: each run's resolved settings) and, for every finished run, the
scores of each decoded set (`<test>.scores.json` with the authors' selection rule, `<test>-alt.scores.json` with
the second rule), method/method.json (kept steps, steps run) and the stages' <output>.run.json (seconds), all
committed; results/cpu/earlier-protocol/runs.csv, the grid as it stood before the protocol change; and the
paper's low-data gap from docs/paper_results.yaml. The grid may be unfinished (scripts/run-grid continues it): the
document says how many runs are in, and a claim gets a verdict only where the stated rule has its pairs.
"""

import inspect
import math
from pathlib import Path

import pandas as pd
import yaml

from .. import params as P
from ..data.splits import lowdata
from ..errors import InputError
from ..plot import caption_of
from ..registry import describe
from ..run_folder import cpu_label, decoded, finished, machine
from ..verdict import MIN_PAIRS, paired_t
from .checklist import md_table as md_lines
from .checklist import mean_std
from .runs import SELECTIONS

PRESET = "cpu"
METRICS = ["BLEU", "NIST", "METEOR", "ROUGE_L", "CIDEr"]
DEV_FRACTION = inspect.signature(lowdata).parameters["dev_fraction"].default  # splits.py's, which every preset uses
RULES = {"primary": f"{SELECTIONS['primary']} (dev loss every 50 steps)", "alt": SELECTIONS["alt"]}
CLAIMS = (("prefix", "finetune", "The paper's claim: **prefix-tuning beats fine-tuning in low-data settings** "
                                 "(the paper: +{gap} BLEU, its average over sizes {paper_sizes}; here sizes {sizes})"),
          ("prefix", "adapter-0.1", "A comparison beyond the paper's claims: **prefix-tuning vs adapters (0.1%) on "
                                    "these low-data runs** (the paper compares them with full data only, Table 2, "
                                    "which this preset does not run: its row in the claims ledger reads 'not run')"))


def paper_gap(root: Path) -> float:
    """The paper's low-data gap (BLEU, prefix minus fine-tuning, averaged over the sizes; Sec. 6.3), as recorded in
    docs/paper_results.yaml (claim lowdata_gap)."""
    path = root / "docs" / "paper_results.yaml"
    if not path.is_file():
        raise InputError(f"{path}: missing (the paper's numbers)")
    recorded = yaml.safe_load(path.read_text(encoding="utf-8"))["claims"]
    return {c["id"]: c for c in recorded}["lowdata_gap"]["value"]


def md_table(head, rows) -> str:
    """checklist.md_table as one text."""
    return "\n".join(md_lines(head, rows))


def finished_runs(root: Path, planned) -> pd.DataFrame:
    """One row per finished run of `planned` (the grid's runs) and selection rule (its scores exist): cell keys,
    metrics, kept step, times."""
    rows = [{"run": r.id, "method": r.method, "size": r.size, "sample": r.sample, "seed": r.seed,
             "selection": d["selection"], **{m: d["scores"][m] for m in METRICS}, "best_step": d["kept_step"],
             **{k: d[k] for k in ("kept_dev_loss", "steps_run", "steps", "train_s", "train_cpu_s", "decode_s",
                                  "score_s")},
             "cpu": cpu_label(machine(root / r.dir / "method"))}
            for r in planned if finished(r, root / r.dir) for d in decoded(r, root / r.dir)]
    return pd.DataFrame(rows, columns=["run", "method", "size", "sample", "seed", "selection", *METRICS, "best_step",
                                       "kept_dev_loss", "steps_run", "steps", "train_s", "train_cpu_s", "decode_s",
                                       "score_s", "cpu"])


def settings_table(grid):
    """What each kind of run trained and decoded with: the grid's resolved settings."""
    rows = {}
    for r in grid.runs.values():
        s = r.settings
        rows[(r.method, r.size)] = [r.method, str(r.size), f"{float(s['lr']):g}", str(s["batch_size"]),
                                    str(s["max_steps"]), str(s["eval_every"]), str(r.prefix_len or "–"),
                                    s["init_text"] or "–", str(s["beam"]), str(s["max_new_tokens"])]
    head = ["method", "size", "lr", "batch", "step budget", "dev loss every", "prefix length", "init", "beam",
            "max new tokens"]
    return md_table(head, [v for _, v in sorted(rows.items(), key=lambda kv: (kv[0][0], int(kv[0][1])))])


SAME = ("lr", "batch_size", "max_steps", "eval_every", "prefix_len", "init_text", "beam", "length_penalty",
        "hyp_length", "ban_newlines")  # the per-run settings a reduction must leave as the paper preset has them


def reductions(root: Path, grid) -> list:
    """Where this preset departs from the paper preset's low-data E2E grid, each read from both presets' runs
    as `params show --json` records them."""
    paper = [P.run_record(r) for r in P.build(root / "params.yaml", {"preset": "paper"}).runs.values()
             if "lowdata" in r.experiments and r.dataset == "e2e"]
    ours = [P.run_record(r) for r in grid.runs.values() if "lowdata" in r.experiments]

    def distinct(recs, key):  # the values `key` takes, numbers in numeric order
        return sorted({rec[key] for rec in recs}, key=lambda v: (0, v) if isinstance(v, (int, float)) else (1, str(v)))

    def listed(recs, key):
        return ", ".join(map(str, distinct(recs, key)))

    out = [f"training sizes {listed(ours, 'size')} (the paper: {listed(paper, 'size')})",
           f"{len(distinct(ours, 'sample'))} training subsample(s) x {len(distinct(ours, 'seed'))} seed(s) per cell "
           f"(the paper: {len(distinct(paper, 'sample'))} x {len(distinct(paper, 'seed'))})",
           f"evaluation set: its first {listed(ours, 'test_limit')} inputs (the paper: all)"
           if any(rec["test_limit"] for rec in ours) else "evaluation set: all its inputs, as the paper",
           f"at most {listed(ours, 'max_new_tokens')} new tokens (the paper preset: {listed(paper, 'max_new_tokens')})"]
    by_cell = {(rec["method"], rec["size"]): rec for rec in paper}
    for m in distinct([rec for rec in ours if (rec["method"], rec["size"]) not in by_cell], "method"):
        mine = [rec for rec in ours if rec["method"] == m]
        budget = {rec["size"]: rec["max_steps"] for rec in mine}
        same = budget == {rec["size"]: rec["max_steps"] for rec in ours if rec["method"] == "prefix"}
        out.append(f"{m}: not in the paper's low-data figure (lr {listed(mine, 'lr')}, chosen on the dev subsample: "
                   f"params.yaml; step budget {listed(mine, 'max_steps')}{', as prefix-tuning' if same else ''})")
    for mine in ours:
        twin = by_cell.get((mine["method"], mine["size"]))
        diff = [f"{k} {mine[k]} (paper {twin[k]})" for k in SAME if mine[k] != twin[k]] if twin else []
        if diff:
            out.append(f"{mine['method']} at n = {mine['size']}: " + ", ".join(diff))
    return list(dict.fromkeys(out))  # one line per distinct reduction


def verdict(diffs, a, b, needed=MIN_PAIRS):
    """The t-rule verdict, or pending until `needed` pairs (every pair the grid plans, at least MIN_PAIRS)."""
    if len(diffs) < max(needed, MIN_PAIRS):
        return f"pending ({len(diffs)} of {max(needed, MIN_PAIRS)} pairs)"
    v = paired_t(diffs, a, b)
    return f"{v.text}; 95% interval [{v.low:+.2f}, {v.high:+.2f}]"


def planned_pairs(grid, a, b) -> pd.Series:
    """How many (subsample, seed) pairs of methods a and b the grid plans at each size, finished or not."""
    keys = [{(r.size, r.sample, r.seed) for r in grid.runs.values() if r.method == m} for m in (a, b)]
    return pd.Series([size for size, _, _ in keys[0] & keys[1]], dtype=object).value_counts()


def gaps(runs, a, b):
    """BLEU x100 of method a minus method b, paired by (size, sample, seed)."""
    key = ["size", "sample", "seed"]
    x = runs[runs["method"] == a].set_index(key)["BLEU"] * 100
    y = runs[runs["method"] == b].set_index(key)["BLEU"] * 100
    return (x - y).dropna()


def results_table(runs) -> str:
    rows = []
    for (method, size), g in runs.groupby(["method", "size"]):
        cells = [method, str(size), str(len(g))]
        for m in METRICS:
            v = g[m] * (100 if m == "BLEU" else 1)
            cells.append(mean_std(v, ".2f"))
        cells.append(", ".join(f"{b:.0f}/{t}" for b, t in zip(g["best_step"], g["steps"])))
        rows.append(cells)
    head = ["method", "size", "runs", *(m + (" ×100" if m == "BLEU" else "") for m in METRICS), "kept step / budget"]
    return md_table(head, rows) if rows else "No run has finished yet."


def claims(runs, w, words: dict, label="", grid=None):
    """The verdict of each claim per size and over all sizes, and the paired differences behind them. With
    `grid`, a verdict waits for every pair it plans (a pooled mean is not judged on the first sizes in);
    without, the pairs present are the whole grid (the earlier protocol's, complete)."""
    diffs = {f"{a} − {b}": gaps(runs, a, b) for a, b, _ in CLAIMS}
    for (a, b, claim), d in zip(CLAIMS, diffs.values()):
        plan = planned_pairs(grid, a, b) if grid is not None else d.index.get_level_values("size").value_counts()
        parts = [f"size {size}: {g.mean():+.2f} over {len(g)} pair(s), **{verdict(g, a, b, plan.get(size, 0))}**"
                 for size, g in d.groupby(level="size")] if len(d) else ["no pairs yet"]
        if len(plan) > 1 and len(d):
            parts.append(f"all sizes: {d.mean():+.2f} over {len(d)} pairs, **{verdict(d, a, b, plan.sum())}**")
        w(f"- {claim.format(**words)}{label}. {a} minus {b}, BLEU ×100: " + "; ".join(parts) + ".")
    w("")
    pairs = pd.concat(diffs, axis=1).dropna(how="all")
    if len(pairs):
        w("The paired differences behind them (BLEU ×100; empty where a partner has not finished):\n")
        w(md_table(["size", "subsample", "seed", *pairs.columns],
                   [[str(size), f"s{sample}", str(seed), *("" if pd.isna(v) else f"{v:+.2f}" for v in row)]
                    for (size, sample, seed), row in pairs.sort_index().iterrows()]) + "\n")


def render(root: Path) -> str:
    grid = P.build(root / "params.yaml", {"preset": PRESET})
    every = finished_runs(root, grid.runs.values())  # the preset's finished runs, low-data and init: their times
    done = set(every["run"])
    own = [r.id for r in grid.runs.values() if "init" in r.experiments and "lowdata" not in r.experiments]
    inits = {"runs": sum("init" in r.experiments for r in grid.runs.values()), "own": len(own),
             "own_done": len(done.intersection(own)), "all": len(grid.runs), "all_done": len(done)}
    # the low-data grid only from here: the init runs' figure and verdicts are in results/cpu/reproduction.md
    grid.runs = {rid: r for rid, r in grid.runs.items() if "lowdata" in r.experiments}
    paper_sizes = sorted({r.size for r in P.build(root / "params.yaml", {"preset": "paper"}).runs.values()
                          if "lowdata" in r.experiments and r.dataset == "e2e"})
    sizes = sorted({r.size for r in grid.runs.values()})
    words = {"gap": paper_gap(root), "paper_sizes": ", ".join(map(str, paper_sizes)),
             "sizes": ", ".join(map(str, sizes))}
    s = grid.settings
    model = describe(s["datasets"]["e2e"]["model"])
    runs = every[every["run"].isin(grid.runs)].reset_index(drop=True)
    n_done = runs["run"].nunique()
    out = []
    w = out.append
    intro(w, root, grid, model, n_done, inits)
    w("## Low-data E2E dev set (BLEU ×100 and the other E2E metrics), mean ± std over finished subsamples\n")
    for sel, rule in RULES.items():
        w(f"### Selection: {rule}\n")
        w(results_table(runs[runs["selection"] == sel]) + "\n")
    w("BLEU ×100; NIST, METEOR, ROUGE_L and CIDEr as the official E2E scorer prints them (METEOR and ROUGE_L on a "
      "0–1 scale; the paper's E2E tables print them ×100). runs: the cell's finished runs (training subsamples × "
      "seeds); ± the standard deviation over them.\n")
    if n_done < len(grid.runs):  # the plot stage redraws them from the whole grid
        w(f"The figures (results/{PRESET}/plots/lowdata_e2e.png, training_e2e.png) are drawn when every run is in; "
          "the files there now show the earlier protocol's grid, so they are not shown here.\n")
    else:
        for name in ("lowdata_e2e", "training_e2e"):
            if (root / "results" / PRESET / "plots" / f"{name}.png").is_file():
                w(f"![{name}](../results/{PRESET}/plots/{name}.png)\n\n*{caption_of(name)}*\n")

    w("## The paper's claims on this proxy\n")
    w(f"Rule: runs are paired by training subsample and seed; a claim 'A beats B' at one size gets a verdict once "
      f"every pair the grid plans there has finished (at least {MIN_PAIRS}), from the 95% interval of the mean "
      "paired difference by Student's t with n − 1 degrees of freedom for n pairs (two-sided; with 3 pairs "
      "t = 4.30): it holds (A ahead) when the interval lies above 0, is reversed (B ahead) when below, and is not "
      "resolved (no difference beyond noise) when it contains 0, the words of results/cpu/reproduction.md's claims "
      "ledger; 'all sizes' "
      "applies the rule to every pair at once, once the whole grid is in (the paper's gap is an average over "
      "sizes). A verdict is a finding on this proxy (its model, sizes and runs), "
      "not a test of the paper's GPT-2 numbers. Each selection rule gets its own verdicts, side by side, so that "
      "a reader sees whether a conclusion depends on how often the dev loss is looked at. The claims ledger "
      "(results/cpu/reproduction.md) gives one verdict per claim and rule, the 'all sizes' one; the per-size "
      "verdicts show where it comes from. No correction is made for the number of intervals "
      f"({len(sizes)} sizes × {len(CLAIMS)} comparisons × {len(RULES)} rules = "
      f"{len(sizes) * len(CLAIMS) * len(RULES)} at 95% each), so one of them may exclude 0 by chance alone.\n")
    for sel, rule in RULES.items():
        w(f"### Selection: {rule}\n")
        claims(runs[runs["selection"] == sel], w, words, grid=grid)
    rules_disagree(w, runs, complete=n_done == len(grid.runs))

    times(w, every, inits["all_done"])
    earlier(w, root, model, words)
    return "\n".join(out)


def rules_disagree(w, runs, complete=False):
    """A sentence wherever the two selection rules put a claim's mean difference over all sizes on opposite sides of
    0: the reader should not take either rule's sign as the proxy's answer. `complete`: every run of the grid is
    in, so the verdicts above are final."""
    how = {"primary": "the " + RULES["primary"], "alt": "selection " + RULES["alt"]}
    for a, b, _ in CLAIMS:
        means = {sel: gaps(runs[runs["selection"] == sel], a, b) for sel in RULES}
        signs = {math.copysign(1, d.mean()) for d in means.values() if len(d) and d.mean() != 0}
        if all(len(d) for d in means.values()) and signs == {1.0, -1.0}:
            then = ("With every pair in, the sign of the mean depends on the selection rule, that is on how often "
                    "the dev loss is looked at; the verdicts above say whether either rule's difference is beyond "
                    "noise. Read both, not one of them."
                    if complete else
                    "On the pairs in so far, the sign depends on the selection rule; whether that is an effect of "
                    "the rule or the noise of one kept checkpoint per run is for the verdicts to say once every pair "
                    "is in. Read each rule's verdict, not one of them.")
            w(f"**The rules disagree on {a} − {b}:** over all sizes and the pairs finished, its mean (BLEU ×100) is "
              + " and ".join(f"{d.mean():+.2f} over {len(d)} pairs with {how[sel]}" for sel, d in means.items())
              + f". {then}" + parted(runs) + "\n")


def parted(runs) -> str:
    """Where the two rules kept the most different parameters: the cell whose mean dev loss at the kept step
    differs most between them, with the kept steps and BLEU under each (empty when no cell has both)."""
    cells = runs.groupby(["method", "size", "selection"]).agg(
        loss=("kept_dev_loss", "mean"), bleu=("BLEU", "mean"), n=("run", "size"),
        steps=("best_step", lambda v: ", ".join(f"{x:.0f}" for x in v)), budget=("steps", "max")).unstack("selection")
    cells = cells.dropna()
    if cells.empty:
        return ""
    (method, size), c = max(cells.iterrows(), key=lambda kv: abs(kv[1]["loss", "primary"] - kv[1]["loss", "alt"]))
    return (f" The rules part most on {method} at n = {size} (budget {c['budget', 'primary']:.0f} steps): the "
            f"{RULES['primary']} kept step(s) {c['steps', 'primary']}, at a mean dev loss of "
            f"{c['loss', 'primary']:.2f} per target token and BLEU ×100 {100 * c['bleu', 'primary']:.2f}; "
            f"{RULES['alt']} kept step(s) {c['steps', 'alt']}, at {c['loss', 'alt']:.2f} and "
            f"{100 * c['bleu', 'alt']:.2f} (means over {c['n', 'primary']:.0f} runs).")


def intro(w, root, grid, model, n_done, inits):
    """The title, the progress line, what the proxy is and how it departs from the paper preset, the settings per
    run."""
    s = grid.settings
    w(f"# Results: the authors' low-data protocol on {model} (`{PRESET}` preset)\n")
    w(f"Written by `scripts/results-md` from `params.yaml` and the committed runs (`runs/{PRESET}/<run id>/`: "
      "scores, method.json, the stages' `.run.json` times); a test fails when this file and those disagree.\n")
    if inits["all_done"] < inits["all"]:
        w(f"**Progress: {n_done} of the {len(grid.runs)} low-data runs finished on this protocol; "
          f"{inits['all_done']} of the preset's {inits['all']} runs in all.** `scripts/run-grid` runs the rest, cell "
          "by cell (a fresh clone continues where this one stopped; README). The init experiment (Figure 5 at "
          f"n = 100) has {inits['runs']} runs: {inits['own']} of its own ({inits['own_done']} finished) and the "
          f"{inits['runs'] - inits['own']} \"table-to-text:\" runs at n = 100 of this grid; its results and verdicts "
          f"are in results/{PRESET}/reproduction.md (`scripts/run-grid --experiment init` runs its runs first). "
          "The grid as it stood before the protocol change is in the last section.\n")
    else:
        w(f"**All {inits['all']} runs of the preset finished** ({n_done} low-data runs; the init experiment's "
          f"{inits['own']} runs of its own are in results/{PRESET}/reproduction.md; `scripts/run-grid` runs again "
          "a run whose code, data or settings change).\n")
    w("**A proxy of the paper's Figure 3 (E2E), not its numbers:**\n")
    w(f"- model: {model}: 30 layers, 3 key/value heads; not GPT-2 medium;")
    w(f"- data: E2E training subsamples of {', '.join(str(n) for n in sorted({r.size for r in grid.runs.values()}))} "
      f"distinct inputs (subsamples s0, s1, … drawn with split seed {s['data']['split_seed']}; a run id's `seed` is "
      f"its training seed), each with a dev subsample for model selection: {DEV_FRACTION:.0%} of its size in "
      "further E2E training inputs, disjoint from the training subsample (never the evaluation set);")
    w("- run ids: `e2e/<method>/n<size>-s<subsample>-seed<seed>`; a prefix-tuning run adds `-p<P>-<init>` (P "
      "virtual tokens initialized from the init: `random`, or a label of params.yaml's `inits`, e.g. "
      "`table2text` for \"table-to-text:\") or `-ptext-<init>` (P set by the init text's own number of tokens, as "
      "for the paper's real-word inits \"elephant\" and \"summarize\");")
    tests = sorted({t["input"] for r in grid.runs.values() for t in r.tests.values()})
    w(f"- evaluation: {', '.join(f'`{t}`' for t in tests)} (the whole E2E dev set, 547 inputs with all their "
      "references, as the authors' low-data generation decodes it), scored with the five official E2E metrics "
      "(BLEU ×100 here); every run is decoded twice, with the parameters each selection rule kept (once when both "
      "kept the same step);")
    dec = {(r.settings["length_penalty"], r.settings["hyp_length"], r.settings["ban_newlines"])
           for r in grid.runs.values()}
    for lp, hyp_length, ban in sorted(dec, key=str):
        counted = ("the prompt and the new tokens, eos not (the authors' 2021 transformers)" if hyp_length == "sequence"
                   else "the new tokens with eos (today's transformers)")
        w(f"- decoding: beam search, length penalty {lp:g} over a length that counts {counted}"
          + ("; the newline tokens banned (the authors' `bad_words_ids`);" if ban else ";"))
    w("- reduced from the paper preset's low-data E2E runs here, and only here (read from both presets; a run's "
      f"{', '.join(SAME)} would be listed if they differed from the paper preset's):")
    for line in reductions(root, grid):
        w(f"  - {line};")
    w("- settings per run (docs/protocol.md: each with the paper's value and the authors' code's):\n")
    w(settings_table(grid) + "\n")



def times(w, runs, n_done):
    """The time each finished run took (from its stages' .run.json), and the CPU it ran on: the grid runs across
    sessions, on whichever machine each session gets, and their speeds differ several-fold."""
    w("## Time each run took (2 cores; the CPU each ran on): every finished run of the preset, low-data and init\n")
    w("From each stage's `<output>.run.json` (the whole command: model loading included), with the CPU its train "
      "stage recorded (in brackets, the fastest of AVX2, AVX-512, AVX-512 BF16, AMX it has; the runs here compute "
      "in float32; 'not recorded': trained before the run.json held the CPU). Training uses 2 threads, so its CPU "
      "seconds near twice its wall seconds mean it had the cores to itself; far less, that other work shared them. "
      "Decode: the authors' rule's decode, then the second rule's (a copy when both kept the same step).\n")
    if n_done:
        first, second = runs[runs["selection"] == "primary"], runs[runs["selection"] == "alt"].set_index("run")
        first = first.assign(second_s=first["run"].map(second["decode_s"]),
                             second_score_s=first["run"].map(second["score_s"]))
        w(md_table(["run", "CPU", "steps run / budget", "train s", "train CPU s", "decode s", "second decode s",
                    "score s", "second score s"],
                   [[r["run"], r["cpu"], f"{r['steps_run']}/{r['steps']}"]
                    + ["" if pd.isna(v) else f"{v:.0f}" for v in (
                        r["train_s"], r["train_cpu_s"], r["decode_s"], r["second_s"], r["score_s"],
                        r["second_score_s"])]
                    for _, r in first.sort_values(["method", "size", "sample", "seed", "run"]).iterrows()]))
        minutes = first[["train_s", "decode_s", "second_s", "score_s", "second_score_s"]].sum(axis=1) / 60
        w(f"\nSum over the {n_done} finished runs (every column but train CPU s, from the unrounded seconds): "
          f"{minutes.sum():.0f} minutes; by CPU:\n")
        for cpu, m in minutes.groupby(first["cpu"], sort=True):
            w(f"- {cpu}: {len(m)} run(s), {m.sum():.0f} minutes in all, {m.median():.0f} per run (median)")
        w("")
    else:
        w("No run has finished yet on this protocol.\n")


def earlier(w, root, model, words):
    """The grid before the protocol change (results/cpu/earlier-protocol/runs.csv), under the t rule."""
    earlier = root / "results" / PRESET / "earlier-protocol" / "runs.csv"
    if earlier.is_file():
        old = pd.read_csv(earlier).rename(columns={"kept_step": "best_step"})
        w("## The earlier protocol (the grid before the protocol change), under the t rule\n")
        w("The 27 runs committed before the change to the authors' effective protocol (docs/protocol.md): the first "
          "200 E2E **test** inputs, dev loss every tenth of the budget as the only rule, NLL summed per target for "
          f"every method, no low-data token for fine-tuning; the same model, {model}. Their scores and kept steps "
          "are in results/cpu/earlier-protocol/runs.csv; the folder under runs/cpu/ of a run not yet re-run still "
          "holds its earlier outputs, which `scripts/run-grid` replaces. Their verdicts were first stated with a "
          "two-standard-error rule; here with the t rule above. **Not comparable with the tables above**: another "
          "evaluation set (test inputs, not the dev set) and another protocol.\n")
        w(results_table(old) + "\n")
        claims(old, w, words, " (the earlier, superseded protocol: the first 200 E2E test inputs; a finding on this "
                              "proxy under a protocol that is not the authors', not a verdict on the paper)")
