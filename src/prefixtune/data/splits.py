"""Low-data subsets (the paper's Section 7.1) and the topic splits' bookkeeping.

Low-data choice: the paper counts training *examples*; here a subset of SIZE is SIZE distinct training
inputs, each with ONE of its references (drawn at random), i.e. SIZE pairs over SIZE inputs, so no
input is over-represented. Its dev set is ceil(0.3 * SIZE) further distinct training inputs, disjoint
from the train subset (with all their references), as in the paper. Everything is drawn from
random.Random(f"{seed}-{size}-{sample}") (str seeds are hashed deterministically), so each
(size, sample, seed) file is reproducible and independent of the other sizes and samples.
"""

import math
import random


def lowdata(items, size, sample, seed, dev_fraction=0.3):
    """(train, dev) lists of (Item, refs) for one subset; raises ValueError if there are too few inputs."""
    n_dev = math.ceil(dev_fraction * size)
    if size + n_dev > len(items):
        raise ValueError(f"{len(items)} training inputs, need {size} + {n_dev}")
    rng = random.Random(f"{seed}-{size}-{sample}")
    chosen = rng.sample(range(len(items)), size + n_dev)
    train = [(items[i], [rng.choice(items[i].refs)]) for i in chosen[:size]]
    dev = [(items[i], items[i].refs) for i in chosen[size:]]
    return train, dev
