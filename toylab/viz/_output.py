"""What the report and the atlas both write: numbers as text and figures as PNG files."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from toylab.runs.io import atomic_write_bytes

__all__ = ["MAX_DATA_PANELS", "fmt_number", "png_bytes", "save_png"]

#: members drawn in a data figure; the caption names which when there are more
MAX_DATA_PANELS = 16


def fmt_number(v: Any, digits: int = 4) -> str:
    """``v`` with ``digits`` decimals; never ``-0.0000`` (a value that rounds to zero is
    ``0.0000``), ``nan`` for a missing or non-finite value."""
    if v is None:
        return "nan"
    f = float(v)
    if not np.isfinite(f):
        return "nan" if np.isnan(f) else ("inf" if f > 0 else "-inf")
    s = f"{f:.{digits}f}"
    return s[1:] if s.startswith("-") and float(s) == 0 else s


def png_bytes(fig: Any, dpi: int) -> bytes:
    """A matplotlib figure as PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def save_png(fig: Any, path: str | Path, dpi: int = 110) -> None:
    """Write a figure as a PNG file, atomically."""
    atomic_write_bytes(path, png_bytes(fig, dpi))
