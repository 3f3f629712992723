"""Code as a dependency: the project files each stage runs, so that changing one re-runs exactly the
stages that import it (DVC `deps`, Snakemake `input`).

`code_deps(stage)` is the transitive closure of `prefixtune` imports of the stage's module, read from the
source (`ast`, imports inside functions included, since the stages import lazily), as paths relative to
the repository root; each imported module's package `__init__.py` files count too, and so do modules named
in string constants ("prefixtune.methods.prefix:Prefix": a registry that imports on demand). The strings of
registry.py (every method's class) count for the module that imports them on demand (`prefixtune.methods`),
not for registry.py itself, which the grid and the plots read for the methods' traits alone. The CLI
dispatcher (`cli.py`) is left out: it runs every stage. Data files that a module reads as part of its logic
(`READS`: the release table of the downloads) count as code, and so do the modules that one finds at run time
(`FINDS`: linearize runs the dataset modules that prefixtune.data discovers).
"""

import ast
import re
from functools import lru_cache
from pathlib import Path

from .data import MODULES as DATASET_MODULES

PACKAGE = Path(__file__).resolve().parent  # src/prefixtune
STAGE_MODULES = {"download": "prefixtune.data.download", "linearize": "prefixtune.data.linearize",
                 "testset": "prefixtune.testset", "train": "prefixtune.train", "decode": "prefixtune.decode",
                 "score": "prefixtune.score", "aggregate": "prefixtune.aggregate", "plot": "prefixtune.plot", "params": "prefixtune.params",
                 "reproduce": "prefixtune.reproduce"}
REGISTRY = re.compile(r"prefixtune(\.\w+)+(:\w+)?")  # "prefixtune.methods.prefix:Prefix"
SKIP = {"prefixtune.cli"}  # dispatches to every stage by name: not a dependency of any one
ON_DEMAND = {"prefixtune.methods": "prefixtune.registry"}  # module -> the registry whose entries it imports
READS = {"prefixtune.data.sources": ("data/releases.csv",)}  # module -> package data files it reads (code too)
# module -> the modules it finds and imports at run time: linearize runs each dataset's module (prefixtune.data)
FINDS = {"prefixtune.data.linearize": tuple(DATASET_MODULES.values())}


def _file(module: str) -> Path | None:
    parts = module.split(".")[1:]
    if not parts:
        return PACKAGE / "__init__.py"
    rel = Path(*parts)
    for candidate in (PACKAGE / rel.with_suffix(".py"), PACKAGE / rel / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imports(module: str, path: Path) -> set[str]:
    """The prefixtune modules `path` (module `module`) imports, as dotted names."""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    out = set()
    nodes = list(ast.walk(ast.parse(path.read_text(encoding="utf-8"))))
    if module in ON_DEMAND:  # the registry's entries are this module's imports
        nodes += [n for n in ast.walk(ast.parse(_file(ON_DEMAND[module]).read_text(encoding="utf-8")))
                  if isinstance(n, ast.Constant)]
    if module in FINDS:
        out |= set(FINDS[module])
    for node in nodes:
        if (isinstance(node, ast.Constant) and isinstance(node.value, str) and REGISTRY.fullmatch(node.value)
                and module != __name__ and module not in ON_DEMAND.values()):  # see the module docstring
            out.add(node.value.split(":")[0])  # a registry entry imported on demand ("module:Class")
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] == "prefixtune"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            elif (node.module or "").split(".")[0] == "prefixtune":
                name = node.module
            else:
                continue
            out.add(name)
            out |= {f"{name}.{a.name}" for a in node.names if _file(f"{name}.{a.name}")}  # `from . import x`
    return {m for m in out if _file(m)}


@lru_cache(maxsize=None)
def closure(module: str) -> tuple[str, ...]:
    """`module` and every prefixtune module it imports, directly or not, with their packages."""
    seen, todo = set(), [module]
    while todo:
        m = todo.pop()
        if m in seen or m in SKIP:
            continue
        seen.add(m)
        parts = m.split(".")
        todo += [".".join(parts[:i]) for i in range(2, len(parts))]  # parent packages run on import
        todo += sorted(_imports(m, _file(m)))
    return tuple(sorted(seen))


def code_deps(stage: str) -> list[str]:
    """Repository-relative paths of the files `prefixtune <stage>` runs."""
    root = PACKAGE.parent.parent
    modules = closure(STAGE_MODULES[stage])
    files = [_file(m) for m in modules] + [PACKAGE / f for m in modules for f in READS.get(m, ())]
    return sorted(str(f.relative_to(root)) for f in files)

