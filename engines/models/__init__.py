"""Encoders: every model honours one contract, ``forward(windows [N, f, 20, 3] metres) -> [N, D]``."""
