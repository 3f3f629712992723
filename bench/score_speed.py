"""How long `prefixtune score` takes on a whole DART or WebNLG test set, all metrics (BLEU, METEOR, TER).

    python bench/score_speed.py [--xml ../shared/data/dart/dart-v1.1.1-full-test.xml] [--task dart]
        [--check] [--json]

The outputs are stand-ins made from the references (the test set has no outputs of ours here): an entry
with two or more references gives its last one as the output and keeps the others; an entry with one
reference keeps it and outputs it with its two halves swapped (so TER has shifts to find). The command
is timed as a user runs it, in a fresh process. `--check` also runs sacrebleu's own TER on the same
inputs (minutes) and reports whether the two are equal.
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path


def stand_in(xml):
    hyps, refs = [], []
    for entry in ET.parse(xml).getroot().iter("entry"):
        lex = [x.text.strip() for x in entry.findall("lex") if x.text and x.text.strip()]
        if len(lex) >= 2:
            hyps.append(lex[-1]), refs.append(lex[:-1])
        elif lex:
            words = lex[0].split()
            half = len(words) // 2
            hyps.append(" ".join(words[half:] + words[:half])), refs.append(lex)
    return hyps, refs


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--xml", default="../shared/data/dart/dart-v1.1.1-full-test.xml")
    p.add_argument("--task", default="dart", choices=["dart", "webnlg"])
    p.add_argument("--check", action="store_true", help="also run sacrebleu's TER and compare")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    hyps, refs = stand_in(args.xml)
    with tempfile.TemporaryDirectory() as tmp:
        hyp, ref, out = Path(tmp) / "hyp.txt", Path(tmp) / "ref.txt", Path(tmp) / "scores.json"
        hyp.write_text("".join(h + "\n" for h in hyps))
        ref.write_text("\n".join("".join(r + "\n" for r in g) for g in refs))
        start = time.perf_counter()
        command = [str(Path(sys.executable).with_name("prefixtune")), "score", "--task", args.task,
                   "--hyp", str(hyp), "--ref", str(ref), "--out", str(out)]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        result = {"task": args.task, "inputs": len(hyps), "references": sum(map(len, refs)),
                  "score_s": round(time.perf_counter() - start, 1), **json.loads(out.read_text())}
    if args.check:
        from sacrebleu.metrics import TER
        width = max(map(len, refs))
        streams = [[g[i] if i < len(g) else None for g in refs] for i in range(width)]
        start = time.perf_counter()
        result["sacrebleu_TER"] = TER().corpus_score(hyps, streams).score / 100
        result["sacrebleu_TER_s"] = round(time.perf_counter() - start, 1)
        result["TER_equal"] = abs(result["sacrebleu_TER"] - result["TER"]) <= 1e-9
    print(json.dumps(result) if args.json else "\n".join(f"{k}: {v}" for k, v in result.items()))


if __name__ == "__main__":
    main()
