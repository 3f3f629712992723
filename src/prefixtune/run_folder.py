"""What a run's folder holds, read in one place (aggregate, scripts/results-md, scripts/run-times and
bench/dtype_check read runs through it):

    runs/<preset>/<run id>/method/method.json        train: kept steps, steps run, budget, hparams
    runs/<preset>/<run id>/method/log.jsonl          train: one row per optimizer step
    runs/<preset>/<run id>/<test>.hyp.txt            decode (`<test>-alt`: the second selection rule's parameters)
    runs/<preset>/<run id>/<test>.scores.json        score
    <output>.run.json beside each output             the stage's command, seconds, CPU seconds, host, commit

`decoded(run, run_dir)` gives one row per decoded set of a run (`Run.tests`): its scores, the step whose parameters
made it, and the seconds each stage took. A file that is missing or unreadable is an InputError naming it.
"""

import json
import math
from pathlib import Path

from .errors import InputError
from .registry import PREFIX_METHODS


def read_json(path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: missing (has this run been scored?)")
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: not valid JSON: {e}") from None
    if not isinstance(obj, dict):
        raise InputError(f"{path}: expected a JSON object")
    return obj


def seconds(output, key: str = "seconds") -> float:
    """A stage's seconds (or `cpu_seconds`) from `<output>.run.json`; nan when it was not recorded."""
    path = Path(f"{output}.run.json")
    return read_json(path).get(key, math.nan) if path.is_file() else math.nan


def finished(run, run_dir) -> bool:
    """Every set the run decodes has its scores (`run_dir`: the run's folder, runs/<preset>/<run id>)."""
    return all((Path(run_dir) / f"{name}.scores.json").is_file() for name in run.tests)


def kept_step(info: dict, selection: str):
    """The step whose parameters a selection rule kept (None without model selection)."""
    return (info.get("alt") or {}).get("best_step") if selection == "alt" else info.get("best_step")


def kept_dev_loss(info: dict, selection: str):
    """The dev loss (per target token) of the step a selection rule kept (None without model selection)."""
    return (info.get("alt") or {}).get("best_dev_loss") if selection == "alt" else info.get("best_dev_loss")


def machine(output) -> dict:
    """What a stage ran on, from `<output>.run.json` (cli.py: CPU, its flags, cores, versions); {} when the file
    is missing, and only the host for runs recorded before machine.py existed."""
    path = Path(f"{output}.run.json")
    if not path.is_file():
        return {}
    rec = read_json(path)
    return {k: rec[k] for k in ("host", "cpu", "cpu_family", "cpu_model", "cpu_flags", "cores", "python", "torch",
                                "transformers") if k in rec}


def cpu_label(where: dict) -> str:
    """The CPU a stage ran on, named for a timing: its model name, the fastest instruction set it has of
    machine.FLAGS (listed slowest first) and, where recorded, its family and model numbers, e.g. "AMD EPYC (avx2;
    family 25 model 1)"; "not recorded" for runs that predate it."""
    if "cpu" not in where:
        return "not recorded"
    about = [*(where.get("cpu_flags") or [])[-1:],
             *([f"family {where['cpu_family']} model {where['cpu_model']}"] if "cpu_family" in where else [])]
    return f"{where['cpu']} ({'; '.join(about)})" if about else where["cpu"]


def trained_prefix_len(info: dict):
    """P as the run trained it (an init text's own token count where the text set it); None for a method that
    trains no virtual positions (an older method.json of fine-tuning may still hold the default P)."""
    config = info.get("config") or {}
    return config.get("prefix_len") if config.get("method") in PREFIX_METHODS else None


def decoded(run, run_dir) -> list[dict]:
    """One row per decoded set of `run` (a params Run; its files in `run_dir`): test, selection, the scores,
    the kept step and its dev loss, steps, parameter counts and each stage's seconds."""
    d = Path(run_dir)
    info = read_json(d / "method" / "method.json")
    return [{"test": t["test"], "selection": t["selection"], "scores": read_json(d / f"{name}.scores.json"),
             "kept_step": kept_step(info, t["selection"]), "kept_dev_loss": kept_dev_loss(info, t["selection"]),
             "steps_run": info.get("steps_run", info.get("steps")),
             "steps": info.get("steps"), "trainable_fraction": info.get("trainable_fraction", math.nan),
             "trainable_params": info.get("trainable_params"), "base_params": info.get("base_params"),
             "trained_prefix_len": trained_prefix_len(info),
             "train_s": seconds(d / "method"), "train_cpu_s": seconds(d / "method", "cpu_seconds"),
             "decode_s": seconds(d / f"{name}.hyp.txt"), "score_s": seconds(d / f"{name}.scores.json")}
            for name, t in run.tests.items()]
