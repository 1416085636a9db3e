"""Summaries of evaluation runs: mean ± std over split seeds, a text table and a CMC plot."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from engines.plotting import pyplot

METRICS = ("top1", "top5", "top10", "mAP", "nAUC")
LEVELS = ("window", "walk")


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    arr = np.asarray(values, float)
    return float(arr.mean()), float(arr.std(ddof=1)) if len(arr) > 1 else 0.0


def summarise(rows: list[dict]) -> dict:
    """Per method and level, each metric's mean ± std over the evaluated splits; plus a printable table."""
    by_method: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        by_method[row["method"]].append(row)
    stats = {}
    lines = [f"{'method':8s} {'level':7s} {'seeds':5s} " + " ".join(f"{m:>13s}" for m in METRICS)]
    for method, runs in by_method.items():
        stats[method] = {"splits": [r["split"] for r in runs]}
        for level in LEVELS:
            cells = {m: mean_std([r[level][m] for r in runs]) for m in METRICS}
            stats[method][level] = {m: {"mean": round(v[0], 2), "std": round(v[1], 2)} for m, v in cells.items()}
            lines.append(
                f"{method:8s} {level:7s} {len(runs):5d} "
                + " ".join(f"{v[0]:6.1f} ± {v[1]:4.1f}" for v in cells.values())
            )
    return {"stats": stats, "table": "\n".join(lines)}


def write_cmc_plot(rows: list[dict], path: Path, max_rank: int = 20) -> None:
    """CMC curves (ranks 1..max_rank), window level and walk level side by side, one line per run."""
    plt = pyplot()

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, level in zip(axes, LEVELS, strict=True):
        for row in rows:
            cmc = row[level]["cmc"][:max_rank]
            ax.plot(range(1, len(cmc) + 1), cmc, label=f"{row['method']} {row['split']}", alpha=0.8)
        ax.set_title(f"{level} level CMC")
        ax.set_xlabel("rank")
        ax.set_ylabel("identification rate (%)")
        ax.set_xticks(range(1, max_rank + 1, 2))
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
