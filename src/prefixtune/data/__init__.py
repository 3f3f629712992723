"""Datasets: the `download` and `linearize` stages and one streaming reader per dataset.

download.py   fetch a release (official URLs, pinned sha256) or copy a local mirror
linearize.py  raw release -> {train,dev,test}.jsonl, refs files, low-data and extrapolation splits
e2e.py, webnlg.py, dart.py, xsum.py   readers yielding `Item`s (one per distinct input)
jsonl.py      a user's own train/dev/test JSONL files: reader, linearization and scorer choice in one module
splits.py     deterministic low-data subsets; common.py: the shared `Item` and triple linearization
"""

DATASETS = ("e2e", "webnlg", "dart", "xsum")
