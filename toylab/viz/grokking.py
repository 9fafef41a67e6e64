"""The grokking progress measures against the training step, with the phases shaded.

:func:`grokking_figure` draws one member of a :class:`toylab.dynamics.GrokkingResult`
(a matplotlib ``Figure``, no pyplot; matplotlib is imported lazily): losses (train, test,
restricted on all pairs, excluded on the training pairs), accuracies, the weight norm and
the Fourier sparsity measures, each against the step on a symmetric-log x axis (linear
below step 1, so step 0 is drawn), with memorisation, circuit formation and cleanup
shaded as :func:`toylab.dynamics.locate_phases` found them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from toylab._errors import fail

__all__ = ["PHASE_COLORS", "grokking_figure"]

#: shading of each phase
PHASE_COLORS = {
    "memorisation": "#fdd49e",
    "circuit_formation": "#c6dbef",
    "cleanup": "#c7e9c0",
}


def grokking_figure(result: Any, member: int = 0, *, title: str | None = None) -> Any:
    """Member ``result.members[member]``'s progress measures, four panels side by side."""
    from matplotlib.figure import Figure

    n = len(result.members)
    if isinstance(member, bool) or not isinstance(member, int) or not 0 <= member < n:
        raise fail(
            "grokking_figure", "member", member, f"an index into result.members (0..{n - 1})"
        )
    steps = np.asarray(result.steps, np.float64)
    ph = result.phases[member]
    fig = Figure(figsize=(17.0, 3.9), layout="constrained")
    axes = fig.subplots(1, 4)
    curves = [
        ("loss (" + result.loss + ")", [
            ("train", result.train_loss, "C0", "-"),
            ("test", result.test_loss, "C3", "-"),
            ("restricted (all pairs)", result.restricted_loss, "C2", "--"),
            ("excluded (train pairs)", result.excluded_loss, "C1", "--"),
        ]),
        ("accuracy", [
            ("train", result.train_accuracy, "C0", "-"),
            ("test", result.test_accuracy, "C3", "-"),
        ]),
        ("sum of squared weights", [("all layers", result.weight_norm, "k", "-")]),
        ("Fourier sparsity", [
            ("embedding: key frequencies", result.embedding_key_fraction, "C4", "-"),
            ("embedding: top |K| frequencies", result.embedding_top_fraction, "C4", ":"),
            ("embedding: each unit's top frequency", result.embedding_unit_fraction, "C9", "-"),
            *[(f"{k}: one-frequency units", v, f"C{5 + i}", "-")
              for i, (k, v) in enumerate(sorted(result.neuron_fraction.items()))],
        ]),
    ]  # fmt: skip
    for i, (ax, (label, series)) in enumerate(zip(axes, curves, strict=True)):
        for name in PHASE_COLORS:
            iv = getattr(ph, name)
            if iv is not None:  # the phases' legend on the first panel only
                ax.axvspan(iv[0], iv[1], color=PHASE_COLORS[name], alpha=0.7, lw=0,
                           label=name.replace("_", " ") if i == 0 else None)  # fmt: skip
        for name, values, color, style in series:
            ax.plot(steps, np.asarray(values)[member], color=color, ls=style, lw=1.5, label=name)
        ax.set_xscale("symlog", linthresh=1.0)
        ax.set_xlim(steps[0], steps[-1])
        ax.set_xlabel("step")
        ax.set_title(label, fontsize=10)
        if label.startswith("loss"):
            ax.set_yscale("log")
        ax.legend(fontsize=7, loc="best")
    keys = ", ".join(str(f) for f in result.key_frequencies[member])
    fig.suptitle(
        title
        or (
            f"member {result.members[member]} ({result.labels[member]}): p = {result.p}, "
            f"key frequencies {keys}; grok step {ph.grok_step} ({result.tier})"
        ),
        fontsize=11,
    )
    return fig
