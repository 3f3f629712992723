"""Datasets: the `download` and `linearize` stages and one streaming reader per dataset.

download.py   fetch a release (official URLs and sha256 pins: the table releases.csv, read by sources.py) or
              copy a local mirror
linearize.py  raw release -> {train,dev,test}.jsonl, refs files, low-data and extrapolation splits: the
              shared Writer; what each dataset writes is its own module's `build`
e2e.py, webnlg.py, dart.py, xsum.py   one module per dataset: its readers (yielding `Item`s, one per
              distinct input) and `build(raw, writer, args)`, the files its experiments read
jsonl.py      a user's own train/dev/test JSONL files: reader, linearization and scorer choice in one module
splits.py     deterministic low-data subsets; common.py: the shared `Item` and triple linearization
"""

DATASETS = ("e2e", "webnlg", "dart", "xsum")
