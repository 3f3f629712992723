"""prefixtune: Prefix-Tuning (Li & Liang, 2021) and its baselines behind one interface."""

__version__ = "0.1.0"
