"""Beam search over any `Method` (`search`), the cache state it carries between steps (`cache`), several methods
in one batch (`routed`), and single-token attention on the CPU (`attention`). `prefixtune decode` (decode.py) is
the command that runs it."""
