"""Counterexample search with hypothesis, and confidence intervals (private).

The search looks for an input where a claim's pointwise *margin* is negative. Each
example hypothesis generates is a start point in the domain box plus a number of
gradient steps (0 to ``max_steps``): the steps follow ``-jax.grad(margin)`` with a
normalised, shrinking step size, projected back into the box. ``hypothesis.target``
is fed the negated margin, so hypothesis' targeted phase climbs toward violations,
and shrinking then simplifies the start point and drops unnecessary steps. The
reported counterexample is finally rounded to the fewest significant digits that
still violate the claim.

On a finite domain (:func:`search_finite`) the search draws the domain's own inputs
(by index), targeting the same negated margin; every counterexample is an input of
the domain.

Inside a running hypothesis test (a user's ``@given`` test calling
:func:`toylab.testing.assert_claim`) hypothesis cannot be nested, so the same search
runs with NumPy's generator instead of hypothesis (random starts, the same
gradient steps, the same rounding).
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy import stats

from toylab._validate import check_float, check_int

__all__ = ["SearchOutcome", "clopper_pearson", "search", "search_finite", "wilson"]


def _find_settings(budget: int) -> Any:
    """hypothesis ``find`` settings of every search: ``budget`` examples, no example
    database (a search never replays another's inputs), no deadline or health checks."""
    from hypothesis import HealthCheck, settings

    return settings(
        max_examples=budget, database=None, deadline=None, suppress_health_check=list(HealthCheck)
    )


def _counts(where: str, successes: Any, trials: Any, confidence: Any) -> tuple[int, int, float]:
    n = check_int(where, "trials", trials, minimum=0)
    k = check_int(where, "successes", successes, minimum=0, maximum=n)
    return k, n, check_float(where, "confidence", confidence, minimum=0.5, maximum=1 - 1e-12)


def wilson(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    r"""Wilson score interval for a binomial proportion: with ``p = k/n`` and ``z`` the
    normal quantile of ``(1 + confidence) / 2``,

    .. math:: \frac{p + z^2/2n \pm z \sqrt{p(1-p)/n + z^2/4n^2}}{1 + z^2/n}.
    """
    successes, trials, confidence = _counts("wilson", successes, trials, confidence)
    if trials == 0:
        return (0.0, 1.0)
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    p = successes / trials
    den = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / den
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / den
    return (max(0.0, centre - half), min(1.0, centre + half))


def clopper_pearson(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """Exact (Clopper–Pearson) binomial interval (beta quantiles)."""
    successes, trials, confidence = _counts("clopper_pearson", successes, trials, confidence)
    a = 1 - confidence
    lo = 0.0 if successes == 0 else float(stats.beta.ppf(a / 2, successes, trials - successes + 1))
    hi = (
        1.0
        if successes == trials
        else float(stats.beta.ppf(1 - a / 2, successes + 1, trials - successes))
    )
    return lo, hi


@dataclasses.dataclass(frozen=True)
class SearchOutcome:
    found: bool
    x: np.ndarray | None  # the counterexample (flat: arity * dim)
    margin: float  # its margin (< 0) or the smallest margin seen
    best_x: np.ndarray | None
    num_tried: int
    engine: str


def _descender(
    margin_jnp: Callable[[Any], Any] | None, low: np.ndarray, high: np.ndarray
) -> Callable[[np.ndarray, int], np.ndarray]:
    if margin_jnp is None:
        return lambda x, steps: x
    import jax
    import jax.numpy as jnp

    lo, hi = jnp.asarray(low), jnp.asarray(high)
    size = float(np.max(high - low))
    grad = jax.grad(lambda x: jnp.squeeze(margin_jnp(x[None])))

    @jax.jit
    def run(x: Any, steps: Any) -> Any:
        def body(i: Any, x: Any) -> Any:
            g = grad(x)
            g = jnp.where(jnp.isfinite(g), g, 0.0)
            step = 0.1 * size * 0.75**i
            return jnp.clip(x - step * g / (jnp.linalg.norm(g) + 1e-30), lo, hi)

        return jax.lax.fori_loop(0, steps, body, x)

    def descend(x: np.ndarray, steps: int) -> np.ndarray:
        if steps == 0:
            return x
        with jax.enable_x64(True):
            return np.asarray(run(jnp.asarray(x, jnp.float64), steps), np.float64)

    return descend


def _simplest(
    x: np.ndarray, margin_np: Callable[[np.ndarray], np.ndarray], low: np.ndarray, high: np.ndarray
) -> np.ndarray:
    """Round to the fewest significant digits that still violate (and stay in the box)."""
    for digits in range(1, 16):
        r = np.clip(np.array([float(f"{v:.{digits}g}") for v in x]), low, high)
        if float(margin_np(r[None])[0]) < 0:
            return r
    return x


def search(
    margin_np: Callable[[np.ndarray], np.ndarray],
    margin_jnp: Callable[[Any], Any] | None,
    low: Any,
    high: Any,
    *,
    budget: int = 200,
    seed: int = 0,
    max_steps: int = 8,
) -> SearchOutcome:
    """Search the box ``[low, high]`` for ``x`` with ``margin_np(x[None])[0] < 0``."""
    import hypothesis
    from hypothesis import find, target
    from hypothesis import strategies as st

    low = np.asarray(low, np.float64)
    high = np.asarray(high, np.float64)
    descend = _descender(margin_jnp, low, high)
    count = [0]
    best: list[Any] = [math.inf, None]

    def evaluate(x0: np.ndarray, steps: int) -> tuple[np.ndarray, float]:
        x = descend(x0, steps)
        m = float(margin_np(x[None])[0])
        count[0] += 1
        if not math.isnan(m) and m < best[0]:
            best[0], best[1] = m, x
        return x, m

    if hypothesis.currently_in_test_context():
        rng = np.random.default_rng(seed)
        found = None
        for i in range(budget):
            x0 = low + (high - low) * rng.random(len(low))
            x, m = evaluate(x0, i % (max_steps + 1))
            if m < 0:
                found = x
                break
        engine = "numpy (inside a hypothesis test)"
    else:
        coords = st.tuples(
            *[
                st.floats(float(a), float(b), allow_nan=False)
                for a, b in zip(low, high, strict=True)
            ]
        )
        strategy = st.tuples(coords, st.integers(0, max_steps))

        def violated(example: tuple[tuple[float, ...], int]) -> bool:
            _, m = evaluate(np.asarray(example[0], np.float64), example[1])
            if math.isfinite(m):
                target(-m, label="violation")
            return m < 0

        try:
            ex = find(
                strategy,
                violated,
                settings=_find_settings(budget),
                random=random.Random(seed),
            )
            found = descend(np.asarray(ex[0], np.float64), ex[1])
        except hypothesis.errors.NoSuchExample:
            found = None
        engine = "hypothesis"
    if found is None:
        return SearchOutcome(False, None, float(best[0]), best[1], count[0], engine)
    x = _simplest(found, margin_np, low, high)
    return SearchOutcome(True, x, float(margin_np(x[None])[0]), x, count[0], engine)


def search_finite(
    margin_np: Callable[[np.ndarray], np.ndarray],
    inputs: Any,
    *,
    budget: int = 200,
    seed: int = 0,
) -> SearchOutcome:
    """Search the rows of ``inputs`` (a finite domain's inputs of positive probability) for
    one with ``margin_np(x[None])[0] < 0``: hypothesis draws row indices (targeting the
    negated margin, shrinking toward the first rows), or NumPy draws them inside a
    running hypothesis test. Every counterexample is one of the domain's own inputs."""
    import hypothesis
    from hypothesis import find, target
    from hypothesis import strategies as st

    inputs = np.asarray(inputs, np.float64)
    count = [0]
    best: list[Any] = [math.inf, None]

    def evaluate(i: int) -> float:
        m = float(margin_np(inputs[i][None])[0])
        count[0] += 1
        if not math.isnan(m) and m < best[0]:
            best[0], best[1] = m, inputs[i]
        return m

    found: int | None = None
    if hypothesis.currently_in_test_context():
        rng = np.random.default_rng(seed)
        for i in rng.integers(0, len(inputs), budget):
            if evaluate(int(i)) < 0:
                found = int(i)
                break
        engine = "numpy (inside a hypothesis test)"
    else:

        def violated(i: int) -> bool:
            m = evaluate(i)
            if math.isfinite(m):
                target(-m, label="violation")
            return m < 0

        try:
            found = find(
                st.integers(0, len(inputs) - 1),
                violated,
                settings=_find_settings(budget),
                random=random.Random(seed),
            )
        except hypothesis.errors.NoSuchExample:
            found = None
        engine = "hypothesis"
    if found is None:
        return SearchOutcome(False, None, float(best[0]), best[1], count[0], engine)
    x = inputs[found]
    return SearchOutcome(True, x, float(margin_np(x[None])[0]), x, count[0], engine)
