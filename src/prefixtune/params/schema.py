"""params.yaml: read it (with line numbers), check it against workflow/schemas/params.schema.yaml, merge a
preset over the defaults.

Every error is one line naming the file and line (`params.yaml:123: 'presets.cpu.train.lr' must be ...`),
or, for a value that came from Snakemake's --config/--configfile, the command line.
"""

import copy
import re
from pathlib import Path

import yaml

from ..errors import InputError

PARAMS = Path("params.yaml")
SCHEMA = "workflow/schemas/params.schema.yaml"
RESERVED = ("downloads",)  # pipelines/downloads/ holds the shared download stages: no preset of that name


class Loader(yaml.SafeLoader):
    """YAML 1.1 reads `5e-5` as a string; read it as the float YAML 1.2 (and every reader) means."""


Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$|"
               r"^[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?$|^[-+]?\.[0-9_]+(?:[eE][-+]?[0-9]+)?$"),
    list("-+0123456789."))


def schema_path(params_path=PARAMS) -> Path:
    """The schema beside params.yaml (the repository's own copy), else the one this package came with."""
    here = Path(params_path).resolve().parent / SCHEMA
    return here if here.is_file() else Path(__file__).resolve().parents[3] / SCHEMA


def load_doc(path=PARAMS) -> dict:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    text = path.read_text(encoding="utf-8")
    try:
        doc = yaml.load(text, Loader=Loader) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f"{path}:{mark.line + 1}" if mark else str(path)
        raise InputError(f"{at}: not valid YAML: {getattr(e, 'problem', None) or str(e).splitlines()[0]}") from None
    if not isinstance(doc, dict):
        raise InputError(f"{path}: expected a mapping at the top level")
    return doc


def line_of(path, keys) -> int | None:
    """The line of the value at `keys` (a key path) in the YAML file, or of its nearest existing parent."""
    try:
        node = yaml.compose(Path(path).read_text(encoding="utf-8"), Loader=Loader)
    except (OSError, yaml.YAMLError):
        return None
    line = None
    for k in keys:
        if isinstance(node, yaml.MappingNode):
            hit = [(kn, vn) for kn, vn in node.value if kn.value == str(k)]
            if not hit:
                break
            line, node = hit[0][0].start_mark.line + 1, hit[0][1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(k, int) and k < len(node.value):
            node = node.value[k]
            line = node.start_mark.line + 1
        else:
            break
    return line


def _validator(params_path):
    import json

    import jsonschema

    schema = yaml.safe_load(schema_path(params_path).read_text(encoding="utf-8"))
    json.dumps(schema)  # a schema is JSON
    return jsonschema.Draft202012Validator(schema)


def _message(err) -> str:
    keys = ".".join(map(str, err.absolute_path)) or "(top)"
    if err.validator == "additionalProperties":
        extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
        known = ", ".join(err.schema.get("properties", {}))
        return f"unknown key '{keys + '.' if err.absolute_path else ''}{extra[0]}' (known: {known})"
    if err.validator == "propertyNames":
        return f"bad name '{keys}.{err.instance}' ({err.message})"
    return f"'{keys}': {err.message}"


def check_doc(doc, path, blame=None):
    """InputError for the first schema violation (in the file's order), naming `path` and the line, or
    `blame` (what brought the value, e.g. the command line) instead when given."""
    errors = list(_validator(path).iter_errors(doc))
    if errors:
        err = min(errors, key=lambda e: line_of(path, list(e.absolute_path)) or 0)
        line = None if blame else line_of(path, list(err.absolute_path))
        raise InputError(f"{blame or path}{f':{line}' if line else ''}: {_message(err)}")


def merge(base, over):
    """Deep merge: mappings key by key, anything else (lists, scalars) replaced."""
    out = copy.deepcopy(base)
    for k, v in (over or {}).items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


SECTIONS = {"data": {}, "datasets": {}, "methods": {}, "inits": {}, "train": {}, "decode": {}, "overrides": [],
            "experiments": {}, "resources": {}}
REQUIRED = {"datasets": ("task", "model"), "methods": ("method",), "experiments": ("table", "datasets", "methods")}


def preset_settings(doc, name, where=PARAMS) -> dict:
    """One preset's effective settings: its entries deep-merged over `defaults`, with required keys."""
    presets = doc.get("presets") or {}
    if name not in presets:
        raise InputError(f"{where}: unknown preset '{name}' (known: {', '.join(presets) or 'none'})")
    if name in RESERVED:
        raise InputError(f"{where}:{line_of(where, ['presets', name])}: the preset name '{name}' is reserved")
    settings = merge(doc.get("defaults") or {}, presets[name])
    for section, empty in SECTIONS.items():
        settings.setdefault(section, copy.deepcopy(empty))
    for section, keys in REQUIRED.items():
        for entry, value in settings[section].items():
            for k in keys:
                if k not in value:
                    line = line_of(where, ["presets", name, section, entry]) or line_of(where, ["defaults", section,
                                                                                            entry])
                    raise InputError(f"{where}{f':{line}' if line else ''}: preset '{name}': "
                                     f"'{section}.{entry}' needs '{k}'")
    for entry, value in settings["datasets"].items():
        _check_dataset(entry, value, where, name)
    settings["preset"] = name
    return settings


def _check_dataset(entry, d, where, preset):
    """A dataset is a built-in release (`source`) or a user's files (`files`), never both."""
    from ..data import DATASETS
    from ..data.jsonl import SCORERS

    at = f"{where}: preset '{preset}': 'datasets.{entry}'"
    if ("source" in d) == ("files" in d):
        raise InputError(f"{at} needs either 'source' (a built-in release) or 'files' (your own JSONL files)")
    if "source" in d and d["source"] not in DATASETS:
        raise InputError(f"{at}.source: '{d['source']}' is not one of {', '.join(DATASETS)}")
    if "files" in d:
        if entry in DATASETS:
            raise InputError(f"{at}: a user dataset cannot take a built-in name ({', '.join(DATASETS)})")
        if d["task"] not in SCORERS:
            raise InputError(f"{at}.task: '{d['task']}': user data is scored as one of {', '.join(SCORERS)}")
        if d.get("split") or d.get("tests", ["test"]) != ["test"]:
            raise InputError(f"{at}: 'split' and 'tests' are for built-in releases")


def resolve(doc: dict, overlay: dict | None = None, where=PARAMS) -> dict:
    """Check params.yaml and an overlay (Snakemake's --config/--configfile, deep-merged over the whole
    document, so {"preset": "paper"} switches preset) -> the chosen preset's effective settings.
    A bad value in params.yaml is blamed on its line; one the overlay brought, on the command line."""
    check_doc(doc, where)
    if overlay:
        check_doc(merge(doc, overlay), where, blame="the --config/--configfile override")
        doc = merge(doc, overlay)
    for name in doc.get("presets") or {}:  # every preset, so a typo in an unused one is found today
        preset_settings(doc, name, where)
    return preset_settings(doc, doc.get("preset", "cpu"), where)


def load(path=PARAMS, overlay=None) -> dict:
    return resolve(load_doc(path), overlay, where=Path(path))


def resources(settings: dict, rule: str) -> dict:
    """Resources for one rule: resources.default updated by resources.<rule>."""
    res = dict(settings["resources"].get("default", {}))
    res.update(settings["resources"].get(rule, {}))
    return res
