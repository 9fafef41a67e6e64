r"""Exact quantities along training: every checkpoint, every member, every hidden unit.

:func:`trajectory` runs :func:`toylab.exact.analyze` on every member at every checkpoint
of a run (``run.checkpoint_steps``) and keeps what it finds as arrays with axes
``(member, checkpoint[, unit])`` (a :class:`Trajectory`):

* the exact accuracy and its gap to the Bayes-optimal accuracy, the number of linear
  regions of the domain box (2-D inputs), and every hidden unit's firing probability
  :math:`P(a_i > 0)`, mean :math:`E[a_i]`, second moment :math:`E[a_i^2]`, maximum and
  minimum over the domain (and where);
* on finite tasks (modular arithmetic, Boolean functions) the exhaustive table: which
  inputs each member classifies correctly at each checkpoint, and the train / test /
  whole-domain accuracy split by the member's own training set
  (:func:`toylab.exact.finite_accuracy`);
* **how far each unit's function moves** between consecutive checkpoints :math:`t < t'`,

  .. math:: d_i(t, t') = \frac{E[(a_i^{(t)} - a_i^{(t')})^2]}{\mathrm{Var}(a_i^{(t')})},

  the mean squared change relative to the unit's variance at :math:`t'` (0: the same
  function; 1: a change as large as the unit's own spread). Both checkpoints' networks
  are stacked into one (:func:`toylab.circuits.joint_network`) so one exact analysis
  gives the cross moment :math:`E[a^{(t)} a^{(t')}]`; then
  :math:`E[(a - b)^2] = E[a^2] + E[b^2] - 2E[ab]`. A unit dead at :math:`t'` has no
  variance: its distance is 0 when :math:`E[(a - b)^2]` is within the numerical error
  of 0 (the same constant function) and ``inf`` otherwise.

**Births, deaths, settling.** A unit is *dead* at a checkpoint when it is constant under
the distribution (zero variance, e.g. a ReLU that never fires), by the criterion of
:func:`toylab.circuits.matching.dead_units`. Its *birth* is the first checkpoint from
which it stays alive to the end, its *death* the first from which it stays dead
(:func:`unit_events`). It *settles* at the first checkpoint after which every
consecutive distance stays below a threshold (:func:`settle_steps`; default
:data:`SETTLE_THRESHOLD`).

**Tiers.** Every analysis has its tier and error (:mod:`toylab.tiers`); a
:class:`Trajectory` keeps them per member and checkpoint (``tier``, ``error``) and per
transition (``distance_tier``, ``distance_error``: a bound, or for quadrature an estimate,
of the error of :math:`d_i` propagated from the joint analysis' moment error ``e``:
:math:`(4e + d\,\delta)/(\mathrm{Var} - \delta)` with :math:`\delta = e(1 + 2|E b| + e)`).
:attr:`Trajectory.tier` is the weakest of all of them.

**Stored in the run.** :func:`trajectory` writes ``RUN/dynamics/trajectory.npz`` (plain
arrays, no pickle) and ``RUN/dynamics/trajectory.json`` (format, the checkpoints' SHA-256,
the members, the tiers, the archive's SHA-256), atomically. A later call reloads it
instead of recomputing when it covers the requested members and checkpoints and the
checkpoints are unchanged; anything else is recomputed. ``RUN/dynamics`` belongs to
toylab only when it holds ``dynamics.json`` (written first): toylab never writes into a
``dynamics`` directory of other files (:func:`dynamics_dir`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from toylab._errors import NotApplicable, ToylabError, fail
from toylab._progress import QUIET, Progress
from toylab._validate import check_float, check_int, is_int
from toylab.tiers import Tier, weakest

__all__ = [
    "SETTLE_THRESHOLD",
    "Trajectory",
    "dynamics_dir",
    "load_trajectory",
    "select_steps",
    "settle_steps",
    "trajectory",
    "unit_events",
]

FORMAT = "toylab-dynamics-trajectory/1"
#: the relative distance below which a unit's function counts as settled
SETTLE_THRESHOLD = 0.01
#: the array fields of a :class:`Trajectory`, as stored in ``trajectory.npz``
_ARRAYS = (
    "steps", "members", "neurons", "accuracy", "tier", "error", "numerical_error",
    "num_regions", "firing_probability", "mean", "second_moment", "max", "min", "argmax",
    "argmin", "distance", "distance_error", "distance_tier", "bayes_accuracy", "bayes_tier",
    "bayes_error", "train_accuracy", "test_accuracy", "domain_accuracy", "correct",
)  # fmt: skip


@dataclasses.dataclass(frozen=True, eq=False)
class Trajectory:
    """Exact quantities of a run at every checkpoint (see the module docstring).

    Axes: ``M`` members (``members``: their indices in the run), ``T`` checkpoints
    (``steps``), ``U`` hidden units (``neurons``: canonical addresses, every hidden layer
    in order), ``d`` input dimensions, ``N`` inputs of a finite domain.

    Attributes:
      kind: ``"plane"`` (2-D densities) or ``"finite"``.
      accuracy: ``(M, T)`` exact accuracy (``nan`` for regression tasks).
      tier, error: ``(M, T)`` each analysis' tier and error (module docstring);
        ``numerical_error`` its rounding and truncation parts (what the dead criterion
        allows for).
      num_regions: ``(M, T)`` linear regions of the domain box (``-1`` on finite domains).
      firing_probability, mean, second_moment, max, min: ``(M, T, U)``; ``argmax``,
        ``argmin``: ``(M, T, U, d)`` (an input of the domain).
      distance, distance_error: ``(M, T, U)`` the relative distance of each unit's
        function from the previous checkpoint's (``nan`` at the first checkpoint);
        ``distance_tier``: ``(M, T)`` (``""`` at the first).
      bayes_accuracy, bayes_error, bayes_tier: ``(M,)`` the Bayes-optimal accuracy of
        each member's distribution (``nan`` / ``""`` when it has none).
      train_accuracy, test_accuracy, domain_accuracy: ``(M, T)`` finite tasks (``nan``
        otherwise, and for train / test without a training mask).
      correct: ``(M, T, N)`` whether each input of a finite domain is classified
        correctly (a tie counts as wrong); ``N = 0`` on the plane.
      method, distance_method: how the numbers were obtained, in words.
    """

    kind: str
    steps: np.ndarray
    members: np.ndarray
    neurons: np.ndarray
    accuracy: np.ndarray
    tier: np.ndarray
    error: np.ndarray
    numerical_error: np.ndarray
    num_regions: np.ndarray
    firing_probability: np.ndarray
    mean: np.ndarray
    second_moment: np.ndarray
    max: np.ndarray
    min: np.ndarray
    argmax: np.ndarray
    argmin: np.ndarray
    distance: np.ndarray
    distance_error: np.ndarray
    distance_tier: np.ndarray
    bayes_accuracy: np.ndarray
    bayes_tier: np.ndarray
    bayes_error: np.ndarray
    train_accuracy: np.ndarray
    test_accuracy: np.ndarray
    domain_accuracy: np.ndarray
    correct: np.ndarray
    method: str = ""
    distance_method: str = ""

    @property
    def num_members(self) -> int:
        return len(self.members)

    @property
    def num_steps(self) -> int:
        return len(self.steps)

    @property
    def variance(self) -> np.ndarray:
        """``(M, T, U)`` :math:`\\mathrm{Var}(a_i) = E[a_i^2] - E[a_i]^2`."""
        return self.second_moment - self.mean**2

    @property
    def gap(self) -> np.ndarray:
        """``(M, T)`` Bayes-optimal accuracy minus the accuracy (``nan`` without Bayes)."""
        return self.bayes_accuracy[:, None] - self.accuracy

    @property
    def overall_tier(self) -> Tier:
        """The weakest tier of every number held (analyses, distances, Bayes)."""
        tiers = {str(t) for t in self.tier.ravel()} | {str(t) for t in self.distance_tier.ravel()}
        tiers |= {str(t) for t in self.bayes_tier.ravel()}
        return weakest(*sorted(t for t in tiers if t))

    @property
    def alive(self) -> np.ndarray:
        """``(M, T, U)``: not dead (constant) by :func:`toylab.circuits.matching.dead_units`."""
        from toylab.circuits.matching import dead_units

        err = self.numerical_error[:, :, None]
        return ~dead_units(self.mean, self.second_moment, err)

    def index_of(self, member: int) -> int:
        """The row of run member ``member``."""
        hits = np.flatnonzero(self.members == member)
        if not is_int(member) or not len(hits):
            raise fail("Trajectory.index_of", "member", member,
                       f"one of the trajectory's members {self.members.tolist()}")  # fmt: skip
        return int(hits[0])

    def births(self) -> np.ndarray:
        """``(M, U)`` the step from which each unit stays alive (``-1``: dead at the end)."""
        return np.stack([unit_events(a, self.steps)[0] for a in self.alive])

    def deaths(self) -> np.ndarray:
        """``(M, U)`` the step from which each unit stays dead (``-1``: alive at the end)."""
        return np.stack([unit_events(a, self.steps)[1] for a in self.alive])

    def settle_steps(self, threshold: float = SETTLE_THRESHOLD) -> np.ndarray:
        """``(M, U)`` the step after which each unit's function stays within ``threshold``
        of the previous checkpoint's (:func:`settle_steps`; ``-1``: not settled)."""
        return np.stack([settle_steps(d, self.steps, threshold) for d in self.distance])

    def subset(self, members: Sequence[int], steps: Sequence[int]) -> Trajectory:
        """The same trajectory restricted to run members ``members`` and ``steps`` (the
        distances stay those between consecutive checkpoints of this trajectory, so they
        are kept only where the previous checkpoint is kept too)."""
        mi = np.array([self.index_of(m) for m in members], int)
        pos = {int(s): i for i, s in enumerate(self.steps)}
        ti = np.array([pos[int(s)] for s in steps], int)
        out: dict[str, Any] = {}
        for name in _ARRAYS:
            arr = getattr(self, name)
            if name == "steps":
                arr = arr[ti]
            elif name == "members":
                arr = arr[mi]
            elif name == "neurons":
                pass
            elif arr.ndim == 1:
                arr = arr[mi]
            else:
                arr = arr[mi][:, ti]
            out[name] = arr
        consecutive = np.concatenate([[False], np.diff(ti) == 1])
        out["distance"] = np.where(consecutive[None, :, None], out["distance"], np.nan)
        out["distance_error"] = np.where(consecutive[None, :, None], out["distance_error"], np.nan)
        out["distance_tier"] = np.where(consecutive[None, :], out["distance_tier"], "")
        return dataclasses.replace(self, **out)

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {name: np.asarray(getattr(self, name)) for name in _ARRAYS}


# ----------------------------------------------------------------------------- pure helpers


def unit_events(alive: Any, steps: Any) -> tuple[np.ndarray, np.ndarray]:
    """Births and deaths from an ``(T, U)`` alive table at checkpoints ``steps`` ``(T,)``.

    ``birth[u]`` is the first step from which unit ``u`` is alive at every later
    checkpoint (``-1`` when it is dead at the last one); ``death[u]`` the first step from
    which it is dead at every later checkpoint (``-1`` when alive at the last one).

    >>> b, d = unit_events([[0, 1], [1, 1], [1, 0]], [0, 10, 100])
    >>> b.tolist(), d.tolist()
    ([10, -1], [-1, 100])
    """
    a = np.asarray(alive, bool)
    s = np.asarray(steps, np.int64)
    if a.ndim != 2 or a.shape[0] != len(s):
        raise fail("unit_events", "alive", f"shape {a.shape}", f"(T, U) with T = {len(s)}")
    return _from_end(a, s), _from_end(~a, s)


def _from_end(flag: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """The first step of each column's final run of ``True`` (``-1``: last is ``False``)."""
    num = flag.shape[0]
    out = np.full(flag.shape[1], -1, np.int64)
    if num == 0:
        return out
    # index of the last False (or -1); the final run starts right after it
    last_false = num - 1 - np.argmax(~flag[::-1], axis=0)
    last_false = np.where((~flag).any(axis=0), last_false, -1)
    start = last_false + 1
    ok = start < num
    out[ok] = steps[start[ok]]
    return out


def settle_steps(distance: Any, steps: Any, threshold: float = SETTLE_THRESHOLD) -> np.ndarray:
    """The step at which each unit settles: the first checkpoint ``c_j`` such that every
    later transition ``d(c_{k-1}, c_k)``, ``k > j``, is below ``threshold``.

    ``distance`` is ``(T, U)`` with row ``k`` the distance from checkpoint ``k - 1`` to
    ``k`` (row 0 is ignored); ``-1`` when the last transition is not below the threshold
    (``nan`` counts as not below).

    >>> settle_steps([[0.0], [0.5], [0.001], [0.002]], [0, 1, 10, 100], 0.01).tolist()
    [1]
    """
    threshold = check_float("settle_steps", "threshold", threshold, minimum=0.0)
    d = np.asarray(distance, np.float64)
    s = np.asarray(steps, np.int64)
    if d.ndim != 2 or d.shape[0] != len(s):
        raise fail("settle_steps", "distance", f"shape {d.shape}", f"(T, U) with T = {len(s)}")
    below = np.asarray(d < threshold)  # nan -> False
    below[0] = True  # no transition into the first checkpoint
    # settled from c_j: transitions j+1..T-1 all below -> below[j+1:] all True, i.e. the
    # final run of True in `below` starts at j+1 (or at 0: settled from the first)
    start = _from_end(below, np.arange(len(s), dtype=np.int64))
    out = np.full(d.shape[1], -1, np.int64)
    ok = start >= 0
    out[ok] = s[np.maximum(start[ok] - 1, 0)]
    out[ok & (start == 0)] = s[0]
    return out


def select_steps(steps: Sequence[int], max_checkpoints: int | None) -> list[int]:
    """At most ``max_checkpoints`` of ``steps`` (sorted), always the first and the last, the
    others evenly spaced by position (checkpoints are on a log scale, so this thins them
    evenly in log step)."""
    steps = sorted(int(s) for s in steps)
    if max_checkpoints is None or len(steps) <= max_checkpoints:
        return steps
    n = check_int("select_steps", "max_checkpoints", max_checkpoints, minimum=2)
    idx = np.unique(np.round(np.linspace(0, len(steps) - 1, n)).astype(int))
    return [steps[i] for i in idx]


# ----------------------------------------------------------------------------- the directory


def dynamics_dir(run: Any, *, create: bool = True) -> Path:
    """``RUN/dynamics`` (created with its marker ``dynamics.json`` when ``create``); a
    :class:`~toylab.ToylabError` when it is a file or a directory of other files (toylab
    never writes among files it did not write: :func:`toylab.runs.io.owned_dir`)."""
    from toylab.runs.io import owned_dir

    return owned_dir(Path(run.path) / "dynamics", "dynamics.json",
                     "the training-dynamics report", create=create,
                     stamp={"run": str(run.path)})  # fmt: skip


def _checkpoint_hashes(run: Any, steps: Sequence[int]) -> dict[str, str]:
    from toylab.runs import _ckpt_rel
    from toylab.runs.io import sha256_file

    files = (getattr(run, "manifest", None) or {}).get("files") or {}
    out = {}
    for s in steps:
        rel = _ckpt_rel(int(s))
        out[rel] = files.get(rel) or sha256_file(Path(run.path) / rel)
    return out


def _paths(run: Any) -> tuple[Path, Path]:
    d = Path(run.path) / "dynamics"
    return d / "trajectory.npz", d / "trajectory.json"


def _save(run: Any, traj: Trajectory) -> None:
    import toylab
    from toylab.runs.io import atomic_write_bytes, atomic_write_json

    dynamics_dir(run)
    npz, index = _paths(run)
    buf = io.BytesIO()
    np.savez(buf, **traj.to_arrays())  # type: ignore[arg-type]
    data = buf.getvalue()
    atomic_write_bytes(npz, data)
    atomic_write_json(index, {
        "format": FORMAT,
        "written_by": f"toylab {toylab.__version__}",
        "kind": traj.kind,
        "steps": traj.steps.tolist(),
        "members": traj.members.tolist(),
        "neurons": traj.neurons.tolist(),
        "checkpoints": _checkpoint_hashes(run, traj.steps.tolist()),
        "trajectory_sha256": hashlib.sha256(data).hexdigest(),
        "tier": traj.overall_tier,
        "tiers": {
            "analysis": sorted({str(t) for t in traj.tier.ravel()}),
            "distance": sorted({str(t) for t in traj.distance_tier.ravel() if t}),
            "bayes": sorted({str(t) for t in traj.bayes_tier.ravel() if t}),
        },
        "method": traj.method,
        "distance_method": traj.distance_method,
    })  # fmt: skip


def load_trajectory(
    run: Any, *, members: Sequence[int] | None = None, steps: Sequence[int] | None = None
) -> Trajectory | None:
    """The trajectory stored in the run, restricted to ``members`` and ``steps`` (default:
    all the run's), or ``None`` when none is stored, it does not cover them, a checkpoint
    changed since it was computed, or the files are damaged. ``steps`` must be
    consecutive checkpoints of the stored trajectory (else the distances between them were
    not computed: ``None``)."""
    npz, index = _paths(run)
    if not (npz.exists() and index.exists()):
        return None
    members = list(range(run.num_members)) if members is None else list(members)
    steps = list(run.checkpoint_steps) if steps is None else list(steps)
    try:
        meta = json.loads(index.read_text(encoding="utf-8"))
        if meta.get("format") != FORMAT:
            return None
        data = npz.read_bytes()
        if hashlib.sha256(data).hexdigest() != meta.get("trajectory_sha256"):
            return None
        if not set(members) <= set(meta["members"]) or not set(steps) <= set(meta["steps"]):
            return None
        where = sorted(meta["steps"].index(s) for s in steps)
        if where != list(range(where[0], where[0] + len(where))):
            return None  # a checkpoint in between was dropped: its distances are missing
        recorded = meta["checkpoints"]
        current = _checkpoint_hashes(run, steps)
        if any(recorded.get(rel) != sha for rel, sha in current.items()):
            return None
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            arrays = {name: z[name] for name in _ARRAYS}
        traj = Trajectory(kind=str(meta["kind"]), method=str(meta.get("method", "")),
                          distance_method=str(meta.get("distance_method", "")), **arrays)  # fmt: skip
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if traj.members.tolist() == members and traj.steps.tolist() == steps:
        return traj
    return traj.subset(members, steps)


# ----------------------------------------------------------------------------- computing


def _check_selection(run: Any, members: Any, steps: Any) -> tuple[list[int], list[int]]:
    where = "trajectory"
    all_steps = list(run.checkpoint_steps)
    if not all_steps:
        raise ToylabError(f"{where}: run {str(run.path)!r} has no checkpoints.")
    if members is None:
        members = list(range(run.num_members))
    else:
        members = list(members)
        for m in members:
            if not is_int(m) or not 0 <= m < run.num_members:
                raise fail(where, "members", members,
                           f"member indices in 0..{run.num_members - 1}")  # fmt: skip
        if not members or len(set(members)) != len(members):
            raise fail(where, "members", members, "distinct member indices, at least one")
        members = [int(m) for m in members]
    if steps is None:
        steps = all_steps
    else:
        steps = sorted({int(s) if is_int(s) else s for s in steps})
        bad = [s for s in steps if s not in all_steps]
        if bad or not steps:
            raise fail(where, "steps", bad or steps, f"checkpoint steps of the run {all_steps}")
    return members, [int(s) for s in steps]


def _bayes(dist: Any) -> tuple[float, str, float]:
    if int(getattr(dist, "num_classes", 0)) < 2:
        return float("nan"), "", float("nan")
    try:
        b = dist.bayes()
    except ToylabError:
        return float("nan"), "", float("nan")
    return float(b.accuracy), str(b.tier), float(b.error)


def _numerical(res: Any) -> float:
    return max(float(res.errors.get("rounding", 0.0)), float(res.errors.get("truncation", 0.0)))


def _distance(prev: Any, cur: Any, dist: Any, layers: list[str]) -> tuple[Any, Any, str, str]:
    """Relative distance of every hidden unit from ``prev``'s to ``cur``'s function."""
    from toylab.circuits.distance import joint_network
    from toylab.circuits.matching import dead_units
    from toylab.exact import analyze

    joint = joint_network(prev, cur, where="trajectory")
    res = analyze(joint.network, dist)
    e, num = float(res.error), _numerical(res)
    dist_out, err_out = [], []
    for key in layers:
        mom = res.moments[key]
        ca, cb = joint.columns["a"][key], joint.columns["b"][key]
        s = mom.second_moment
        mean_b, sbb = mom.mean[cb], s[cb, cb]
        msq = np.maximum(s[ca, ca] + sbb - 2.0 * s[ca, cb], 0.0)
        var = sbb - mean_b**2
        dead = dead_units(mean_b, sbb, num)
        delta = e * (1.0 + 2.0 * np.abs(mean_b) + e)
        safe = np.where(dead, 1.0, var)
        d = np.where(dead, np.where(msq <= 4.0 * e, 0.0, np.inf), msq / safe)
        room = var - delta
        err = np.where(
            dead, 0.0, np.where(room > 0, (4.0 * e + d * delta) / np.where(room > 0, room, 1.0),
                                np.inf),
        )  # fmt: skip
        dist_out.append(d)
        err_out.append(err)
    return np.concatenate(dist_out), np.concatenate(err_out), str(res.tier), res.method


def trajectory(
    run: Any,
    *,
    members: Sequence[int] | None = None,
    steps: Sequence[int] | None = None,
    progress: Progress = QUIET,
    store: bool = True,
) -> Trajectory:
    """Every exact quantity of ``run`` (:func:`toylab.runs.load_run`) at every checkpoint
    ``steps`` (default: all) of every member in ``members`` (default: all); see the module
    docstring. With ``store`` the result is reloaded from ``RUN/dynamics`` when stored
    there and valid, and stored there when computed.

    Raises :class:`~toylab.NotApplicable` where :func:`toylab.exact.analyze` does not
    apply (inputs of more than two dimensions, smooth activations on the plane, regression
    tasks without a finite domain).
    """
    members, steps = _check_selection(run, members, steps)
    if store:
        dynamics_dir(run, create=False)  # refuse early when the directory is someone else's
        stored = load_trajectory(run, members=members, steps=steps)
        if stored is not None:
            progress.note(f"exact quantities: reloaded from {_paths(run)[0]}")
            return stored
    traj = _compute(run, members, steps, progress)
    if store:
        _save(run, traj)
    return traj


def _compute(run: Any, members: list[int], steps: list[int], progress: Progress) -> Trajectory:
    from toylab.exact import analyze, correct_predictions, finite_accuracy

    num_m, num_t = len(members), len(steps)
    dists = [run.dist_of(m) for m in members]
    kind = "finite" if getattr(dists[0], "kind", None) == "finite" else "plane"
    train_data = getattr(getattr(run, "ensemble", None), "train_data", None)
    cfg_train = getattr(getattr(run, "config", None), "train", None)
    full = (
        kind == "finite" and getattr(cfg_train, "data", None) == "full" and train_data is not None
    )
    bayes_cache: dict[Any, tuple[float, str, float]] = {}
    bayes = []
    for d in dists:
        if d not in bayes_cache:
            bayes_cache[d] = _bayes(d)
        bayes.append(bayes_cache[d])

    arrays: dict[str, Any] = {}
    layers: list[str] = []
    neurons: list[str] = []
    prev_models: list[Any] = []
    methods: set[str] = set()
    dmethods: set[str] = set()

    def alloc(shape: tuple[int, ...], fill: Any = np.nan, dtype: Any = np.float64) -> Any:
        return np.full(shape, fill, dtype)

    for t, step in enumerate(progress.iterate(steps, "exact analyses", unit="checkpoint")):
        models = run.models(step)
        cur_models = []
        for i, m in enumerate(members):
            model = models[m]
            cur_models.append(model)
            try:
                res = analyze(model, dists[i], keep_table=kind == "finite")
            except NotApplicable as err:
                raise NotApplicable(
                    f"trajectory: no exact analysis of member {m} at step {step} ({err})"
                ) from None
            methods.add(res.method)
            if not layers:
                widths = res.network.widths
                layers = [k for k in widths if k.startswith("hidden_") and "." not in k]
                neurons = [f"{k}:{u}" for k in layers for u in range(widths[k])]
                num_u, dim = len(neurons), res.network.input_dim
                size = int(dists[0].domain.size) if kind == "finite" else 0
                for name in ("firing_probability", "mean", "second_moment", "max", "min",
                             "distance", "distance_error"):  # fmt: skip
                    arrays[name] = alloc((num_m, num_t, num_u))
                for name in ("argmax", "argmin"):
                    arrays[name] = alloc((num_m, num_t, num_u, dim))
                for name in ("accuracy", "error", "numerical_error", "train_accuracy",
                             "test_accuracy", "domain_accuracy"):  # fmt: skip
                    arrays[name] = alloc((num_m, num_t))
                arrays["num_regions"] = alloc((num_m, num_t), -1, np.int64)
                arrays["tier"] = alloc((num_m, num_t), "", "<U9")
                arrays["distance_tier"] = alloc((num_m, num_t), "", "<U9")
                arrays["correct"] = alloc((num_m, num_t, size), False, bool)
            arrays["accuracy"][i, t] = res.accuracy
            arrays["tier"][i, t] = res.tier
            arrays["error"][i, t] = res.error
            arrays["numerical_error"][i, t] = _numerical(res)
            if res.kind == "plane":
                arrays["num_regions"][i, t] = res.geometry.num_regions
            cols = []
            for key in layers:
                mom, ext = res.moments[key], res.extrema(key)
                cols.append((mom.firing_probability, mom.mean, np.diag(mom.second_moment),
                             ext.max, ext.min, ext.argmax, ext.argmin))  # fmt: skip
            for q, name in enumerate(("firing_probability", "mean", "second_moment", "max",
                                      "min", "argmax", "argmin")):  # fmt: skip
                arrays[name][i, t] = np.concatenate([np.asarray(c[q], np.float64) for c in cols])
            if kind == "finite" and int(getattr(dists[i], "num_classes", 0)) > 0:
                labels = np.asarray(dists[i].domain.labels)
                arrays["correct"][i, t] = correct_predictions(res.table["output"], labels)
                mask = np.asarray(train_data[m]) if full and train_data is not None else None
                acc = finite_accuracy(model, dists[i], mask)
                for name in ("train", "test", "domain"):
                    v = acc[name]
                    arrays[f"{name}_accuracy"][i, t] = np.nan if v is None else v
            if t > 0:
                d, derr, dtier, dmethod = _distance(prev_models[i], model, dists[i], layers)
                arrays["distance"][i, t] = d
                arrays["distance_error"][i, t] = derr
                arrays["distance_tier"][i, t] = dtier
                dmethods.add(dmethod)
        prev_models = cur_models
    method = "toylab.exact.analyze at every checkpoint: " + "; ".join(sorted(methods)[:3])
    if len(methods) > 3:
        method += f"; ... ({len(methods)} distinct)"
    dmethod = (
        "E[(a_t - a_t')^2] / Var(a_t') from the exact moments of the joint network of "
        "consecutive checkpoints (toylab.circuits.joint_network + toylab.exact.analyze)"
    )
    if dmethods:
        dmethod += ": " + sorted(dmethods)[0]
    return Trajectory(
        kind=kind,
        steps=np.asarray(steps, np.int64),
        members=np.asarray(members, np.int64),
        neurons=np.asarray(neurons, dtype=str),
        bayes_accuracy=np.array([b[0] for b in bayes]),
        bayes_tier=np.array([b[1] for b in bayes], dtype="<U9"),
        bayes_error=np.array([b[2] for b in bayes]),
        method=method,
        distance_method=dmethod,
        **arrays,
    )
