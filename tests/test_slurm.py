"""The DAG's jobs on a real SLURM cluster, through snakemake-executor-plugin-slurm.

Starts the single-node cluster of scripts/slurm-cluster (unless one runs already; then it is left
running), runs tests/slurm_workflow (prepare -> prefixtune train -> decode on tiny-gpt2 -> collect)
once locally and once with `--profile workflow/profiles/slurm` (executor: slurm), and checks that
 - every train and decode job went through SLURM: its job id is in Snakemake's log, and `sacct`
   shows it COMPLETED under the account and partition the profile takes from the environment, with
   the GPU the rules ask for (the cluster's GPU is virtual on a machine without one);
 - the local rules (prepare, collect) did not;
 - the outputs are the bytes of the local run (timings aside, see `same_output`).
Needs root (to start the cluster; Debian's packages are installed if missing). Takes ~2-3 minutes.
"""

import fcntl
import json
import os
import re
import struct
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slurm

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "slurm-cluster"
WORKFLOW = ROOT / "tests" / "slurm_workflow" / "Snakefile"
PROFILE = ROOT / "workflow" / "profiles" / "slurm"
CLUSTER_DIR = Path(os.environ.get("PREFIXTUNE_SLURM_DIR", "/tmp/prefixtune-slurm"))
ACCOUNT = os.environ.get("PREFIXTUNE_SLURM_ACCOUNT", "prefixtune")  # the script's defaults
PARTITION = os.environ.get("PREFIXTUNE_SLURM_PARTITION", "main")
METHODS = ["prefix", "finetune-top2"]  # the workflow's default
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def slurm_env():
    """This environment, pointed at the test cluster, without the variables of an enclosing job."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "SBATCH_", "SRUN_"))}
    env.update(SLURM_CONF=str(CLUSTER_DIR / "etc" / "slurm.conf"), PREFIXTUNE_SLURM_DIR=str(CLUSTER_DIR),
               PREFIXTUNE_SLURM_ACCOUNT=ACCOUNT, PREFIXTUNE_SLURM_PARTITION=PARTITION)
    env.pop("PREFIXTUNE_SLURM_GPU_PARTITION", None)
    return env


def script(command):
    return subprocess.run([str(SCRIPT), command], env=slurm_env(), capture_output=True, text=True)


@pytest.fixture(scope="module")
def cluster():
    """A running cluster: started here (and stopped afterwards) unless one runs already.

    A lock file keeps two test sessions on one machine from sharing or stopping each other's cluster.
    """
    with open(f"{CLUSTER_DIR}.test.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        started = False
        if script("status").returncode != 0:
            if os.geteuid() != 0:
                pytest.skip("starting a SLURM cluster needs root (scripts/slurm-cluster start)")
            res = script("start")
            assert res.returncode == 0, f"scripts/slurm-cluster start failed:\n{res.stdout}{res.stderr}"
            started = True
        try:
            yield slurm_env()
        finally:
            if started:
                res = script("stop")
                assert res.returncode == 0, res.stderr


def snakemake(workdir, *args, env, gpus):
    cmd = [*SNAKEMAKE, "-s", str(WORKFLOW), "-d", str(workdir), "--config", f"gpus={gpus}", *args]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def outputs(workdir):
    """The jobs' outputs: not Snakemake's state, nor the provenance beside each output (`<out>.run.json`: the
    host, the time it took), which differs between any two runs by design."""
    return sorted(p.relative_to(workdir) for p in Path(workdir).rglob("*")
                  if p.is_file() and ".snakemake" not in p.parts and not p.name.endswith(".run.json"))


def same_output(a: Path, b: Path) -> bool:
    """Byte equality (method.json and log.jsonl hold no wall-clock time: it is in `<out>.run.json`), except
    for the order of a safetensors header's keys (the Rust writer keeps metadata in a randomly seeded hash
    map), compared as parsed JSON; tensor bytes must be identical."""
    x, y = a.read_bytes(), b.read_bytes()
    if x == y:
        return True
    if a.suffix == ".safetensors":
        (n,), (m,) = struct.unpack("<Q", x[:8]), struct.unpack("<Q", y[:8])
        return json.loads(x[8:8 + n]) == json.loads(y[8:8 + m]) and x[8 + n:] == y[8 + m:]
    return False


def test_jobs_run_through_slurm_and_match_a_local_run(cluster, tmp_path):
    env = cluster
    node = subprocess.run(["sinfo", "-h", "-N", "-o", "%G"], env=env, capture_output=True, text=True)
    gpus = 1 if "gpu:" in node.stdout else 0
    local_dir, slurm_dir = tmp_path / "local", tmp_path / "slurm"

    # Both at once: the SLURM jobs wait for the node's one GPU in turn, the local run uses the rest.
    local = snakemake(local_dir, "--cores", "2", env=env, gpus=gpus)
    slurm = snakemake(slurm_dir, "--profile", str(PROFILE), "--jobs", "4", "--latency-wait", "5",
                      "--slurm-init-seconds-before-status-checks", "1", env=env, gpus=gpus)
    slurm_log, _ = slurm.communicate(timeout=600)
    local_log, _ = local.communicate(timeout=600)
    assert local.returncode == 0, local_log[-4000:]
    assert slurm.returncode == 0, slurm_log[-6000:]

    # Job ids in Snakemake's log ...
    submitted = re.findall(r"Job \d+ has been submitted with SLURM jobid (\d+)", slurm_log)
    assert len(submitted) == 2 * len(METHODS), slurm_log[-6000:]
    run_id = re.search(r"SLURM run ID: (\S+)", slurm_log).group(1)
    # ... are SLURM's: sacct (slurmdbd) knows them, finished, with the profile's account/partition.
    res = subprocess.run(["sacct", "-X", "-n", "-P", "-j", ",".join(submitted),
                          "-o", "JobID,JobName%80,Comment%200,State,Account,Partition,AllocTRES%200"],
                         env=env, capture_output=True, text=True, check=True)
    rows = [line.split("|") for line in res.stdout.splitlines() if line]
    assert sorted(r[0] for r in rows) == sorted(submitted), res.stdout
    rules = set()
    for job_id, name, comment, state, account, partition, tres in rows:
        assert (name, state, account, partition) == (run_id, "COMPLETED", ACCOUNT, PARTITION), res.stdout
        assert ("gres/gpu=1" in tres) == bool(gpus), res.stdout
        rules.add(re.match(r"rule_([a-z]+)_wildcards_", comment).group(1))
    assert rules == {"train", "decode"}, "prepare and collect are local rules"

    # The same outputs, with the same contents.
    files = outputs(local_dir)
    assert files == outputs(slurm_dir)
    assert Path("results/hyps.txt") in files and len(files) >= 4 * len(METHODS)
    differ = [str(f) for f in files if not same_output(local_dir / f, slurm_dir / f)]
    assert not differ, f"SLURM outputs differ from the local run's: {differ}"
