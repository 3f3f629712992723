"""params.yaml: presets, validation, the run grid, and the rendered dvc.yaml."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from prefixtune import params as P
from prefixtune.errors import InputError

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@pytest.fixture
def doc():
    return P.load_doc(REPO / "params.yaml")


def test_default_preset_is_cpu_on_the_papers_low_data_protocol(doc):
    assert doc["preset"] == "cpu"
    g = P.build(REPO / "params.yaml")
    assert g.preset == "cpu" and len(g.runs) == 27 + 9  # the low-data grid, and the init runs it does not share
    low = {(r.method, r.size, r.sample) for r in g.runs.values() if "lowdata" in r.experiments}
    assert low == {(m, n, s) for m in ("prefix", "finetune", "adapter-0.1") for n in (50, 100, 200) for s in range(3)}
    # Figure 5 on the proxy: n = 100, random (P = 6) and three real words, 3 subsamples; the "table-to-text:" runs
    # are the low-data grid's own (one training, listed in both experiments)
    init = {(r.init, r.prefix_len, r.sample) for r in g.runs.values() if "init" in r.experiments}
    assert init == {(i, p, s) for i, p in (("random", 6), ("table2text", 6), ("elephant", None), ("summarize", None))
                    for s in range(3)}
    assert g.runs["e2e/prefix/n100-s1-seed0-p6-table2text"].experiments == ["lowdata", "init"]
    budget = {("prefix", 50): 200, ("prefix", 100): 200, ("prefix", 200): 200, ("finetune", 50): 100,
              ("finetune", 100): 100, ("finetune", 200): 200}
    # the adapter's rate is the one with the lowest dev loss in the committed search (A.2: chosen on dev)
    import pandas as pd
    tuning = pd.read_csv(REPO / "results/cpu/tuning/adapter_lr.csv")
    adapter_lr = tuning.loc[tuning.dev_loss.idxmin(), "lr"]
    for r in g.runs.values():
        st = r.settings
        assert "--model smollm2-135m" in r.train_cmd and st["batch_size"] == 10 and st["test_limit"] is None
        assert st["dev"] == f"data/cpu/e2e/lowdata/dev-n{r.size}-s{r.sample}.jsonl"
        # the authors' rule (dev loss every 50 steps) and the earlier one (every tenth of the budget) beside it
        assert st["eval_every"] == 50 and st["eval_every_alt"] == st["max_steps"] // 10
        assert "--eval-every 50 --eval-every-alt" in r.train_cmd and st["ban_newlines"] and st["beam"] == 5
        assert st["warmup_steps"] == 0 and st["loss"] == ("sequence" if r.method == "prefix" else "token")
        assert st["source_prefix"] == ("table-to-text:" if r.method == "finetune" else None)
        assert ("--source-prefix table-to-text:" in r.train_cmd) == (r.method == "finetune")
        assert st["lr"] == (adapter_lr if r.method == "adapter-0.1" else 5e-5)
        assert st["max_steps"] == budget.get((r.method, r.size), 200)
        # the whole E2E dev set, decoded with each rule's parameters (the second copies the first's output when
        # both kept the same step)
        assert set(r.tests) == {"dev", "dev-alt"} and r.tests["dev"]["input"] == "data/cpu/e2e/dev.jsonl"
        assert r.tests["dev-alt"]["decode_cmd"].endswith(f"--selection alt --same-step-as {r.dir}/dev.hyp.txt")
        assert r.method_dir == f"runs/cpu/{r.id}/method"
    prefix = g.runs["e2e/prefix/n100-s0-seed0-p6-table2text"]
    assert "--prefix-len 6 " in prefix.train_cmd and "--init-text table-to-text:" in prefix.train_cmd
    assert g.plots == ["results/cpu/plots/lowdata_e2e.png", "results/cpu/plots/training_e2e.png",
                       "results/cpu/plots/init.png"]
    assert "--sizes 50 100 200 --samples 3" in g.linearize["e2e"]


def test_paper_preset_grid(doc):
    g = P.build(REPO / "params.yaml", {"preset": "paper"})
    methods = {r.method for r in g.runs.values()}
    assert methods == {"prefix", "embedding", "infix", "adapter-0.1", "adapter-3", "finetune", "finetune-top2"}
    assert {r.dataset for r in g.runs.values()} >= {"e2e", "webnlg", "dart", "xsum", "xsum-news2sports"}
    low = [r for r in g.runs.values() if "lowdata" in r.experiments and r.dataset == "e2e" and r.method == "prefix"]
    assert len(low) == 4 * 5 * 2  # sizes x samples x seeds
    assert "--model gpt2-medium" in g.runs["e2e/prefix/full-seed0-p5-random"].train_cmd
    xsum = g.runs["xsum/prefix/full-seed0-p100-random"]
    assert "--model facebook/bart-large" in xsum.train_cmd and "--beam 6" in xsum.tests["test"]["decode_cmd"]
    assert "--categories" in g.runs["webnlg/prefix/full-seed0-p5-random"].tests["test"]["score_cmd"]
    elephant = g.runs["e2e/prefix/n100-s0-seed0-ptext-elephant"].train_cmd  # the init experiment: P = the word's
    assert "--init-text elephant" in elephant and "--prefix-len" not in elephant  # token count
    # its "table-to-text:" runs are the low-data grid's (P 6 given there): one training in both experiments
    assert "e2e/prefix/n100-s0-seed0-ptext-table2text" not in g.runs
    assert g.runs["e2e/prefix/n100-s3-seed1-p6-table2text"].experiments == ["lowdata", "init"]
    # Figure 5 at n = 100 (Figure 8's caption) on the low-data protocol: 9 inits x 5 subsamples x 2 seeds
    inits = [r for r in g.runs.values() if "init" in r.experiments]
    assert len(inits) == 9 * 5 * 2 and {r.size for r in inits} == {100}
    for r in inits:
        assert (r.settings["lr"], r.settings["batch_size"], r.settings["max_steps"], r.settings["eval_every"],
                r.settings["eval_every_alt"]) == (5e-5, 10, 200, 50, 20) and r.dev_file == f"data/paper/e2e/lowdata/dev-n100-s{r.sample}.jsonl"
    assert "--prefix-len 6 " in g.runs["e2e/prefix/n100-s4-seed1-p6-random"].train_cmd
    assert "--adapter-fraction 0.03" in g.runs["dart/adapter-3/full-seed0"].train_cmd
    assert P.resources(g.settings, "train")["gpus"] == 1
    assert set(g.plots) == {f"results/paper/plots/{n}.png" for n in (
        "lowdata_e2e", "lowdata_xsum", "training_e2e", "training_xsum", "prefix_length", "init")}


def test_a_text_init_run_is_merged_only_into_the_same_training(doc):
    cpu = doc["presets"]["cpu"]
    same = P.expand(P.resolve(doc))
    assert "e2e/prefix/n100-s0-seed0-ptext-table2text" not in same.runs
    # the init experiment trains longer than the low-data grid: a different training, kept as its own run
    longer = P.expand(P.resolve(doc, {"presets": {"cpu": {"overrides": cpu["overrides"] + [
        {"when": {"experiment": "init"}, "train": {"max_steps": 300}}]}}}))
    assert longer.runs["e2e/prefix/n100-s0-seed0-ptext-table2text"].experiments == ["init"]
    assert longer.runs["e2e/prefix/n100-s0-seed0-p6-table2text"].experiments == ["lowdata"]


def test_run_ids_round_trip():
    for rid in ("e2e/prefix/n100-s0-seed0-p10-random", "dart/adapter-0.1/full-seed1", "e2e/prefix/full-seed0-p5-table2text",
                "e2e/prefix/n50-s0-seed0-ptext-elephant"):
        f = P.parse_run_id(rid)
        assert P.run_id(f["dataset"], f["method"], f["size"], f["sample"], f["seed"], f["prefix_len"], f["init"]) == rid


OVERRIDE = "the --config/--configfile override: "


@pytest.mark.parametrize("overlay, message", [
    ({"preset": "papr"}, "params.yaml: unknown preset 'papr' (known: cpu, paper, tiny)"),
    ({"presets": {"cpu": {"decode": {"beem": 4}}}}, OVERRIDE + "unknown key 'presets.cpu.decode.beem'"),
    ({"defaults": {"trian": {}}}, OVERRIDE + "unknown key 'defaults.trian'"),
    ({"presset": "cpu"}, OVERRIDE + "unknown key 'presset'"),
    ({"presets": {"cpu": {"train": {"max_steps": "ten"}}}}, "'presets.cpu.train.max_steps': 'ten' is not of type"),
    ({"presets": {"cpu": {"train": {"prefix_len": 0}}}}, "'presets.cpu.train.prefix_len': 0 is less than the minimum"),
    ({"presets": {"cpu": {"train": {"lr": -1}}}}, "'presets.cpu.train.lr': -1 is less than or equal to the minimum"),
    ({"presets": {"cpu": {"experiments": {"lowdata": {"sizes": [0]}}}}}, "'presets.cpu.experiments.lowdata.sizes.0'"),
    ({"presets": {"cpu": {"experiments": {"lowdata": {"methods": ["prefx"]}}}}}, "unknown method 'prefx'"),
    ({"presets": {"cpu": {"experiments": {"lowdata": {"table": "mian"}}}}}, "'mian' is not one of"),
    ({"presets": {"cpu": {"resources": {"train": {"gpu": 1}}}}}, "unknown key 'presets.cpu.resources.train.gpu'"),
    ({"presets": {"cpu": {"resources": {"trian": {"cpus": 1}}}}}, "'presets.cpu.resources': 'trian' is not one of"),
    ({"presets": {"cpu": {"train": {"loss": "mean"}}}}, "'presets.cpu.train.loss': 'mean' is not one of"),
])
def test_errors_name_the_key_and_blame_the_override(doc, overlay, message):
    with pytest.raises(InputError) as e:
        P.expand(P.resolve(doc, overlay))
    assert message in str(e.value)


def test_errors_in_params_yaml_name_the_line(tmp_path):
    text = (REPO / "params.yaml").read_text()
    bad = tmp_path / "params.yaml"
    bad.write_text(text.replace("    prefix_len: 10\n", "    prefix_len: 0\n", 1))
    line = next(i for i, t in enumerate(bad.read_text().splitlines(), 1) if t == "    prefix_len: 0")
    with pytest.raises(InputError, match=f"^{bad}:{line}: 'defaults.train.prefix_len': 0 is less than the minimum"):
        P.load(bad)
    bad.write_text(text.replace("preset: cpu", "preset: [cpu", 1))  # a YAML syntax error: its line too
    with pytest.raises(InputError, match=f"^{bad}:\\d+: not valid YAML"):
        P.load(bad)


def test_a_misspelled_key_in_an_unused_preset_is_still_an_error(doc):
    doc["presets"]["paper"]["decode"]["max_new_token"] = 3
    with pytest.raises(InputError, match="unknown key 'presets.paper.decode.max_new_token'"):
        P.resolve(doc)


def test_changing_one_setting_changes_only_the_commands_it_reaches(doc):
    a = P.expand(P.resolve(doc))
    b = P.expand(P.resolve(doc, {"presets": {"cpu": {"overrides": doc["presets"]["cpu"]["overrides"] + [
        {"when": {"method": "finetune", "size": 100}, "train": {"lr": 1e-4}}]}}}))
    changed = [rid for rid in a.runs if a.runs[rid].train_cmd != b.runs[rid].train_cmd]
    assert changed == [f"e2e/finetune/n100-s{s}-seed0" for s in range(3)]
    assert all(a.runs[r].tests == b.runs[r].tests for r in a.runs)
    assert a.downloads == b.downloads and a.linearize == b.linearize


def test_the_stage_table_loads_without_torch():
    """Snakemake imports prefixtune.params on every command, a no-op included: it must not pull in torch or
    transformers (seconds each). A check of what is imported, not of time, so it cannot pass or fail with load."""
    code = "import sys, prefixtune.params; print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out


def test_committed_dvc_files_are_up_to_date():
    P.check(REPO / "params.yaml")  # else: run `prefixtune params render`


def test_preset_switch_for_dvc(tmp_path):
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    p = tmp_path / "params.yaml"
    P.render(p)
    assert "smollm2-135m" in (tmp_path / "dvc.yaml").read_text()
    assert not (tmp_path / "pipelines/tiny").exists()  # other presets: on request
    P.render(p, ["tiny"])
    assert "tiny-gpt2" in (tmp_path / "pipelines/tiny/dvc.yaml").read_text()
    # what `dvc exp run -S preset=paper` does to params.yaml: the grid stage then refuses to go on
    p.write_text(p.read_text().replace("\npreset: cpu", "\npreset: paper"))
    with pytest.raises(InputError, match="dvc.yaml: out of date with .* \\(preset: paper.*run `prefixtune params render`"):
        P.check(p)
    # `prefixtune params use tiny`: the line changes, comments stay, dvc.yaml becomes tiny's and its old folder goes
    P.set_preset("tiny", p)
    assert "\npreset: tiny" in p.read_text() and "# The default preset" in p.read_text()
    P.render(p)
    P.check(p)
    assert "tiny-gpt2" in (tmp_path / "dvc.yaml").read_text() and "tiny-gpt2" in (tmp_path / "runs.yaml").read_text()
    assert not (tmp_path / "pipelines/tiny").exists()
    with pytest.raises(InputError, match="unknown preset 'gpu'"):
        P.set_preset("gpu", p)
    assert "\npreset: tiny" in p.read_text()


def test_rendered_pipelines_are_valid_dvc_for_every_preset(tmp_path):
    """Every preset's dvc.yaml loads in DVC together with the others (stage names, outputs that never overlap
    across presets, a DAG), and each train stage declares its run's params (lr, P, ...)."""
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    subprocess.run([str(BIN / "dvc"), "init", "-q"], cwd=tmp_path, check=True, env=env)
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    P.render(tmp_path / "params.yaml", ["tiny", "paper"])
    out = subprocess.run([str(BIN / "dvc"), "stage", "list", "--all"], cwd=tmp_path, env=env, capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stderr
    listed = out.stdout.strip().splitlines()
    for file, n_train in (("dvc.yaml", 36), ("pipelines/tiny/dvc.yaml", 4), ("pipelines/paper/dvc.yaml", 272)):
        stages = yaml.safe_load((tmp_path / file).read_text())["stages"]
        assert sum(s.startswith("train_") for s in stages) == n_train
        mine = [line for line in listed if line.startswith(f"{file}:") or (file == "dvc.yaml" and ":" not in
                                                                           line.split()[0])]
        assert len(mine) == len(stages)
    runs = yaml.safe_load((tmp_path / "runs.yaml").read_text())["runs"]
    train = yaml.safe_load((tmp_path / "dvc.yaml").read_text())["stages"]["train_e2e_prefix_n100-s0-seed0-p6-table2text"]
    (key,) = train["params"][0]["runs.yaml"]
    assert key.endswith(".train")  # decoding settings are the decode stages' params, not train's
    run = runs[key.removeprefix("runs.").removesuffix(".train")]["train"]
    assert (run["id"], run["lr"], run["prefix_len"], run["method"], run["size"]) == (
        "e2e/prefix/n100-s0-seed0-p6-table2text", 5e-5, 6, "prefix", 100)


def test_snakemake_dry_run_of_the_paper_preset():
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    # --forceall: count every job of the grid, whatever outputs this checkout already has.
    out = subprocess.run([str(BIN / "snakemake"), "-n", "--forceall", "--quiet", "rules", "--config", "preset=paper"],
                         cwd=REPO,
                         env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    table = dict(line.split()[:2] for line in out.stdout.splitlines() if line.split()[:1] in (
        ["train"], ["decode"], ["score"], ["download"]) or line.startswith("linearize_"))
    # 160 low-data and init runs decode twice (the authors' selection rule and the second one); the init
    # experiment's 10 "table-to-text:" runs are low-data runs; low-data XSum has 3 subsamples x 3 seeds
    assert table == {"download": "4", "train": "272", "decode": "432", "score": "432",  # one linearize rule
                     **{f"linearize_{s}": "1" for s in ("e2e", "webnlg", "dart", "xsum")}}  # per source


def test_snakemake_lint_is_clean():
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    out = subprocess.run([str(BIN / "snakemake"), "--lint"], cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0 and "Lints for" not in out.stdout + out.stderr, (out.stdout + out.stderr)[-3000:]


def test_paper_xsum_articles_cut_to_512_tokens():
    # Appendix A.1: XSum articles are truncated to 512 tokens, in training and in decoding; no other run
    # passes the flag (the default, 256, is the table-to-text one).
    grid = P.build(REPO / "params.yaml", {"preset": "paper"})
    xsum = [r for r in grid.runs.values() if r.dataset.startswith("xsum")]
    assert xsum and all("--max-source-len 512" in r.train_cmd for r in xsum)
    assert all("--max-source-len 512" in t["decode_cmd"] for r in xsum for t in r.tests.values())
    assert not any("--max-source-len" in r.train_cmd for r in grid.runs.values() if r not in xsum)


def test_paper_table_to_text_decoding_bans_newlines():
    # gpt2/run_generation.py: bad_words_ids [[628], [198]] for table-to-text; the BART code has none.
    grid = P.build(REPO / "params.yaml", {"preset": "paper"})
    for r in grid.runs.values():
        for t in r.tests.values():
            assert ("--ban-newlines" in t["decode_cmd"]) == (not r.dataset.startswith("xsum")), r.id
    cpu = P.build(REPO / "params.yaml", {"preset": "cpu"})  # the cpu preset follows the paper's protocol here too
    assert all("--ban-newlines" in t["decode_cmd"] for r in cpu.runs.values() for t in r.tests.values())


def test_code_deps_follow_the_imports():
    from prefixtune.code_deps import code_deps

    train, score, plot = (set(code_deps(s)) for s in ("train", "score", "plot"))
    assert {"src/prefixtune/train.py", "src/prefixtune/methods/prefix.py", "src/prefixtune/models.py"} <= train
    # train scores ROUGE-2 for --select-by rouge2 (selection.dev_rouge2), and no other metric
    assert {f for f in train if "/metrics/" in f} == {"src/prefixtune/metrics/__init__.py",
                                                      "src/prefixtune/metrics/rouge.py"}
    assert not any("/methods/" in f for f in score)
    assert "src/prefixtune/metrics/mteval.py" in score and plot == {  # report/runs.py: the rules' names
        "src/prefixtune/plot.py", "src/prefixtune/files.py", "src/prefixtune/errors.py", "src/prefixtune/registry.py",
        "src/prefixtune/report/__init__.py", "src/prefixtune/report/runs.py", "src/prefixtune/run_folder.py"}
    assert "src/prefixtune/data/releases.csv" in code_deps("download")  # the release table: data read as code
    assert "src/prefixtune/data/releases.csv" not in train
    dvc = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    some_train = next(v for k, v in dvc.items() if k.startswith("train_"))
    assert set(code_deps("train")) <= set(some_train["deps"])


def test_paper_low_data_protocol_in_params_show_json(capsys):
    """A.2 / Table 8 as `params show --json` states it: low-data E2E with lr 5e-5, batch 10, P 6 from
    "table-to-text:", step budgets by size and method, the best step on the 30% dev set; low-data XSum with
    P 3 from "<s> summarize</s>" (the authors' code), selection by dev ROUGE-2, warmup 100 for the prefix, the
    authors' launch lines' fine-tuning batches (2 x 3) and grid (3 subsamples x 3 seeds), epochs by size and
    method; XSum articles cut to 512 tokens."""
    from prefixtune.cli import main

    main(["params", "show", "--preset", "paper", "--json"])
    rows = {r["id"]: r for r in json.loads(capsys.readouterr().out)}
    keys = {"experiment", "dataset", "method", "size", "sample", "seed", "prefix_len", "init", "lr", "batch_size",
            "max_steps", "epochs", "warmup_steps", "max_source_len", "dev", "test_limit"}
    assert all(keys <= set(r) for r in rows.values())
    low = {(r["method"], r["size"]): r for r in rows.values() if r["experiment"] == "lowdata" and r["sample"] == 0
           and r["seed"] == 0}
    for size, prefix_steps, finetune_steps in [(50, 200, 100), (100, 200, 100), (200, 200, 200), (500, 400, 400)]:
        p, f = low["prefix", size], low["finetune", size]
        assert (p["lr"], p["batch_size"], p["prefix_len"], p["init_text"]) == (5e-5, 10, 6, "table-to-text:")
        assert (p["max_steps"], f["max_steps"], f["lr"], f["batch_size"]) == (prefix_steps, finetune_steps, 5e-5, 10)
        assert p["dev"] == f"data/paper/e2e/lowdata/dev-n{size}-s0.jsonl" and p["eval_every"] == 50 and p["eval_every_alt"] == prefix_steps // 10
        assert f["prefix_len"] is None and p["test_limit"] is None
    assert sum(r["experiment"] == "lowdata" for r in rows.values()) == 2 * 4 * 5 * 2  # methods, sizes, samples, seeds
    xsum = {(r["method"], r["size"]): r for r in rows.values() if r["experiment"] == "lowdata_xsum"}
    assert [xsum["prefix", n]["epochs"] for n in (50, 100, 200, 500)] == [30, 20, 20, 20]
    assert [xsum["finetune", n]["epochs"] for n in (50, 100, 200, 500)] == [30, 10, 3, 3]
    assert {(r["prefix_len"], r["init_text"], r["warmup_steps"], r["max_source_len"]) for (m, _), r in xsum.items()
            if m == "prefix"} == {(3, "<s> summarize</s>", 100, 512)}
    # the authors' launch lines: fine-tuning 2 examples per pass x 3 passes per step, no warm-up; length penalty 1
    assert {(r["batch_size"], r["warmup_steps"], r["length_penalty"]) for (m, _), r in xsum.items()
            if m == "finetune"} == {(2, 0, 1.0)}
    assert sum(r["experiment"] == "lowdata_xsum" for r in rows.values()) == 2 * 4 * 3 * 3
    # their test: 1,500 articles drawn at random (finetune.py:895@7544769), the same draw for every low-data run;
    # the other XSum runs decode the whole test split
    assert {(r["test_sample"], r["tests"]["test"]["input"]) for r in xsum.values()} == {
        (1500, "data/paper/slices/xsum-test-random1500-seed0.jsonl")}
    assert {r["tests"]["test"]["input"] for r in rows.values() if r["dataset"] == "xsum"
            and r["experiment"] != "lowdata_xsum"} == {"data/paper/xsum/test.jsonl"}
    assert all(r["test_sample"] is None for r in rows.values() if r["experiment"] != "lowdata_xsum")
    ft = P.build(REPO / "params.yaml", {"preset": "paper"}).runs["xsum/finetune/n50-s0-seed0"]
    assert " --batch-size 2 --grad-accum 3 " in ft.train_cmd and "--warmup-steps" not in ft.train_cmd  # default 0
    assert rows["xsum/prefix/full-seed0-p100-random"]["max_source_len"] == 512
    assert rows["xsum/prefix/full-seed0-p80-random"]["experiment"] == "prefix_length_xsum"
    assert {r["dataset"] for r in rows.values() if r["experiment"] == "embedding_infix"} == {"e2e"}


def _parsed(module, cmd: str):
    """A stage command line (as params renders it) read back by that stage's own argument parser."""
    import argparse
    import shlex

    words = shlex.split(cmd)
    assert words[:2] == ["prefixtune", module.__name__.rsplit(".", 1)[1]], words[:2]
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    return parser.parse_args(words[2:])


@pytest.mark.parametrize("preset", ["tiny", "cpu", "paper"])
def test_stage_commands_round_trip_through_the_stages_own_parsers(preset):
    """Every train, decode and score command of every run, parsed by `prefixtune <stage>`'s own parser, gives back
    the run's resolved settings (`params show --json`): a flag renamed or a value dropped on the way fails here.
    (The command builders live in prefixtune.params, which must import without torch: the Snakefile and the
    DVC render read it; the stage modules import torch.)"""
    from prefixtune import decode, score, testset, train

    grid = P.build(REPO / "params.yaml", {"preset": preset})
    assert grid.runs
    for r in grid.runs.values():
        s = P.run_record(r)
        a = _parsed(train, r.train_cmd)
        assert (a.model, a.method, str(a.train), str(a.out)) == (s["model"], r.base_method, r.train_file, r.method_dir)
        for key in ("lr", "batch_size", "max_steps", "epochs", "warmup_steps", "loss", "dtype", "seed"):
            assert getattr(a, key) == s[key], (r.id, key, getattr(a, key), s[key])
        assert (str(a.dev) if a.dev else None) == s["dev"] and (a.eval_every or None) == s["eval_every"]
        assert a.patience == s["patience"] and a.init_text == s["init_text"]
        if s["max_source_len"] is not None:
            assert a.max_source_len == s["max_source_len"]
        if r.prefix_len is not None:
            assert a.prefix_len == r.prefix_len
        if r.base_method == "adapter":
            assert (a.adapter_fraction, a.adapter_design) == (s["adapter_fraction"], s["adapter_design"])
        for test, t in r.tests.items():
            d = _parsed(decode, t["decode_cmd"])
            assert (d.model, d.method_dir, d.input, d.out) == (s["model"], [r.method_dir], t["input"], t["hyp"])
            for key in ("beam", "length_penalty", "hyp_length", "max_new_tokens", "min_new_tokens", "ban_newlines"):
                assert getattr(d, key) == s[key], (r.id, key, getattr(d, key), s[key])
            c = _parsed(score, t["score_cmd"])
            refs = c.ref if isinstance(c.ref, list) else [c.ref]
            task = grid.settings["datasets"][r.dataset]["task"]
            assert (str(c.hyp), str(c.out), c.task) == (t["hyp"], t["scores"], task) and t["refs"] in map(str, refs)
    for slug, t in grid.testsets.items():  # each slice: what its name says, from the whole set to its files
        a = _parsed(testset, t["cmd"])
        assert (a.input, a.refs, a.out, a.out_refs) == (t["src_input"], t["src_refs"], t["input"], t["refs"])
        drawn = f"-random{a.sample}-seed{a.seed}" if a.sample else ""
        assert t["input"].endswith(drawn + (f"-first{a.first}" if a.first else "") + ".jsonl"), (slug, t["cmd"])
        assert (a.first or None) == grid.settings["data"]["test_limit"]


def test_params_defaults_are_the_configs_defaults(doc):
    """One definition per setting: params.yaml's `defaults` name the same defaults as the typed configs that
    the commands are built from (a null there is a field whose default is None)."""
    import dataclasses

    from prefixtune.configs import DecodeConfig, TrainConfig
    from prefixtune.methods.config import AdapterConfig, VirtualTokenConfig

    checked = 0
    train = (TrainConfig(), VirtualTokenConfig("prefix"), AdapterConfig("adapter"))
    for section, configs in (("train", train), ("decode", (DecodeConfig(),))):
        for key, value in doc["defaults"][section].items():
            if key == "extra":  # params.yaml's: text appended to the command line, not a config field
                continue
            for config in configs:
                if key in {f.name for f in dataclasses.fields(config)}:
                    assert getattr(config, key) == value, f"defaults.{section}.{key}: {value!r} in params.yaml"
                    checked += 1
    assert checked >= 24  # every key of defaults.train and defaults.decode but init, dev and extra


def test_commands_are_the_configs_flags():
    """A run's train and decode commands are its configs' flags: parsing them back gives the configs."""
    import argparse
    import shlex

    from prefixtune import decode, train
    from prefixtune.configs import DecodeConfig, TrainConfig, from_args

    g = P.build(REPO / "params.yaml", {"preset": "paper"})
    for rid in ("e2e/finetune/n50-s0-seed0", "xsum/prefix/full-seed0-p100-random", "dart/adapter-3/full-seed0"):
        r = g.runs[rid]
        p = argparse.ArgumentParser()
        train.add_arguments(p)
        args = p.parse_args(shlex.split(r.train_cmd)[2:])
        hp = from_args(TrainConfig, args)
        assert (hp.lr, hp.batch_size, hp.loss, hp.seed) == (r.settings["lr"], r.settings["batch_size"],
                                                           r.settings["loss"], r.seed)
        assert hp.source_prefix == r.settings["source_prefix"] and (hp.max_steps, hp.epochs) == (
            r.settings["max_steps"], r.settings["epochs"])
        p = argparse.ArgumentParser()
        decode.add_arguments(p)
        t = next(iter(r.tests.values()))
        d = from_args(DecodeConfig, p.parse_args(shlex.split(t["decode_cmd"])[2:]))
        assert (d.beam, d.length_penalty, d.max_new_tokens, d.ban_newlines) == (
            r.settings["beam"], r.settings["length_penalty"], r.settings["max_new_tokens"], r.settings["ban_newlines"])
