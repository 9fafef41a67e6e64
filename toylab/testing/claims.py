"""A claim as a test assertion: :func:`assert_claim` (pytest, hypothesis).

It lives with the other test helpers, above both :mod:`toylab.claims` (which decides)
and :mod:`toylab.viz` (which draws the counterexample), so neither imports the other.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import Any

from toylab.claims import Claim, ClaimResult, check

__all__ = ["assert_claim"]


def assert_claim(
    claim: Claim,
    model: Any,
    dist: Any,
    *,
    plot: bool = True,
    plot_dir: str | Path | None = None,
    **kwargs: Any,
) -> ClaimResult:
    """:func:`check` the claim; raise ``AssertionError`` with the verdict if it fails.

    With ``plot`` (the default), a failure with a 2-D counterexample also writes a PNG
    of the neuron's map with the counterexample marked
    (:func:`toylab.viz.verdicts.plot_counterexample`) to ``plot_dir`` (default: a new
    temporary directory) and names it in the message. Plotting is optional (matplotlib
    is imported only then) and never decides anything: if it fails, the message says so
    and the assertion is raised all the same.
    """
    result = check(claim, model, dist, **kwargs)
    if result.holds:
        return result
    note = ""
    if plot:
        try:
            from toylab.viz.verdicts import plot_counterexample  # matplotlib only when plotting

            out_dir = (
                Path(plot_dir)
                if plot_dir is not None
                else Path(tempfile.mkdtemp(prefix="toylab-claim-"))
            )
            slug = "".join(ch if ch.isalnum() else "_" for ch in result.neuron)[:40]
            path = plot_counterexample(
                result,
                model,
                dist,
                out_dir / f"counterexample_{slug}.png",
                plane=kwargs.get("plane"),
                window=kwargs.get("window"),
            )
            result = dataclasses.replace(result, plot_path=str(path))
        except Exception as e:  # noqa: BLE001 - plotting is a convenience, never a verdict
            note = f"\n  (no plot: {e})"
    raise AssertionError("claim failed:\n" + result.explain() + note)
