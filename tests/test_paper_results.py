"""docs/paper_results.yaml, the paper's printed numbers (ACL version), has the shape its header describes: unique ids,
the required keys, numbers where numbers belong, labels from the known sets, and every cell of each printed row.
It checks shape, not truth: a mistyped number passes. The anchors pin a few cells where the ACL version and arXiv v1
differ, so that the other version's table is not swapped in unnoticed."""

import copy
import re
from collections import Counter, defaultdict
from pathlib import Path

import pytest
import yaml

PATH = Path(__file__).resolve().parent.parent / "docs" / "paper_results.yaml"

METHODS = {"prefix", "embedding", "infix", "adapter-0.1", "adapter-3", "finetune", "finetune-top2", "sota"}
CLAIM_METHODS = METHODS | {"adapter"}      # a claim may speak of adapter-tuning in general
METRICS = {"bleu", "nist", "meteor", "rouge_l", "cider", "ter", "rouge_1", "rouge_2", "mover", "bert", "bleurt"}
DATASETS = {"e2e", "webnlg", "dart", "xsum", "xsum-news2sports", "xsum-withinnews"}
SPLITS = {"test", "dev", "test_seen", "test_unseen", "test_all"}
NUMBER_KEYS = ("id", "table", "page", "dataset", "model", "method", "params", "row", "experiment", "split", "column",
               "metric", "value")
CLAIM_KEYS = ("id", "text", "where", "value", "unit", "compares", "experiment")
E2E = {"bleu", "nist", "meteor", "rouge_l", "cider"}
# printed cells per row and dataset, where a table prints that dataset (the SOTA row has dashes for DART and TER)
ROW_CELLS = {("Table 2", "e2e"): 5, ("Table 2", "webnlg"): 9, ("Table 2", "dart"): 6, ("Table 3", "xsum"): 3,
             ("Table 4", "xsum-news2sports"): 3, ("Table 4", "xsum-withinnews"): 3, ("Table 5", "e2e"): 5,
             ("Table 7", "xsum"): 3, ("Table 9", "e2e"): 5, ("Table 9", "webnlg"): 3, ("Table 9", "dart"): 6}
# E2E cells the ACL version prints: Table 2, 8 rows (5 GPT-2 medium, 2 GPT-2 large, SOTA); Table 5, 7 rows
# (PREFIX, EMB-1/10/20, INFIX-1/10/20); Table 9, 7 rows
E2E_CELLS = {"Table 2": 40, "Table 5": 35, "Table 9": 35}
ROWS = {"Table 2": 8, "Table 3": 3, "Table 4": 2, "Table 5": 7, "Table 7": 2, "Table 9": 7}
# ACL cells that arXiv v1 prints otherwise (v1: 69.7, 8.81, 46.1, 71.4, 2.49 for the first five)
ANCHORS = {"table2.e2e.gpt2-medium.prefix.BLEU": 70.3, "table2.e2e.gpt2-medium.prefix.NIST": 8.82,
           "table2.e2e.gpt2-medium.prefix.CIDEr": 2.46, "table5.e2e.gpt2-medium.prefix.BLEU": 70.3,
           "table5.e2e.gpt2-medium.prefix.ROUGE": 72.1, "table2.webnlg.gpt2-medium.adapter-3.BLEU-U": 47.9,
           "table3.xsum.bart-large.prefix-0.1%.R-L": 35.05, "table4.xsum-news2sports.bart-large.prefix.R-L": 31.51,
           "table5.e2e.gpt2-medium.embedding.P1.BLEU": 48.1}


def load():
    return yaml.safe_load(PATH.read_text(encoding="utf-8"))


def is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def row_key(n):
    """A printed row: the SOTA row is one row though its cells come from two systems (its model differs by dataset)."""
    return (n.get("table"), "sota" if n.get("method") == "sota" else n.get("model"), n.get("row"))


def validate(doc):
    """Every way the file breaks its header's schema, as messages; [] when it keeps it."""
    errors = []
    if not isinstance(doc, dict) or set(doc) != {"version", "numbers", "claims"}:
        return ["top level: want exactly version, numbers, claims"]
    if not str(doc["version"]).startswith("ACL 2021"):
        errors.append(f"version: {doc['version']!r} is not the ACL version")
    numbers, claims = doc["numbers"] or [], doc["claims"] or []
    ids = [x.get("id") for x in numbers + claims if isinstance(x, dict)]
    errors += [f"duplicate id {i}" for i, k in Counter(ids).items() if k > 1]
    pages = defaultdict(set)
    for n in numbers:
        if not isinstance(n, dict):
            errors.append(f"number entry {n!r} is not a mapping")
            continue
        name = n.get("id", n)
        missing = [k for k in NUMBER_KEYS if k not in n]
        if missing:
            errors.append(f"{name}: missing {missing}")
            continue
        if not isinstance(n["id"], str) or not n["id"]:
            errors.append(f"{name}: id is not a string")
        if not is_number(n["value"]):
            errors.append(f"{name}: value {n['value']!r} is not a number")
        elif n["value"] < 0:
            errors.append(f"{name}: value {n['value']} is negative")
        if not isinstance(n["page"], int) or isinstance(n["page"], bool) or not 1 <= n["page"] <= 16:
            errors.append(f"{name}: page {n['page']!r} is not a page of the 16-page ACL PDF")
        if not isinstance(n["table"], str) or not re.fullmatch(r"Table \d+", n["table"]):
            errors.append(f"{name}: table {n['table']!r} is not 'Table N'")
        if n["metric"] not in METRICS:
            errors.append(f"{name}: metric {n['metric']!r} unknown")
        if n["method"] not in METHODS:
            errors.append(f"{name}: method {n['method']!r} unknown")
        if n["dataset"] not in DATASETS:
            errors.append(f"{name}: dataset {n['dataset']!r} unknown")
        if n["split"] not in SPLITS:
            errors.append(f"{name}: split {n['split']!r} unknown")
        if n["params"] is not None and not re.fullmatch(r"\d+(\.\d+)?%", str(n["params"])):
            errors.append(f"{name}: params {n['params']!r} is neither null nor a percentage")
        if isinstance(n["id"], str) and isinstance(n["table"], str) and \
                not n["id"].startswith(n["table"].lower().replace(" ", "") + "." + str(n["dataset"]) + "."):
            errors.append(f"{name}: id does not start with its table and dataset")
        if "prefix_len" in n and (not isinstance(n["prefix_len"], int) or n["prefix_len"] < 1):
            errors.append(f"{name}: prefix_len {n['prefix_len']!r} is not a positive int")
        pages[n["table"]].add(n["page"])
    errors += [f"{t}: entries on several pages {sorted(map(str, p))}" for t, p in pages.items() if len(p) > 1]

    good = [n for n in numbers if isinstance(n, dict) and all(k in n for k in NUMBER_KEYS)]
    cells = defaultdict(list)
    for n in good:
        cells[row_key(n) + (n["dataset"],)].append(n)
    for (table, model, row, dataset), group in cells.items():
        columns = Counter((n["column"], n["split"]) for n in group)
        errors += [f"{table} {model} {row} {dataset}: column {c} twice" for c, k in columns.items() if k > 1]
        want = ROW_CELLS.get((table, dataset))
        if want is not None and row != "SOTA" and len(group) != want:
            errors.append(f"{table} {model} {row} {dataset}: {len(group)} cells, the table prints {want}")
        if dataset == "e2e" and {n["metric"] for n in group} != E2E:
            errors.append(f"{table} {model} {row} e2e: metrics {sorted({n['metric'] for n in group})}, want "
                          f"{sorted(E2E)}")
    for table, want in E2E_CELLS.items():
        got = sum(1 for n in good if n["table"] == table and n["dataset"] == "e2e")
        if got < want:
            errors.append(f"{table}: {got} E2E cells, the paper prints {want}")
    for table, want in ROWS.items():
        got = len({row_key(n) for n in good if n["table"] == table})
        if got != want:
            errors.append(f"{table}: {got} rows, the paper prints {want}")

    for c in claims:
        if not isinstance(c, dict):
            errors.append(f"claim {c!r} is not a mapping")
            continue
        name = c.get("id", c)
        missing = [k for k in CLAIM_KEYS if k not in c]
        if missing:
            errors.append(f"{name}: missing {missing}")
            continue
        for key in ("value", "versus"):
            if key not in c:
                continue
            if not is_number(c[key]):
                errors.append(f"{name}: {key} {c[key]!r} is not a number")
            elif f"{c[key]:g}" not in str(c["text"]):
                errors.append(f"{name}: {key} {c[key]:g} is not in its quoted text")
        if not isinstance(c["compares"], list) or not set(c["compares"]) <= CLAIM_METHODS:
            errors.append(f"{name}: compares {c['compares']!r} has a method outside the known set")
        if not re.search(r"page \d+|pages \d+-\d+", str(c["where"])):
            errors.append(f"{name}: where {c['where']!r} names no page")
        if not isinstance(c["experiment"], str) or not c["experiment"]:
            errors.append(f"{name}: experiment is empty")
    return errors


def test_the_file_keeps_its_schema():
    assert validate(load()) == []


def test_anchor_cells_are_the_acl_versions():
    values = {n["id"]: n["value"] for n in load()["numbers"]}
    assert {i: values.get(i) for i in ANCHORS} == ANCHORS


def test_every_results_table_is_there():
    tables = {n["table"] for n in load()["numbers"]}
    assert tables == set(ROWS)


def test_claims_cover_the_headline_numbers():
    claims = {c["id"]: c for c in load()["claims"]}
    assert claims["lowdata_gap"]["value"] == 2.9 and claims["lowdata_gap"]["unit"] == "BLEU"
    assert claims["abstract_params"]["value"] == 0.1


def first(doc, **match):
    return next(n for n in doc["numbers"] if all(n.get(k) == v for k, v in match.items()))


def dup_id(doc):
    doc["numbers"].append(copy.deepcopy(doc["numbers"][0]))


def string_value(doc):
    doc["numbers"][0]["value"] = "68.8"


def dash_value(doc):
    doc["numbers"][0]["value"] = "-"


def unknown_metric(doc):
    doc["numbers"][0]["metric"] = "BLEU"


def bad_table(doc):
    doc["numbers"][0]["table"] = "Tab. 2"


def unknown_method(doc):
    doc["numbers"][0]["method"] = "prefix-tuning"


def page_string(doc):
    doc["numbers"][0]["page"] = "7"


def missing_key(doc):
    del doc["numbers"][0]["metric"]


def missing_e2e_cell(doc):
    doc["numbers"].remove(first(doc, table="Table 2", dataset="e2e", row="PREFIX(0.1%)", metric="cider"))


def missing_webnlg_cell(doc):
    doc["numbers"].remove(first(doc, table="Table 2", dataset="webnlg", row="FT-TOP2", column="TER U"))


def arxiv_version(doc):
    doc["version"] = "arXiv 2101.00190v1"


def claim_value_not_quoted(doc):
    doc["claims"][0]["value"] = 0.2


def claim_unknown_method(doc):
    doc["claims"][0]["compares"] = ["prefix", "lora"]


@pytest.mark.parametrize("break_it, message", [
    (dup_id, "duplicate id"), (string_value, "is not a number"), (dash_value, "is not a number"),
    (unknown_metric, "metric 'BLEU' unknown"), (bad_table, "is not 'Table N'"),
    (unknown_method, "method 'prefix-tuning' unknown"), (page_string, "page '7'"), (missing_key, "missing ['metric']"),
    (missing_e2e_cell, "cells, the table prints 5"), (missing_webnlg_cell, "cells, the table prints 9"),
    (arxiv_version, "is not the ACL version"), (claim_value_not_quoted, "is not in its quoted text"),
    (claim_unknown_method, "outside the known set")])
def test_a_broken_file_fails(break_it, message):
    doc = load()
    break_it(doc)
    errors = validate(doc)
    assert any(message in e for e in errors), errors
