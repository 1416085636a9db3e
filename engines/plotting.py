"""Matplotlib for writing PNG files only: no display, imported when a plot is written."""

from __future__ import annotations


def pyplot():
    """matplotlib.pyplot on the non-interactive Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
