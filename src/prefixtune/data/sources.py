"""Where each dataset's official release lives, and the sha256 of every file we can pin.

The table is data, `releases.csv` beside this file: one row per released file, with `dataset`, `path` (where
the file lands under `--out`), `url` (its official download; empty: no official URL, it comes only from a
mirror), `sha256` (pins the released bytes; empty: not pinnable here, see `note`), `required` (a mirror must
have it: yes/no) and `note`. `SOURCES[name]` reads it as `Source(path, mirror, url, sha256, required)`, where
`mirror` is the file's place in a local mirror laid out like `../shared/data`, from `mirror_dirs(name)`: the
(mirror folder, out sub-folder) pairs copied whole in mirror mode, so files without a row (e.g. the raw XSum
extracts) come along too. A dataset with no rows and no MIRROR_DIRS entry (a new dataset module) is copied from
the mirror folder of its own name.

The pins were computed from the mirror, an unchanged copy of the releases. URL certainty: E2E
(tuetschek/e2e-dataset) and DART (Yale-LILY/dart, data/v1.1.1) raw GitHub files and the XSum split file are
the projects' own; the WebNLG 2017 path on shimorina/webnlg-dataset (GitLab) and the XSum article archive URL
could not be checked offline.
"""

import csv
from dataclasses import dataclass
from pathlib import Path

TABLE = Path(__file__).with_name("releases.csv")

MIRROR_DIRS = {
    "e2e": [("e2e", "")],
    "webnlg": [("webnlg2017", "")],
    "dart": [("dart", "")],
    "xsum": [("xsum", ""), ("bbc_news_summary", "bbc_news_summary")],
}


@dataclass(frozen=True)
class Source:
    path: str
    mirror: str
    url: str | None
    sha256: str | None
    required: bool = True


def mirror_dirs(dataset: str) -> list[tuple[str, str]]:
    """The (mirror folder, out sub-folder) pairs of `dataset`: its MIRROR_DIRS entry, else the folder of its name."""
    return MIRROR_DIRS.get(dataset, [(dataset, "")])


def mirror_path(dataset: str, path: str) -> str:
    """Where `path` (under --out) sits in a mirror: the most specific mirror_dirs pair that holds it."""
    for folder, sub in sorted(mirror_dirs(dataset), key=lambda pair: -len(pair[1])):
        if not sub:
            return f"{folder}/{path}"
        if path.startswith(sub + "/"):
            return folder + path[len(sub):]
    raise ValueError(f"{TABLE.name}: {dataset} file {path} is in no mirror folder")


def read_table(path=TABLE) -> dict:
    out = {}
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            ds = row["dataset"]
            out.setdefault(ds, []).append(Source(row["path"], mirror_path(ds, row["path"]), row["url"] or None,
                                                 row["sha256"] or None, row["required"] == "yes"))
    return out


SOURCES = read_table()
