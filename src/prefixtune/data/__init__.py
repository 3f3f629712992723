"""Datasets: the `download` and `linearize` stages and one streaming reader per dataset.

download.py   fetch a release (official URLs and sha256 pins: the table releases.csv, read by sources.py) or
              copy a local mirror
linearize.py  raw release -> {train,dev,test}.jsonl, refs files, low-data and extrapolation splits: the
              shared Writer; what each dataset writes is its own module's `build`
e2e.py, webnlg.py, dart.py, xsum.py   one module per dataset: its readers (yielding `Item`s, one per
              distinct input) and `build(raw, writer, args)`, the files its experiments read. A module of this
              folder that declares `DATASET = "name"` at top level IS a dataset (found below, no list to
              edit): a new dataset is one such module plus its params.yaml entry (its release files, if it
              has official URLs and pins, are rows of releases.csv; without rows it is copied from the
              mirror folder of its name).
jsonl.py      a user's own train/dev/test JSONL files: reader, linearization and scorer choice in one module
splits.py     deterministic low-data subsets; common.py: the shared `Item` and triple linearization
"""

import ast
import importlib
from pathlib import Path


def _declared(path: Path) -> str | None:
    """The name in a top-level `DATASET = "name"` of a module file (read, not imported), or None."""
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if (isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "DATASET" for t in node.targets)
                and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)):
            return node.value.value
    return None


# dataset name -> its module; prefixtune.code reads this too (linearize imports these modules on demand)
MODULES = {name: f"{__name__}.{p.stem}" for p in sorted(Path(__file__).parent.glob("*.py"))
           if (name := _declared(p)) is not None}
DATASETS = tuple(MODULES)


def module(name: str):
    """The dataset module that declares `name`."""
    return importlib.import_module(MODULES[name])
