"""The one error type users see: a one-line message that names the file (and line or entry)."""


class InputError(Exception):
    """Bad user input. `prefixtune` prints `prefixtune: error: <message>` and exits with status 2.

    Build messages with `where(path, line)` so every error names its file, e.g.
    `raise InputError(f"{where(path, 12)}: training line has no 'target'")`.
    """


def where(path, line=None, entry=None) -> str:
    """`path`, `path:line` or `path [entry]`: the location prefix of an error message."""
    if line is not None:
        return f"{path}:{line}"
    if entry is not None:
        return f"{path} [{entry}]"
    return str(path)
