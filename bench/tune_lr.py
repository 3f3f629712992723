"""Learning-rate selection on the E2E *dev* data (never test) for the cpu preset.

For each (method, learning rate) it trains on one low-data subset with the pipeline's own
`train()` and scores the result by the mean target-token loss on the matching low-data dev set
(every dev reference, teacher-forced). Lower is better; the chosen rates go into params.yaml.
Appends one CSV row per trial to --out (rewritten atomically after each) and prints it.

    python bench/tune_lr.py --data data/e2e/lowdata --size 100 --sample 0 --steps 40 \
        --out results/tuning/lr_tuning.csv prefix=5e-4,2e-3 finetune=5e-5,2e-4
"""

import argparse
import os
import tempfile
import time

import pandas as pd
import torch

from prefixtune.examples import collate, encode_pair
from prefixtune.files import atomic_open, read_jsonl
from prefixtune.methods import MethodConfig, build
from prefixtune.models import load_model
from prefixtune.train import Hparams, read_examples, train


@torch.no_grad()
def dev_loss(method, pairs, batch_size=10) -> float:
    """Mean loss per target token over (source, reference) pairs."""
    tok, ed = method.tokenizer, method.encoder_decoder
    total, count = 0.0, 0
    for i in range(0, len(pairs), batch_size):
        batch = collate([encode_pair(tok, s, t, ed) for s, t in pairs[i:i + batch_size]], tok.pad_token_id, ed)
        n = int((batch["labels"][:, 1:] != -100).sum()) if not ed else int((batch["labels"] != -100).sum())
        total += method(batch).loss.item() * n
        count += n
    return total / count


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="smollm2-135m")
    p.add_argument("--data", required=True, help="folder with train-nSIZE-sSAMPLE.jsonl and dev-...jsonl")
    p.add_argument("--size", type=int, default=100)
    p.add_argument("--sample", type=int, default=0)
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--batch-size", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", required=True)
    p.add_argument("grid", nargs="+", help="METHOD[:fraction]=LR,LR,...  (adapter:0.001=5e-4,5e-3)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    train_file = f"{args.data}/train-n{args.size}-s{args.sample}.jsonl"
    examples = read_examples(train_file)
    dev = [(row["source"], ref) for _, row in read_jsonl(f"{args.data}/dev-n{args.size}-s{args.sample}.jsonl")
           for ref in row["refs"]]
    rows = pd.read_csv(args.out).to_dict("records") if os.path.isfile(args.out) else []
    for spec in args.grid:
        name, lrs = spec.split("=")
        method_name, _, fraction = name.partition(":")
        for lr in [float(x) for x in lrs.split(",")]:
            torch.manual_seed(0)
            model, tok = load_model(args.model)  # fresh weights: finetune changes them
            config = MethodConfig(method_name, adapter_fraction=float(fraction or 0.001))
            method = build(model, tok, config)
            hp = Hparams(max_steps=args.steps, lr=lr, batch_size=args.batch_size, save_every=0)
            start = time.time()
            with tempfile.TemporaryDirectory() as tmp:
                train(method, examples, hp, f"{tmp}/out", info={"model": args.model})
            seconds = time.time() - start
            method.eval()
            row = {"method": name, "lr": lr, "size": args.size, "sample": args.sample, "steps": args.steps,
                   "batch_size": args.batch_size, "dev_pairs": len(dev), "dev_loss": dev_loss(method, dev),
                   "train_seconds": round(seconds, 1)}
            print(row, flush=True)
            rows.append(row)
            with atomic_open(args.out) as f:
                pd.DataFrame(rows).to_csv(f, index=False)


if __name__ == "__main__":
    main()
