"""Progress of long work: a tqdm bar on a terminal, plain lines elsewhere (a Snakemake or DVC log, a pipe).

Off a terminal tqdm stays silent, and a grid's log would show nothing for the 15-25 minutes of a run; so
`Progress` writes one line to stderr every `every` units and whenever the caller has news (a dev
evaluation), with the rate and the time left:

    train prefix: step 40/200 (20%)  loss 2.3104  dev 1.9832 (best 1.9517 at 20)  1.21 s/step  ETA 3m14s

Only stderr sees wall-clock times; no output file does (outputs stay byte-identical from run to run).
"""

import sys
import time

from tqdm.auto import tqdm


def _duration(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s" if m else f"{s}s"


class Progress:
    """`update(n, note)` after each unit of work; `line(note)` forces a line (off a terminal)."""

    def __init__(self, total: int, desc: str, unit: str, initial: int = 0, every: int | None = None,
                 stream=None):
        self.stream = stream or sys.stderr
        self.total, self.desc, self.unit, self.done = total, desc, unit, initial
        self.tty = self.stream.isatty()
        self.every = every or max(1, total // 20)  # about 20 lines per job
        self.start, self.first = time.monotonic(), initial
        self.bar = tqdm(total=total, initial=initial, desc=desc, unit=unit, file=self.stream) if self.tty else None

    def update(self, n: int = 1, note: str = "", force: bool = False):
        before, self.done = self.done, self.done + n
        if self.bar is not None:
            self.bar.update(n)
            if note:
                self.bar.set_postfix_str(note, refresh=False)
        elif force or self.done // self.every > before // self.every or self.done == self.total:
            self.line(note)

    def line(self, note: str = ""):
        if self.bar is not None:
            self.bar.write(f"{self.desc}: {note}", file=self.stream)
            return
        elapsed, did = time.monotonic() - self.start, self.done - self.first
        rate = f"  {elapsed / did:.2f} s/{self.unit}  ETA {_duration(elapsed / did * (self.total - self.done))}" \
            if did else ""
        pct = f" ({100 * self.done // self.total}%)" if self.total else ""
        print(f"{self.desc}: {self.unit} {self.done}/{self.total}{pct}  {note}{rate}".rstrip(),
              file=self.stream, flush=True)

    def close(self):
        if self.bar is not None:
            self.bar.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
