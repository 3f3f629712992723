"""Atomic file and directory writes, and a JSONL reader whose errors name file and line.

Nothing half-written is ever left behind: every writer goes to a temporary name in the
same directory and is renamed into place only when complete. A process killed mid-write
(kill -9, out of memory) cannot clean up, so temporaries carry their owner in their name,
`.NAME.PID@HOST.XXXXXX.tmp`, and the next writer of NAME removes those whose owner is gone
(`clean_stale`): a dead process on this host, or any owner after a day (another host of a
shared filesystem, or a name without an owner).
"""

import contextlib
import json
import os
import re
import shutil
import socket
import tempfile
import time
from pathlib import Path

STALE_AFTER = 24 * 3600  # seconds: a temporary of another host (or of no known owner) this old is stale

from .errors import InputError, where


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _publishable(path, mode):
    """mkstemp/mkdtemp create private (0600/0700) entries; give them the usual umask-based mode."""
    os.chmod(path, mode & ~_umask())


def _owner() -> str:
    return f"{os.getpid()}@{socket.gethostname()}"


def temp_prefix(path) -> str:
    """The name prefix of this process's temporaries for `path` (for mkstemp/mkdtemp, suffix '.tmp')."""
    return f".{Path(path).name}.{_owner()}."


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def clean_stale(path) -> list[Path]:
    """Remove the temporaries that earlier, now dead, writers of `path` left beside it; return them."""
    path = Path(path)
    if not path.parent.is_dir():
        return []
    pattern = re.compile(re.escape(f".{path.name}.") + r"(?:(\d+)@(.+)\.)?[^.]+\.tmp")
    here, removed = socket.gethostname(), []
    for tmp in path.parent.iterdir():
        m = pattern.fullmatch(tmp.name)
        if not m:
            continue
        pid, host = (int(m.group(1)), m.group(2)) if m.group(1) else (None, None)
        if pid is not None and host == here:
            stale = pid != os.getpid() and not _alive(pid)
        else:
            try:
                stale = time.time() - tmp.lstat().st_mtime > STALE_AFTER
            except FileNotFoundError:
                continue
        if stale:
            if tmp.is_dir() and not tmp.is_symlink():
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(path)
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path), suffix=".tmp", dir=path.parent)
    os.close(fd)
    _publishable(tmp, 0o666)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


@contextlib.contextmanager
def atomic_open(path, mode="w", encoding="utf-8"):
    """Open a temporary file for writing; it replaces `path` only when the block succeeds."""
    with atomic_path(path) as tmp:
        with open(tmp, mode, encoding=None if "b" in mode else encoding) as f:
            yield f


@contextlib.contextmanager
def atomic_dir(path):
    """Yield a fresh temporary directory beside `path`; it replaces `path` only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(path)
    tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(path), suffix=".tmp", dir=path.parent))
    _publishable(tmp, 0o777)
    try:
        yield tmp
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def write_json(path, obj):
    """Write `obj` as indented JSON, atomically."""
    with atomic_open(path) as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.write("\n")


def write_jsonl(path, rows):
    """Write an iterable of dicts as JSON lines, atomically. Returns the number of rows."""
    n = 0
    with atomic_open(path) as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    return n


def read_json_object(path, missing="no such file") -> dict:
    """A JSON file holding one object; InputError naming `path` (with `missing` when it is absent)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: {missing}")
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(obj, dict):
        raise InputError(f"{path}: expected a JSON object")
    return obj


def read_jsonl(path, required=()):
    """Yield (line_number, dict) for each non-blank line of a JSONL file.

    Raises InputError naming `path:line` for a missing file, invalid UTF-8, a line that is
    not a JSON object, or an object lacking one of the `required` keys.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    with open(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise InputError(f"{where(path, number)}: not valid UTF-8") from None
            if not text.strip():
                continue
            try:
                row = json.loads(text)
            except json.JSONDecodeError as e:
                raise InputError(f"{where(path, number)}: not valid JSON ({e.msg})") from None
            if not isinstance(row, dict):
                raise InputError(f"{where(path, number)}: expected a JSON object")
            for key in required:
                if key not in row:
                    raise InputError(f"{where(path, number)}: missing field '{key}'")
            yield number, row
