"""Atomic writers: a writer killed with SIGKILL leaves a temporary that the next writer of the same name
removes, and only temporaries whose owner is gone are removed."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from prefixtune.files import atomic_dir, atomic_open, clean_stale, temp_prefix

ROOT = Path(__file__).resolve().parents[1]
MIRROR = ROOT.parent / "shared" / "data"

KILLED_WRITER = """
import os, signal, sys
from prefixtune.files import atomic_dir, atomic_open
kind, path = sys.argv[1], sys.argv[2]
with (atomic_dir(path) if kind == "dir" else atomic_open(path)) as tmp:
    if kind == "dir":
        (tmp / "half.jsonl").write_text("half")
    else:
        tmp.write("half")
        tmp.flush()
    os.kill(os.getpid(), signal.SIGKILL)
"""


def leftovers(path):
    return sorted(p.name for p in Path(path).parent.iterdir() if p.name.endswith(".tmp"))


@pytest.mark.parametrize("kind", ["dir", "file"])
def test_next_writer_removes_what_a_killed_writer_left(tmp_path, kind):
    out = tmp_path / ("out" if kind == "dir" else "out.txt")
    killed = subprocess.run([sys.executable, "-c", KILLED_WRITER, kind, str(out)], capture_output=True)
    assert killed.returncode == -9
    assert len(leftovers(out)) == 1 and not out.exists()
    with (atomic_dir(out) if kind == "dir" else atomic_open(out)) as tmp:
        if kind == "dir":
            (tmp / "whole.jsonl").write_text("whole")
        else:
            tmp.write("whole")
    assert leftovers(out) == [] and out.exists()


def test_only_orphans_are_removed(tmp_path):
    out = tmp_path / "data"
    host = socket.gethostname()
    mine = tmp_path / f"{temp_prefix(out)}abc123.tmp"  # this (live) process
    live = tmp_path / f".data.1@{host}.abc123.tmp"  # pid 1: alive
    other_new = tmp_path / ".data.12345@elsewhere.abc123.tmp"  # another host, recent: maybe running
    other_old = tmp_path / ".data.12345@elsewhere.def456.tmp"  # another host, two days old
    legacy_old = tmp_path / ".data.xyz789.tmp"  # no owner in the name, two days old
    unrelated = tmp_path / ".database.1@x.abc.tmp"
    for p in (mine, live, other_new, other_old, legacy_old, unrelated):
        p.mkdir()
    two_days_ago = time.time() - 2 * 24 * 3600
    for p in (other_old, legacy_old):
        os.utime(p, (two_days_ago, two_days_ago))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    orphan = tmp_path / f".data.{int(dead.stdout)}@{host}.ghi789.tmp"
    orphan.write_text("half")
    removed = clean_stale(out)
    assert sorted(p.name for p in removed) == sorted(p.name for p in (other_old, legacy_old, orphan))
    assert all(p.exists() for p in (mine, live, other_new, unrelated))


@pytest.mark.skipif(not (MIRROR / "e2e").is_dir(), reason="../shared/data not present")
def test_kill_during_linearize_leaves_nothing_after_the_rerun(tmp_path):
    raw, out = tmp_path / "raw", tmp_path / "e2e"
    run = [sys.executable, "-m", "prefixtune.cli"]
    assert subprocess.run(run + ["download", "--dataset", "e2e", "--out", str(raw), "--mirror", str(MIRROR)],
                          capture_output=True).returncode == 0
    # A real SIGKILL in the middle of linearize: after its first split file is written.
    kill_on_write = ("import os, signal, sys; import prefixtune.data.linearize as L; w = L.write_jsonl\n"
                     "def once(*a, **k):\n    w(*a, **k); os.kill(os.getpid(), signal.SIGKILL)\n"
                     "L.write_jsonl = once\nfrom prefixtune.cli import main; main(sys.argv[1:])")
    args = ["linearize", "--dataset", "e2e", "--raw", str(raw), "--out", str(out), "--sizes", "50", "--samples", "1"]
    killed = subprocess.run([sys.executable, "-c", kill_on_write, *args], capture_output=True, cwd=ROOT)
    assert killed.returncode == -9 and len(leftovers(out)) == 1 and not out.exists()
    assert subprocess.run(run + args, capture_output=True).returncode == 0
    assert leftovers(out) == [] and (out / "train.jsonl").is_file()
