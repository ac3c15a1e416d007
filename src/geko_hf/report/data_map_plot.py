"""The data-map picture (Swayamdipta et al., EMNLP 2020, Fig. 1): variability (x) against confidence (y), one point
per sample coloured by its correctness, with the region cut-offs drawn. Above HEXBIN_ABOVE samples points hide
each other, so the picture becomes a density (hexbin of the sample count) with the mean correctness per cell:
readable at 100 and at 1,000,000 samples. numpy in, PNG out (matplotlib imported lazily, no pyplot state).
"""

from __future__ import annotations

import numpy as np

from ..core.data_map import REGIONS, region_thresholds, regions_of
from .plot import _figure

HEXBIN_ABOVE = 20_000  # samples: beyond this a scatter is an ink blot
REGION_COLORS = {"easy-to-learn": "#4c78a8", "ambiguous": "#f2a93b", "hard-to-learn": "#d6404e"}


def plot_data_map(data_map, path: str, title: str | None = None) -> str | None:
    """Draw a DataMap into `path` (PNG); the path, or None when no sample was observed or matplotlib is missing."""
    try:
        fig = _figure(figsize=(8, 6.5), layout="constrained")
    except ModuleNotFoundError:
        return None
    stats = data_map.statistics()
    seen = stats["observations"] > 0
    if not seen.any():
        return None
    x, y, c = stats["variability"][seen], stats["confidence"][seen], stats["correctness"][seen]
    ax = fig.subplots()
    if seen.sum() > HEXBIN_ABOVE:
        art = ax.hexbin(x, y, C=c, gridsize=60, reduce_C_function=np.mean, cmap="RdYlBu", vmin=0, vmax=1, mincnt=1)
        label, note = "mean correctness per cell", f"{int(seen.sum()):,} samples (density: one hexagon per cell)"
    else:
        size = float(np.clip(3000 / np.sqrt(seen.sum()), 4, 40))
        art = ax.scatter(x, y, c=c, s=size, cmap="RdYlBu", vmin=0, vmax=1, alpha=0.75, linewidths=0)
        label, note = "correctness (share of observations right)", f"{int(seen.sum()):,} samples"
    fig.colorbar(art, ax=ax, label=label)
    _regions(ax, stats, x, y)
    ax.set_xlabel("variability (std of the gold-label probability)")
    ax.set_ylabel("confidence (mean gold-label probability)")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(title or f"Data map: {note}")
    fig.savefig(path, dpi=100)
    return str(path)


def _regions(ax, stats, x, y) -> None:
    """The cut-offs of core.data_map's region rule, and each region's share in the legend."""
    cut = region_thresholds(stats)
    regions = _region_counts(stats)
    ax.axvline(cut["variability_cutoff"], color="0.3", lw=1, ls="--")
    ax.plot([0, cut["variability_cutoff"]], [cut["confidence_cutoff"]] * 2, color="0.3", lw=1, ls="--")
    total = max(sum(regions.values()), 1)
    for name in REGIONS:
        ax.plot([], [], "s", color=REGION_COLORS[name], label=f"{name}: {100 * regions[name] / total:.0f}%")
    ax.legend(loc="lower right", title="regions (dashed: cut-offs)", fontsize=9)
    top = float(np.nanmax(y)) if len(y) else 1.0
    ax.annotate("ambiguous", (cut["variability_cutoff"], top), xytext=(6, -12), textcoords="offset points",
                color=REGION_COLORS["ambiguous"], fontweight="bold")
    ax.annotate("easy-to-learn", (0, top), xytext=(4, -12), textcoords="offset points",
                color=REGION_COLORS["easy-to-learn"], fontweight="bold")
    ax.annotate("hard-to-learn", (0, float(np.nanmin(y))), xytext=(4, 6), textcoords="offset points",
                color=REGION_COLORS["hard-to-learn"], fontweight="bold")


def _region_counts(stats) -> dict:
    regions = regions_of(stats)
    return {name: int((regions == name).sum()) for name in REGIONS}
