"""Low-data subsets (the paper's Section 7.1) and the topic splits' bookkeeping.

Low-data choice: the paper counts training *examples*; here a subset of SIZE is SIZE distinct training
inputs, each with ONE of its references (drawn at random), i.e. SIZE pairs over SIZE inputs, so no
input is over-represented. Its dev set is ceil(0.3 * SIZE) further distinct training inputs, disjoint
from the train subset (with all their references), as in the paper; or, with `dev_items`, drawn from those
(XSum: its validation split, as the authors' seq2seq/lowdata_gen.py:60@7544769 does). Everything is drawn from
random.Random(f"{seed}-{size}-{sample}") (str seeds are hashed deterministically), so each
(size, sample, seed) file is reproducible and independent of the other sizes and samples.
"""

import math
import random


def lowdata(items, size, sample, seed, dev_fraction=0.3, dev_items=None):
    """(train, dev) lists of (Item, refs) for one subset; raises ValueError if there are too few inputs.
    `dev_items`: draw the dev subset from these instead of from the training inputs left over."""
    n_dev = math.ceil(dev_fraction * size)
    n_train = size if dev_items is not None else size + n_dev
    if n_train > len(items):
        raise ValueError(f"{len(items)} training inputs, need {size}" + ("" if dev_items is not None else f" + {n_dev}"))
    if dev_items is not None and n_dev > len(dev_items):
        raise ValueError(f"{len(dev_items)} dev inputs, need {n_dev}")
    rng = random.Random(f"{seed}-{size}-{sample}")
    chosen = rng.sample(range(len(items)), n_train)
    train = [(items[i], [rng.choice(items[i].refs)]) for i in chosen[:size]]
    if dev_items is not None:
        return train, [(dev_items[i], dev_items[i].refs) for i in rng.sample(range(len(dev_items)), n_dev)]
    return train, [(items[i], items[i].refs) for i in chosen[size:]]
