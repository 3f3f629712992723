"""`prefixtune download`: fetch a dataset's official release, or copy it from a local mirror.

Network (default): every file of `sources.SOURCES[name]` that has an official URL is fetched with
urllib (retries with back-off on connection errors and HTTP 5xx/429, a tqdm progress bar), written
to `NAME.part` and renamed only once complete and its sha256 matches the pin.
Mirror (`--mirror DIR` or $PREFIXTUNE_DATA_MIRROR): DIR is laid out like `../shared/data`; the
dataset's folders are copied (no network), pinned files are verified and required files must exist.
Either way --out is built in a temporary folder and renamed into place only when everything is there.
A wrong checksum, a missing required file or an unreachable server is an InputError (exit 2).
"""

import hashlib
import http.client
import os
import shutil
import time
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

from ..errors import InputError
from ..files import atomic_dir
from . import DATASETS
from .sources import SOURCES, TABLE, mirror_dirs

ENV = "PREFIXTUNE_DATA_MIRROR"
RETRIES = 4
RETRY_WAIT = 2.0  # seconds, times the attempt number
TIMEOUT = 60
CHUNK = 1 << 20


def add_arguments(p):
    p.add_argument("--dataset", required=True, choices=DATASETS)
    p.add_argument("--out", required=True, help="folder for the raw release (replaced atomically)")
    p.add_argument("--mirror", default=None,
                   help=f"local copy laid out like shared/data instead of the network (default: ${ENV})")


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def check(path, expected, label):
    """Raise InputError naming `label` unless `path` hashes to `expected` (None: not pinned)."""
    if expected is not None:
        got = sha256(path)
        if got != expected:
            raise InputError(f"{label}: wrong sha256 checksum (expected {expected}, got {got})")


def fetch(url, path, expected, retries=None):
    """Download `url` to `path` via `path.part`, verify the pin, then rename. Returns the bytes written."""
    retries = RETRIES if retries is None else retries
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    last = None
    for attempt in range(1, retries + 1):
        try:
            with urllib.request.urlopen(url, timeout=TIMEOUT) as r, open(part, "wb") as f:
                total = int(r.headers.get("Content-Length") or 0) or None
                with tqdm(total=total, unit="B", unit_scale=True, desc=path.name, disable=None) as bar:
                    while chunk := r.read(CHUNK):
                        f.write(chunk)
                        bar.update(len(chunk))
            break
        except urllib.error.HTTPError as e:
            if e.code < 500 and e.code != 429:
                part.unlink(missing_ok=True)
                raise InputError(f"{url}: HTTP {e.code} {e.reason}") from None
            last = f"HTTP {e.code} {e.reason}"
        except (urllib.error.URLError, http.client.HTTPException, OSError) as e:
            last = getattr(e, "reason", None) or e
        part.unlink(missing_ok=True)
        if attempt < retries:
            time.sleep(RETRY_WAIT * attempt)
    else:
        raise InputError(f"{url}: download failed after {retries} tries ({last}). Offline? Give a local copy "
                         f"laid out like shared/data with --mirror DIR or {ENV}=DIR")
    try:
        check(part, expected, f"{url} ({path.name})")
        os.replace(part, path)
    finally:
        part.unlink(missing_ok=True)
    return path.stat().st_size


def download(dataset, dest, notes):
    """Fetch every source with a URL into `dest`."""
    if not any(s.url for s in SOURCES.get(dataset, [])):
        raise InputError(f"--dataset {dataset}: no official download in {TABLE.name}; give a local copy with "
                         f"--mirror or ${ENV}")
    for s in SOURCES[dataset]:
        if s.url is None:
            notes.append(f"{s.path}: no official URL (mirror only); not downloaded")
            continue
        if s.sha256 is None:
            notes.append(f"{s.path}: no pinned checksum; not verified")
        fetch(s.url, Path(dest, s.path), s.sha256)


def copy_mirror(dataset, mirror, dest, notes):
    """Copy the dataset's folders of `mirror` into `dest`, verifying pins and required files."""
    mirror = Path(mirror)
    if not mirror.is_dir():
        raise InputError(f"{mirror}: mirror folder does not exist")
    pins = {s.mirror: s for s in SOURCES.get(dataset, [])}
    copied = set()
    for folder, sub in mirror_dirs(dataset):
        base = mirror / folder
        if not base.is_dir():
            notes.append(f"{base}: not in the mirror; skipped")
            continue
        for f in sorted(p for p in base.rglob("*") if p.is_file()):
            rel = f.relative_to(mirror).as_posix()
            target = Path(dest, sub, f.relative_to(base))
            target.parent.mkdir(parents=True, exist_ok=True)
            part = target.with_name(target.name + ".part")
            shutil.copyfile(f, part)
            if rel in pins:
                check(part, pins[rel].sha256, str(f))
            os.replace(part, target)
            copied.add(rel)
    for s in SOURCES.get(dataset, []):
        if s.mirror not in copied:
            if s.required:
                raise InputError(f"{mirror / s.mirror}: no such file (required for {dataset})")
            notes.append(f"{mirror / s.mirror}: not in the mirror; skipped")
    return len(copied)


def run(args):
    mirror = args.mirror or os.environ.get(ENV) or None
    out, notes = Path(args.out), []
    with atomic_dir(out) as tmp:
        if mirror:
            n = copy_mirror(args.dataset, mirror, tmp, notes)
            print(f"{out}: {n} files copied from the mirror {mirror}")
        else:
            download(args.dataset, tmp, notes)
            print(f"{out}: downloaded {args.dataset}")
    for note in notes:
        print(f"note: {note}")
