"""The whole DAG, end to end, on the `tiny` preset (tiny-gpt2, a few examples, 2 steps, 4 test inputs),
through Snakemake and through DVC, each in a fresh copy of the repository, reading the data mirror
beside the clone (../shared/data). A second run must do nothing; a changed decode setting must re-run
decode, score, aggregate and plot but not train.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
MIRROR = Path(os.environ.get("PREFIXTUNE_DATA_MIRROR") or REPO.parent / "shared" / "data")
BIN = Path(sys.executable).parent

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (MIRROR / "e2e").is_dir(), reason=f"no data mirror at {MIRROR}"),
]


def copy_repo(dest: Path) -> Path:
    """The files a fresh clone would have (tracked + not ignored), without data/, runs/, caches."""
    files = subprocess.run(["git", "ls-files", "-z", "-co", "--exclude-standard"], cwd=REPO, check=True,
                           capture_output=True).stdout.decode().split("\0")
    for f in filter(None, files):
        src = REPO / f
        if src.is_file():
            (dest / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / f)
    return dest


def snapshot(repo: Path) -> dict:
    """Every committed file of the copy (results/cpu, dvc.yaml, dvc.lock, ...) -> its bytes."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, check=True, capture_output=True).stdout.decode()
    return {f: (repo / f).read_bytes() for f in filter(None, files.split("\0")) if (repo / f).is_file()}


def assert_untouched(repo: Path, before: dict):
    changed = [f for f, data in before.items() if not (repo / f).is_file() or (repo / f).read_bytes() != data]
    assert not changed, f"running the tiny preset changed committed files: {changed[:10]}"


def env(**extra):
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "PREFIXTUNE_DATA_MIRROR": str(MIRROR), "PYTHONUNBUFFERED": "1", **extra}


def sh(args, cwd, timeout=600, check=True, **extra_env):
    t0 = time.perf_counter()
    p = subprocess.run(args, cwd=cwd, env=env(**extra_env), capture_output=True, text=True, timeout=timeout)
    out = p.stdout + p.stderr
    print(f"$ {' '.join(map(str, args))}  ({time.perf_counter() - t0:.1f} s)\n{out[-3000:]}")
    if check and p.returncode != 0:
        pytest.fail(f"{args} exited {p.returncode}:\n{out[-6000:]}")
    return out


def check_outputs(repo: Path):
    import pandas as pd

    from prefixtune import params

    grid = params.build(repo / "params.yaml", {"preset": "tiny"})
    for scores in grid.scores():
        assert (repo / scores).is_file(), scores
    low = pd.read_csv(repo / "results/tiny/tables/lowdata.csv")
    assert set(low.method) == {"prefix", "finetune"} and sorted(set(low["size"])) == [4, 8]
    assert len(grid.runs) == 4
    assert {"BLEU", "BLEU_std", "n", "trainable_fraction"} <= set(low.columns)
    for t in params.TABLES:
        assert (repo / f"results/tiny/tables/{t}.csv").is_file()
        assert (repo / f"results/tiny/metrics/{t}.json").is_file()
    for png in grid.plots:
        assert png.startswith("results/tiny/") and (repo / png).read_bytes()[:4] == b"\x89PNG"
    settings = pd.read_csv(repo / "results/tiny/tables/settings.csv")
    assert len(settings) == 4 and {"lr", "prefix_len", "max_steps", "method"} <= set(settings.columns)
    # the reproduction report: every paper number has a row; the tiny preset runs none of the paper's cells
    report = (repo / "results/tiny/reproduction.md").read_text()
    assert "Runs finished: 4 of 4" in report and "## Reproducibility checklist" in report
    numbers = pd.read_csv(repo / "results/tiny/reproduction.csv")
    assert len(numbers) == 311 and (numbers.n == 0).all()
    claims = pd.read_csv(repo / "results/tiny/claims.csv").set_index("claim")
    # its fine-tuning runs are another experiment's (lowdata_finetune): the claim's experiment has one side
    assert claims.loc["lowdata_better", "verdict"] == "not run in this preset (no method finetune)"


def dry_run_jobs(text):
    """(rule, {input, output, log}, shell command) of each job that `snakemake -n -p` prints."""
    jobs = []
    for block in re.split(r"\n\[[^\]\n]+\]\n", text)[1:]:
        m = re.match(r"(?:local)?rule (\S+):\n", block)
        if m:
            fields = {k: v.split(", ") for k, v in re.findall(r"^    (input|output|log): (.*)$", block, re.M)}
            cmd = re.search(r"^Shell command: (.*)$", block, re.M)
            jobs.append((m.group(1), fields, cmd.group(1) if cmd else None))
    return jobs


def planned(text) -> dict:
    """{rule: job count} of the "Job stats:" table that a Snakemake dry run prints (without `all` and `total`)."""
    table = text.split("Job stats:")[-1]
    return {rule: int(n) for rule, n in re.findall(r"^(\w+)\s+(\d+)$", table, re.M) if rule not in ("all", "total")}


def test_both_engines_run_the_stage_table(tmp_path):
    """One table of jobs (prefixtune.params.stages) for both engines: on a fresh copy, Snakemake's DAG of the
    tiny preset has one job per stage with the stage's outputs, inputs (its data and code; a file inside a
    method folder is the folder), log and command; DVC's rendered pipeline has the same stages, commands,
    dependencies and outputs."""
    from prefixtune import params as P

    repo = copy_repo(tmp_path / "repo")
    stages = P.stage_table(P.build(repo / "params.yaml", {"preset": "tiny"}))
    jobs = [j for j in dry_run_jobs(sh([str(BIN / "snakemake"), "-n", "-p", "--config", "preset=tiny"], repo))
            if j[0] != "all"]
    assert len(jobs) == len(stages) and {s.kind for s in stages} >= {"download", "linearize", "testset", "train"}
    method_dirs = {o for s in stages if s.kind == "train" for o in s.outs}
    by_outputs = {frozenset(fields["output"]): (rule, fields, cmd) for rule, fields, cmd in jobs}
    for s in stages:
        rule, fields, cmd = by_outputs[frozenset(s.outs)]
        assert rule.startswith(s.kind), (rule, s)
        deps = {os.path.dirname(d) if os.path.dirname(d) in method_dirs else d for d in s.deps}
        assert set(fields.get("input", [])) == deps | set(s.code), s
        assert fields["log"] == [s.log] and cmd.lstrip("(").startswith(s.cmd), (cmd, s.cmd)

    sh([str(BIN / "prefixtune"), "params", "render", "tiny"], repo)
    dvc = yaml.safe_load((repo / "pipelines/tiny/dvc.yaml").read_text())["stages"]
    ok = "runs/tiny/grid.ok"
    rendered = [s for s in stages if s.kind != "download"]  # downloads: pipelines/downloads/dvc.yaml, shared
    assert set(dvc) == {"grid"} | {s.name for s in rendered}
    for s in rendered:
        d = dvc[s.name]
        outs = [o if isinstance(o, str) else next(iter(o)) for o in d.get("outs", []) + d.get("metrics", [])]
        assert d["cmd"] == s.cmd and d["deps"] == [*([ok] if s.kind == "linearize" else []), *s.deps, *s.code]
        assert sorted(outs) == sorted(s.outs), s
    downloads = yaml.safe_load((repo / "pipelines/downloads/dvc.yaml").read_text())["stages"]
    for s in stages:
        if s.kind == "download":
            d = downloads[s.name]
            assert (d["cmd"], d["deps"], d["outs"]) == (s.cmd, [*s.deps, *s.code], list(s.outs))


def kill_while_running(args, cwd, job_cmd, log, timeout=300):
    """Start Snakemake (args) in its own process group, wait until one of its jobs runs a command containing
    job_cmd (a descendant process with it in its command line: the job has started, so its outputs are marked
    incomplete and the next run has work to do and needs the lock), then kill -9 the whole group (Snakemake
    and the job's shell and children, so that nothing lives on to write into outputs) and wait until they
    are gone. Every wait has a deadline that fails the test. Snakemake's output goes to log."""
    import signal

    import psutil

    with open(log, "wb") as out:
        proc = subprocess.Popen(args, cwd=cwd, env=env(), stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    t0 = time.monotonic()
    deadline = t0 + timeout
    try:
        job = []
        while not job:
            if proc.poll() is not None:
                pytest.fail(f"{args} exited {proc.returncode} before a job running {job_cmd!r} was seen:\n"
                            f"{log.read_text(errors='replace')[-4000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"no job running {job_cmd!r} within {timeout} s of starting {args}:\n"
                            f"{log.read_text(errors='replace')[-4000:]}")
            try:
                children = psutil.Process(proc.pid).children(recursive=True)
            except psutil.NoSuchProcess:
                continue  # exited: poll() says so on the next pass
            for c in children:
                try:
                    if job_cmd in " ".join(c.cmdline()):
                        job = children
                        break
                except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
                    pass
            else:
                time.sleep(0.05)
        print(f"{job_cmd!r} running after {time.monotonic() - t0:.1f} s: kill -9 Snakemake's process group")
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    gone_by = time.monotonic() + 60
    for c in job:
        while time.monotonic() < gone_by:
            try:
                if c.status() == psutil.STATUS_ZOMBIE:
                    break
            except psutil.NoSuchProcess:
                break
            time.sleep(0.05)
        else:
            pytest.fail(f"process {c.pid} of the killed Snakemake run still alive 60 s after kill -9")


def test_snakemake_end_to_end(tmp_path):
    repo = copy_repo(tmp_path / "repo")
    before = snapshot(repo)
    sm = [str(BIN / "snakemake"), "--cores", "2", "--config", "preset=tiny"]
    sh(sm, repo)
    check_outputs(repo)
    assert_untouched(repo, before)
    assert (repo / "logs/tiny/train/e2e/prefix/n4-s0-seed0-p2-random.log").read_text()  # log: per job
    again = sh(sm, repo)
    assert "Nothing to be done" in again
    sh(sm + ["--report", "report.html"], repo)
    html = (repo / "report.html").read_text(errors="replace")
    assert "lowdata_e2e" in html and "settings" in html

    # one decode setting changed: decode/score/aggregate/plot re-run, train does not
    (repo / "wider.yaml").write_text(yaml.safe_dump({"presets": {"tiny": {"decode": {"max_new_tokens": 5}}}}))
    jobs = planned(sh(sm + ["--configfile", "wider.yaml", "-n"], repo))
    assert jobs == {"decode": 4, "score": 4, "aggregate": 1, "plot": 1, "reproduce": 1}, jobs

    # per-run inputs: a changed training file (its lines reordered) re-runs the one run that reads it, no other
    # (Snakemake compares the content of small inputs, not only their times)
    f = repo / "data/tiny/e2e/lowdata/train-n4-s0.jsonl"
    f.write_text("".join(reversed(f.read_text().splitlines(keepends=True))))
    jobs = planned(sh(sm + ["-n"], repo))
    assert jobs == {"train": 1, "decode": 1, "score": 1, "aggregate": 1, "plot": 1, "reproduce": 1}, jobs
    sh(sm, repo)  # and bring it up to date, so that the kill below interrupts no training job (its child would
    # live on, orphaned, and write into the method directory while the next run starts)

    bad = sh([str(BIN / "snakemake"), "--cores", "1", "-n", "--config", "preset=papr"], repo, check=False)
    assert "unknown preset 'papr'" in bad
    (repo / "bad.yaml").write_text("presets: {tiny: {train: {lr: -1}}}\n")  # Snakemake's validate() finds it
    bad = sh([str(BIN / "snakemake"), "--cores", "1", "-n", "--config", "preset=tiny", "--configfile", "bad.yaml"],
             repo, check=False)
    assert "-1 is less than or equal to the minimum of 0" in bad

    # kill -9 while Snakemake holds its lock: the README's command is refused until `snakemake --unlock`,
    # then runs (its profile re-runs the job the kill left incomplete)
    sm = [str(BIN / "snakemake"), "--profile", "workflow/profiles/local", "--config", "preset=tiny"]
    kill_while_running(sm + ["--forcerun", "aggregate"], repo, "prefixtune aggregate", tmp_path / "killed.log")
    assert any((repo / ".snakemake" / "locks").glob("*")), "no lock left after kill -9"
    locked = sh(sm, repo, check=False)
    assert "LockException" in locked, locked[-2000:]
    sh(sm + ["--unlock"], repo)
    jobs = planned(sh(sm, repo))  # finished jobs are kept: only the killed job and what follows it re-run
    assert jobs == {"aggregate": 1, "plot": 1}, jobs
    check_outputs(repo)

    # code is a dependency: editing the scoring code re-runs score (and what follows), not train or decode;
    # editing the training code re-runs train and everything after it, not download or linearize
    with open(repo / "src/prefixtune/score.py", "a") as f:  # a real edit: Snakemake compares checksums
        f.write("# changed\n")
    jobs = planned(sh(sm + ["-n"], repo))
    assert jobs == {"score": 4, "aggregate": 1, "plot": 1, "reproduce": 1}, jobs
    with open(repo / "src/prefixtune/train.py", "a") as f:
        f.write("# changed\n")
    jobs = planned(sh(sm + ["-n"], repo))
    assert jobs == {"train": 4, "decode": 4, "score": 4, "aggregate": 1, "plot": 1, "reproduce": 1}, jobs
    assert_untouched(repo, {f: b for f, b in before.items() if not f.startswith("src/prefixtune/")})


TINY = "pipelines/tiny/dvc.yaml"


def test_dvc_end_to_end(tmp_path):
    repo = copy_repo(tmp_path / "repo")
    before = snapshot(repo)
    sh(["git", "init", "-q"], repo)
    dvc = str(BIN / "dvc")
    sh([str(BIN / "prefixtune"), "params", "render", "tiny"], repo)
    first = sh([dvc, "repro", TINY], repo)
    assert "Running stage 'pipelines/tiny/dvc.yaml:train_" in first
    check_outputs(repo)
    assert_untouched(repo, before)
    again = sh([dvc, "repro", TINY], repo)
    assert "Running stage" not in again and "didn't change" in again

    # deterministic outputs: forcing the stages again writes the same bytes, so dvc.lock does not change. Every
    # kind of stage, one run of each method (the others run the same code): the two runs' score stages with
    # everything upstream of them, then aggregate and plot.
    lock = (repo / "pipelines/tiny/dvc.lock").read_bytes()
    forced = [f"{TINY}:score_e2e_{run}_test" for run in ("prefix_n4-s0-seed0-p2-random", "finetune_n8-s0-seed0")]
    out = sh([dvc, "repro", "-f", *forced], repo)
    assert "Running stage 'pipelines/tiny/dvc.yaml:linearize_e2e'" in out
    assert "Running stage 'pipelines/tiny/dvc.yaml:train_e2e_finetune_n8-s0-seed0'" in out
    sh([dvc, "repro", "-f", "-s", f"{TINY}:aggregate", f"{TINY}:plot"], repo)
    assert (repo / "pipelines/tiny/dvc.lock").read_bytes() == lock
    assert json.loads((repo / "runs/tiny/e2e/prefix/n4-s0-seed0-p2-random/method.run.json").read_text())["seconds"] > 0

    shown = sh([dvc, "metrics", "show"], repo)
    assert "BLEU" in shown and "results/tiny/metrics/lowdata.json" in shown
    sh([dvc, "plots", "show", "-o", str(tmp_path / "plots-html")], repo)
    assert (tmp_path / "plots-html" / "index.html").is_file()
    # the low-data curves as a DVC data plot: size on x, one line per method (what `dvc plots diff` overlays)
    out = subprocess.run([dvc, "plots", "show", "--json"], cwd=repo, env=env(), capture_output=True, text=True)
    print(out.stdout[:3000])
    plots = json.loads(out.stdout)
    plots = plots.get("data", plots)  # DVC's --json: {"data": {plot id: [...]}, "errors": ...} or {plot id: [...]}
    text = json.dumps({k: v for k, v in plots.items() if "lowdata_e2e.csv" in k})
    assert '"size"' in text and '"prefix"' in text and '"finetune"' in text, text[:2000]
    assert any(k.endswith("results/tiny/plots/lowdata_e2e.png") for k in plots), list(plots)
    sh(["git", "add", "-A"], repo)  # a commit to compare with (a clone has one)
    sh(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "tiny"], repo)
    out = subprocess.run([dvc, "params", "diff", "--all", "--json"], cwd=repo, env=env(), capture_output=True,
                         text=True)
    ours = json.loads(out.stdout)["pipelines/tiny/runs.yaml"]  # each run's params, as `dvc exp show` lists them
    assert ours["runs.run_e2e_prefix_n4-s0-seed0-p2-random.train.lr"]["new"] == 1e-3
    assert ours["runs.run_e2e_prefix_n4-s0-seed0-p2-random.train.prefix_len"]["new"] == 2
    assert ours["runs.run_e2e_prefix_n4-s0-seed0-p2-random.decode.beam"]["new"] == 2

    # code is a dependency: editing the training code makes every train stage stale, and nothing upstream
    code = repo / "src/prefixtune/train.py"
    original = code.read_text()
    code.write_text(original + "# changed\n")
    status = sh([dvc, "status", TINY], repo)
    assert "train_e2e_prefix_n4-s0-seed0-p2-random:" in status and "train_e2e_finetune_n8-s0-seed0:" in status
    assert "download_" not in status and "linearize_" not in status and "testset_" not in status
    code.write_text(original)

    # one decode setting changed (and re-rendered): DVC sees the decode stages changed, not train
    text = (repo / "params.yaml").read_text()
    (repo / "params.yaml").write_text(text.replace("decode: {beam: 2, max_new_tokens: 4,",
                                                   "decode: {beam: 2, max_new_tokens: 5,"))
    stale = sh([dvc, "repro", TINY], repo, check=False)  # not re-rendered: refused
    assert "out of date" in stale and "Running stage 'pipelines/tiny/dvc.yaml:decode" not in stale
    sh([str(BIN / "prefixtune"), "params", "render"], repo)
    status = sh([dvc, "status", TINY], repo)
    assert "decode_e2e_prefix_n4-s0-seed0-p2-random_test" in status and "train_" not in status



def test_run_grid_stops_and_continues_without_redoing_finished_runs(tmp_path):
    """scripts/run-grid: two runs, then what a fresh clone has of them (scores, hypotheses, method.json, no
    fine-tuned weights, no DVC cache, no data), then the rest: the finished runs are not run again."""
    repo = copy_repo(tmp_path / "repo")
    sh(["git", "init", "-q"], repo)
    grid = [sys.executable, "scripts/run-grid", "--preset", "tiny"]
    sh(grid + ["--max-runs", "2"], repo)
    done = sorted(p.parent for p in (repo / "runs/tiny").glob("*/*/*/test.scores.json"))
    assert len(done) == 2
    kept = {d: (d / "test.hyp.txt").stat().st_mtime_ns for d in done}
    for d in done:  # what a fresh clone may lack (fine-tuned weights are never committed): DVC would redo them
        (d / "method" / "weights.safetensors").unlink()
    for gone in ("data", ".dvc/cache", ".dvc/tmp"):
        shutil.rmtree(repo / gone, ignore_errors=True)
    out = sh(grid, repo)
    assert "2 of 4 runs finished and current, 2 to run" in out and "all 4 runs finished" in out
    assert all((d / "test.hyp.txt").stat().st_mtime_ns == t for d, t in kept.items())  # not redone
    check_outputs(repo)
    # results follow the code: after a change to decoding, no run counts as finished until decoded again (one
    # run is enough to see it redone: the first in the grid's order, which was among the first two)
    (repo / "src/prefixtune/decode.py").write_text((repo / "src/prefixtune/decode.py").read_text() + "# changed\n")
    out = sh(grid + ["--max-runs", "1"], repo)
    assert "0 of 4 runs finished and current, 4 to run" in out and "1 of 4 runs finished; run again" in out
    assert sum((d / "test.hyp.txt").stat().st_mtime_ns != t for d, t in kept.items()) == 1


def test_run_grid_experiment_runs_that_experiments_runs_pairs_early(tmp_path, monkeypatch, capsys):
    """run-grid --experiment NAME hands DVC only the runs of NAME (one shared with another experiment
    included) in pairs-early order, not the experiments' order; --each runs after each of them; an unknown NAME
    is one line and exit 2, before DVC is called."""
    from prefixtune import run_grid

    repo = copy_repo(tmp_path / "repo")
    handed = []
    monkeypatch.setattr(run_grid, "dvc_repro", lambda root, file, *stages, single=True: handed.append(stages[0]))
    monkeypatch.setattr(sys, "argv", ["run-grid", "--preset", "tiny", "--experiment", "prefix_length",
                                      "--each", 'echo "$RUN_ID" >> each.txt'])
    run_grid.main(repo)
    assert handed == ["grid", "train_e2e_prefix_n8-s0-seed0-p1-random", "train_e2e_prefix_n8-s0-seed0-p2-random"]
    out = capsys.readouterr().out
    assert "--experiment prefix_length: 2 of them" in out  # of 4 unfinished
    assert "2 of 4 runs finished; run again" in out  # the two just run count, the other experiments' do not
    assert (repo / "each.txt").read_text() == "e2e/prefix/n8-s0-seed0-p1-random\ne2e/prefix/n8-s0-seed0-p2-random\n"

    handed.clear()  # a failing --each stops the grid after the run it followed
    monkeypatch.setattr(sys, "argv", ["run-grid", "--preset", "tiny", "--each", "exit 3"])
    with pytest.raises(SystemExit) as stop:
        run_grid.main(repo)
    assert len(handed) == 2 and "--each `exit 3` failed (exit 3) after run e2e/prefix/n4-s0-seed0" in str(stop.value)
    capsys.readouterr()

    handed.clear()
    monkeypatch.setattr(sys, "argv", ["run-grid", "--preset", "tiny", "--experiment", "nope"])
    with pytest.raises(SystemExit) as stop:
        run_grid.main(repo)
    err = capsys.readouterr().err
    assert stop.value.code == 2 and handed == [] and len(err.strip().splitlines()) == 1
    assert "--experiment nope" in err and "lowdata, lowdata_finetune, prefix_length" in err


NAMES = ["Ada", "Bo", "Cy", "Di", "Ed", "Fay", "Gus", "Hal", "Ivy", "Jo", "Kit", "Lu", "Mo", "Ned", "Oz", "Pia"]
TOY = {"train": [(n, c) for n in NAMES[:12] for c in ("red", "blue")],  # 24 distinct inputs
       "dev": [(n, "green") for n in NAMES[12:14]], "test": [(n, "green") for n in NAMES[12:]]}


def toy_repo(dest: Path) -> Path:
    """A fresh copy with a user's own dataset: three JSONL files and a params.yaml entry, no code."""
    import json

    repo = copy_repo(dest)
    (repo / "mydata").mkdir()
    for name, rows in TOY.items():
        (repo / "mydata" / f"{name}.jsonl").write_text("".join(
            json.dumps({"source": f"name[{n}] color[{c}]", "target": f"{n} likes {c}.",
                        **({"refs": [f"{n} likes {c}.", f"{n} loves {c}."]} if name == "test" else {})}) + "\n"
            for n, c in rows))
    doc = yaml.safe_load((repo / "params.yaml").read_text())
    tiny = doc["presets"]["tiny"]
    doc["presets"]["toy"] = {
        "data": {"test_limit": None},
        "datasets": {"toy": {"files": {"train": "mydata/train.jsonl", "dev": "mydata/dev.jsonl",
                                       "test": "mydata/test.jsonl"}, "task": "e2e", "model": "tiny-gpt2"}},
        "train": tiny["train"], "decode": tiny["decode"], "resources": tiny["resources"],
        "experiments": {"lowdata": {"table": "lowdata", "datasets": ["toy"], "methods": ["prefix"], "sizes": [4, 8]},
                        "lowdata_finetune": {"table": "lowdata", "datasets": ["toy"], "methods": ["finetune"],
                                             "sizes": [8]}},
    }
    (repo / "params.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return repo


def check_toy(repo: Path):
    import pandas as pd

    low = pd.read_csv(repo / "results/toy/tables/lowdata.csv")
    assert set(low.dataset) == {"toy"} and set(low.method) == {"prefix", "finetune"}
    assert sorted(set(low["size"])) == [4, 8] and {"BLEU", "NIST", "CIDEr"} <= set(low.columns)
    assert (repo / "results/toy/plots/lowdata_toy.png").read_bytes()[:4] == b"\x89PNG"
    assert not (repo / "data/raw").exists()  # nothing downloaded
    assert len((repo / "runs/toy/toy/prefix/n4-s0-seed0-p2-random/test.hyp.txt").read_text().splitlines()) == 4


def test_user_dataset_through_both_engines(tmp_path):
    """A user's dataset (three JSONL files, no code) through DVC end to end; Snakemake's plan of the same grid
    has the same jobs (its execution of the stage table's commands is test_snakemake_end_to_end's)."""
    repo = toy_repo(tmp_path / "sm")
    jobs = planned(sh([str(BIN / "snakemake"), "-n", "--config", "preset=toy"], repo))
    assert jobs == {"linearize_toy": 1, "train": 3, "decode": 3, "score": 3, "aggregate": 1, "plot": 1,
                    "reproduce": 1}, jobs
    # no download (the user's files are already here), no testset (the toy preset decodes its whole test set)
    repo = toy_repo(tmp_path / "dvc")
    sh(["git", "init", "-q"], repo)
    sh([str(BIN / "prefixtune"), "params", "render", "toy"], repo)
    toy = (repo / "pipelines/toy/dvc.yaml").read_text()
    assert "linearize_toy" in toy and "download_" not in toy
    sh([str(BIN / "dvc"), "repro", "pipelines/toy/dvc.yaml"], repo)
    check_toy(repo)
    # the user's file is a dependency: changing it re-runs linearize (and what follows)
    with open(repo / "mydata" / "train.jsonl", "a") as f:
        f.write('{"source": "name[Mo] color[red]", "target": "Mo likes red."}\n')
    assert "linearize_toy" in sh([str(BIN / "dvc"), "status", "pipelines/toy/dvc.yaml"], repo)


COLORS_MODULE = '''"""A released dataset of our own (tests): `{split}.tsv` lines `name<TAB>color<TAB>ref|ref`."""

from pathlib import Path

from ..errors import InputError, where
from .common import Item

DATASET = "colors"


def read(path, split):
    for line, text in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        fields = text.split("\\t")
        if len(fields) != 3:
            raise InputError(f"{where(path, line)}: expected name, color, references")
        yield Item(f"{split}-{line - 1}", f"name : {fields[0]} | color : {fields[1]}", fields[2].split("|"))


def build(raw, w, args):
    items = {split: list(read(Path(raw, f"{split}.tsv"), split)) for split in ("train", "dev", "test")}
    w.train("train.jsonl", items["train"])
    w.eval("dev", items["dev"])
    w.eval("test", items["test"])
    w.lowdata(items["train"], args)
'''


def test_a_dataset_module_is_the_only_code_a_new_dataset_needs(tmp_path):
    """A new released dataset: one module in src/prefixtune/data (its reader and build) and a params.yaml entry.
    Nothing else names it: `prefixtune download` copies it from the mirror folder of its name, linearize runs its
    module, the tiny grid trains, decodes and scores it (Snakemake), and its module is a code dependency of
    linearize (editing it re-runs linearize, not download)."""
    repo = copy_repo(tmp_path / "repo")
    (repo / "src/prefixtune/data/colors.py").write_text(COLORS_MODULE)
    mirror = tmp_path / "mirror" / "colors"
    mirror.mkdir(parents=True)
    for split, rows in TOY.items():
        (mirror / f"{split}.tsv").write_text("".join(f"{n}\t{c}\t{n} likes {c}.|{n} loves {c}.\n" for n, c in rows))
    doc = yaml.safe_load((repo / "params.yaml").read_text())
    tiny = doc["presets"]["tiny"]
    doc["presets"]["colors"] = {
        "datasets": {"colors": {"source": "colors", "task": "e2e", "model": "tiny-gpt2", "tests": ["test"]}},
        "train": tiny["train"], "decode": tiny["decode"], "resources": tiny["resources"],
        "experiments": {"lowdata": {"table": "lowdata", "datasets": ["colors"], "methods": ["prefix"], "sizes": [4]}},
    }
    (repo / "params.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    own = {"PYTHONPATH": str(repo / "src"), "PREFIXTUNE_DATA_MIRROR": str(tmp_path / "mirror")}  # the copy's code
    sm = [str(BIN / "snakemake"), "--cores", "2", "--config", "preset=colors"]
    sh(sm, repo, **own)
    assert sorted(p.name for p in (repo / "data/raw/colors").glob("*.tsv")) == ["dev.tsv", "test.tsv", "train.tsv"]
    hyps = (repo / "runs/colors/colors/prefix/n4-s0-seed0-p2-random/test.hyp.txt").read_text().splitlines()
    assert len(hyps) == 4
    import pandas as pd
    low = pd.read_csv(repo / "results/colors/tables/lowdata.csv")
    assert list(low.dataset) == ["colors"] and low["BLEU"].notna().all()
    with open(repo / "src/prefixtune/data/colors.py", "a") as f:
        f.write("# changed\n")
    jobs = planned(sh(sm + ["-n"], repo, **own))
    assert "linearize_colors" in jobs and not any(r.startswith("download") for r in jobs), jobs
    bad = sh([str(BIN / "prefixtune"), "download", "--dataset", "colors", "--out", "x"], repo, check=False,
             PYTHONPATH=str(repo / "src"), PREFIXTUNE_DATA_MIRROR="")
    assert "colors: no official download in releases.csv" in bad
