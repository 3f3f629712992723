"""GFLOP/s of one matmul in float32 and bfloat16 on the CPU: the ceiling that decoding and training are measured
against (issue 14's shape, 512x576 @ 576x1536, SmolLM2's hidden size and MLP width).

    .venv/bin/python bench/matmul_rate.py [--threads 2] [--repeat 50]

Prints one JSON object: torch's CPU capability (AVX2, AVX512, ...) and the rate of each dtype, the median of
`--repeat` timed products after 5 untimed ones.
"""

import argparse
import json
import statistics
import time

import torch


def rate(dtype, m=512, k=576, n=1536, repeat=50):
    a, b = torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
    for _ in range(5):
        a @ b
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t)
    return round(2 * m * k * n / statistics.median(times) / 1e9, 1)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeat", type=int, default=50)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    out = {"cpu_capability": torch.backends.cpu.get_cpu_capability(), "torch": torch.__version__,
           "threads": args.threads}
    for dtype in (torch.float32, torch.bfloat16):
        out[f"{str(dtype).removeprefix('torch.')}_gflops"] = rate(dtype, repeat=args.repeat)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
