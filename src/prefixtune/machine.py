"""What a stage ran on, for its `<output>.run.json` (cli.py) and the reproduction checklist: the CPU's model
name and the instruction sets that decide its speed (AVX2, AVX-512, AVX-512 BF16, AMX), the number of cores,
and the versions of Python, torch and transformers. Linux reads /proc/cpuinfo; elsewhere the CPU is
platform.processor()."""

import os
import platform
from importlib import metadata
from pathlib import Path

FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")  # the ones a CPU run's speed turns on
NUMBERS = {"cpu family": "cpu_family", "model": "cpu_model"}  # /proc/cpuinfo's key -> the record's


def cpu() -> dict:
    """The CPU's model name, its FLAGS, and its family and model numbers: a virtual machine's model name may be
    only "AMD EPYC", which covers generations several-fold apart in speed (family 23: Zen 2; 25: Zen 3, Zen 4
    from model 16)."""
    model, flags, numbers = platform.processor() or platform.machine(), set(), {}
    info = Path("/proc/cpuinfo")
    if info.is_file():
        for line in info.read_text(encoding="utf-8", errors="replace").splitlines():
            key, _, value = line.partition(":")
            key, value = key.strip(), value.strip()
            if key == "model name" and value:
                model = value
            elif key in NUMBERS and value.isdigit():
                numbers[NUMBERS[key]] = int(value)
            elif key == "flags":
                flags = set(value.split())
                break
    return {"cpu": model, **numbers, "cpu_flags": [f for f in FLAGS if f in flags], "cores": os.cpu_count()}


def versions() -> dict:
    out = {"python": platform.python_version()}
    for package in ("torch", "transformers"):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            out[package] = None
    return out


def describe() -> dict:
    return {**cpu(), **versions()}
