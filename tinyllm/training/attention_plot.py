"""Drawing attention maps: which earlier tokens each position of a text looks at.

``plot_attention(tokens, maps)`` draws one heat map per (layer, head) -- rows are the
positions that attend (queries), columns the positions attended to (keys); a causal model's
maps are lower-triangular and each row sums to 1. Needs matplotlib (``pip install
".[plot]"``).

>>> tokens, maps = attention_maps("runs/gpt-small-pydoc", "The module ")
>>> fig = plot_attention(tokens, maps, layer=0)            # layer 0's heads side by side
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise RuntimeError('drawing attention maps needs matplotlib: pip install ".[plot]"'
                           ) from None
    return plt


def _pick(what: str, value: int | None, count: int) -> list[int]:
    """All indices, or the one asked for (negative counts from the end) after a range check."""
    if value is None:
        return list(range(count))
    if not -count <= value < count:
        raise ValueError(f"--{what} {value} is out of range: the model has {count} "
                         f"{what}s, accepted 0..{count - 1} (or -{count}..-1)")
    return [value % count]


def _label(token: str) -> str:
    return {"\n": "\\n", " ": "␣", "\t": "\\t"}.get(token, token)


def plot_attention(tokens: list[str], maps: list[np.ndarray], layer: int | None = None,
                   head: int | None = None):
    """A matplotlib Figure: one heat map per chosen (layer, head); `maps` holds one
    (nh, T, T) array per layer. Default: every layer (rows) and head (columns)."""
    plt = _pyplot()
    layers = _pick("layer", layer, len(maps))
    heads = _pick("head", head, maps[0].shape[0])
    t = len(tokens)
    cell = max(2.2, min(6.0, 0.22 * t))
    fig, axes = plt.subplots(len(layers), len(heads), squeeze=False,
                             figsize=(cell * len(heads) + 0.6, cell * len(layers) + 0.4))
    labels = [_label(tok) for tok in tokens]
    for r, li in enumerate(layers):
        for c, hi in enumerate(heads):
            ax = axes[r][c]
            ax.imshow(maps[li][hi], cmap="viridis", vmin=0.0, vmax=1.0)
            ax.set_title(f"layer {li}, head {hi}", fontsize=9)
            if t <= 48:                            # labels only where they stay readable
                ax.set_xticks(range(t), labels, fontsize=7, rotation=90)
                ax.set_yticks(range(t), labels, fontsize=7)
            else:
                ax.set_xticks([])
                ax.set_yticks([])
    fig.supxlabel("attended position (key)", fontsize=9)
    fig.supylabel("attending position (query)", fontsize=9)
    fig.tight_layout()
    return fig


def save_attention_plot(tokens, maps, path, layer=None, head=None) -> Path:
    """Draw `plot_attention(...)` into an image file (the format from its suffix)."""
    path = Path(path)
    if path.suffix.lower() not in {".png", ".svg", ".pdf", ".jpg", ".jpeg"}:
        raise ValueError(f"--out {str(path)!r}: give an image file name ending in .png, .svg, "
                         ".pdf or .jpg")
    fig = plot_attention(tokens, maps, layer, head)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    _pyplot().close(fig)
    return path
