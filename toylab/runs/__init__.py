"""Run directories: an experiment on disk.

A run directory holds::

    config.toml             the experiment config, as resolved (defaults filled in)
    manifest.json           format, status, versions, platform, seeds, members, git hash, times,
                            the SHA-256 of every array file and which file holds the final
                            parameters
    metrics.jsonl           one JSON record per logged step (per-member lists; strict JSON:
                            a non-finite value, e.g. the loss of a diverged member, is null)
    checkpoints/step_XXXXXXXX.npz   parameters of every member at each checkpoint step
    state.npz               the latest full training state (parameters, optimizer, step)

The manifest's ``members`` table names every member (seed, swept values, label) and
``programs`` says how the members were compiled: one program, or, for a sweep over
shapes (``model.hidden``, ``distribution.num_features``, ...), one per shape group.
**A run of several shape groups** stores each array file as one archive holding every
group: its leaves are keyed ``[g]...`` (``params[g]``, ``opt_state[g]``, ... in
``state.npz``), group ``g`` training the members the manifest's ``programs[g]`` lists.
A run of one program (every run written before shape groups existed) keeps the plain
layout, so older runs load unchanged.
    report/                 the report written by ``toylab demo`` / :func:`toylab.report.write_report`

Every file is written atomically (:mod:`toylab.runs.io`); ``state.npz`` is
written last at every event, so a run killed at any moment resumes from a
consistent state (:func:`resume_run`) and ends with the same parameters as an
uninterrupted run. Nothing is pickled: loading a run never executes code.

**What is loaded is what was trained.** A complete run's parameters come from the file
its manifest names (``final_params``: the checkpoint at the last step) and every array
file is checked against the SHA-256 the manifest recorded; a missing or altered file is a
:class:`~toylab.CorruptRun` error, never a silent fallback to other (e.g. initial)
parameters.

**A directory toylab did not write is never touched.** :func:`start_run` trains into a
new or empty directory; with ``overwrite=True`` it replaces only a directory whose
``manifest.json`` says it is a toylab run and that holds nothing toylab did not write.
The new run is trained in a hidden sibling (``.NAME.new``) and swapped in only once it is
complete; an interrupted overwrite is finished by :func:`resume_run` on ``NAME``.
Everything in the config is validated (including whether the model, the loss and the
data mode suit the distribution, and whether one step can fit in memory) before
anything is written.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import tomli_w

from toylab._errors import CorruptRun, ToylabError, is_out_of_memory
from toylab._progress import QUIET, Progress
from toylab.config import ExperimentConfig, load_config
from toylab.runs.io import (
    atomic_write_json,
    atomic_write_text,
    load_tree,
    save_tree,
    sha256_file,
    strict_json,
)
from toylab.train import (
    Ensemble,
    EnsembleGroups,
    TrainResult,
    TrainState,
    divergence_messages,
    init_members,
)
from toylab.train import train as _train

__all__ = [
    "FORMAT",
    "Run",
    "is_run_dir",
    "load_run",
    "pending_overwrite",
    "resume_run",
    "start_run",
]

FORMAT = "toylab-run/1"
#: What toylab writes at the top of a run directory (anything else is the user's).
RUN_ENTRIES = frozenset(
    {"config.toml", "manifest.json", "metrics.jsonl", "state.npz", "checkpoints", "report",
     "compare", "atlas"}
)  # fmt: skip
#: Report directories that are toylab's only when they hold their marker file (written
#: before anything else): a directory of the same name without it is the user's.
MARKED_ENTRIES = {"dynamics": "dynamics.json", "universality": "universality.json"}


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def _git_hash() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).resolve().parent,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def _versions() -> dict[str, str]:
    import flax
    import jax
    import optax

    import toylab

    return {
        "toylab": toylab.__version__,
        "jax": jax.__version__,
        "flax": flax.__version__,
        "optax": optax.__version__,
        "numpy": np.__version__,
        "python": sys.version.split()[0],
    }


# ---------------------------------------------------------------- metrics (strict JSON)


def _jsonable(rec: dict[str, Any]) -> dict[str, Any]:
    return {k: (np.asarray(v).tolist() if not isinstance(v, int) else v) for k, v in rec.items()}


def _write_metrics(run_dir: Path, records: list[dict[str, Any]]) -> None:
    text = "".join(
        json.dumps(strict_json(_jsonable(r)), sort_keys=True, allow_nan=False) + "\n"
        for r in records
    )
    atomic_write_text(run_dir / "metrics.jsonl", text)


def _metric_array(value: Any) -> np.ndarray:
    """A metric as a float array; ``null`` (a non-finite value) reads back as NaN."""
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return np.asarray(value)


def _read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        return []
    out = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        try:
            rec = json.loads(line)
            step = int(rec["step"])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            raise CorruptRun(
                f"{str(path)!r} line {i + 1} is not a valid metrics record; the file is corrupted."
            ) from None
        out.append({k: (step if k == "step" else _metric_array(v)) for k, v in rec.items()})
    return out


# ---------------------------------------------------------------- files and checksums


def _ckpt_rel(step: int) -> str:
    return f"checkpoints/step_{step:08d}.npz"


def _ckpt_path(run_dir: Path, step: int) -> Path:
    return run_dir / _ckpt_rel(step)


def _state_tree(state: TrainState) -> dict[str, Any]:
    return {f.name: getattr(state, f.name) for f in dataclasses.fields(state)}


def _verify(run_dir: Path, manifest: dict[str, Any], rel: str) -> str:
    """Check ``rel`` against the manifest's SHA-256; return how it was verified."""
    path = run_dir / rel
    if not path.exists():
        raise CorruptRun(
            f"{str(path)!r} is missing; the run directory {str(run_dir)!r} is incomplete. "
            "Restore the file from a copy of the run, or train the run again "
            "('toylab train CONFIG --out DIR --overwrite')."
        )
    files = manifest.get("files")
    if not isinstance(files, dict) or rel not in files:
        return "no checksum recorded"
    if sha256_file(path) != files[rel]:
        raise CorruptRun(
            f"{str(path)!r} does not match the SHA-256 recorded in manifest.json: it was "
            "altered or damaged after the run wrote it. Restore it from a copy of the run, or "
            "train the run again ('toylab train CONFIG --out DIR --overwrite')."
        )
    return "SHA-256 verified"


@dataclasses.dataclass
class _Writer:
    run_dir: Path
    config: ExperimentConfig
    manifest: dict[str, Any]
    records: list[dict[str, Any]]

    def __call__(
        self, ensemble: Ensemble | EnsembleGroups, state: TrainState, rec: Any, is_ckpt: bool
    ) -> None:
        step = int(state.step)
        files = self.manifest.setdefault("files", {})
        if is_ckpt:
            files[_ckpt_rel(step)] = save_tree(_ckpt_path(self.run_dir, step), state.params)
        if rec is not None:
            self.records.append(rec)
            _write_metrics(self.run_dir, self.records)
        files["state.npz"] = save_tree(self.run_dir / "state.npz", _state_tree(state))
        self.manifest["step"] = step
        self.manifest["divergences"] = divergence_messages(ensemble, state)
        self.manifest["diverged_members"] = [
            int(m) for m in np.flatnonzero(ensemble.diverged_at(state) >= 0)
        ]
        atomic_write_json(self.run_dir / "manifest.json", self.manifest)


def _plain(value: Any) -> Any:
    return [_plain(v) for v in value] if isinstance(value, tuple) else value


def _member_table(config: ExperimentConfig) -> list[dict[str, Any]]:
    """Members in training order: every seed at every sweep grid point (as in
    :func:`toylab.train.init_members`), with their swept values and labels. A one-axis
    sweep also records ``sweep_value`` (as runs always have)."""
    out = []
    for mem in config.members():
        row: dict[str, Any] = {"member": mem.index, "seed": mem.seed, "label": mem.label}
        if config.sweep is not None:
            row["values"] = {
                a.param: _plain(v) for a, v in zip(config.sweep.axes, mem.point, strict=True)
            }
            if len(config.sweep.axes) == 1:
                row["sweep_value"] = _plain(mem.point[0])
        else:
            row["sweep_value"] = None
        out.append(row)
    return out


def _programs(ensemble: Ensemble | EnsembleGroups) -> list[dict[str, Any]]:
    """The compiled programs of a run: their members, and what a program varies per member."""
    if isinstance(ensemble, EnsembleGroups):
        return [
            {"members": list(idx), "description": line, "per_member_distribution_fields":
             list(g.dist_fields)}
            for idx, line, g in zip(ensemble.indices, ensemble.describe(), ensemble.groups,
                                    strict=True)
        ]  # fmt: skip
    return [
        {"members": list(range(ensemble.num_members)), "description": "all members",
         "per_member_distribution_fields": list(ensemble.dist_fields)}
    ]  # fmt: skip


# ---------------------------------------------------------------- directory safety


def is_run_dir(path: str | Path) -> bool:
    """Whether ``path`` is a directory whose ``manifest.json`` says it is a toylab run."""
    path = Path(path)
    try:
        manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    fmt = manifest.get("format") if isinstance(manifest, dict) else None
    return isinstance(fmt, str) and fmt.startswith("toylab-run/")


def _foreign_entries(path: Path) -> list[str]:
    """Entries of a run directory that toylab did not write (its temporary files are its own)."""
    out = []
    for p in sorted(path.iterdir()):
        if p.name in RUN_ENTRIES or (p.name.startswith(".") and p.name.endswith(".tmp")):
            continue
        if p.name in MARKED_ENTRIES and (p / MARKED_ENTRIES[p.name]).is_file():
            continue
        out.append(p.name)
    ck = path / "checkpoints"
    if ck.is_dir():
        for p in sorted(ck.iterdir()):
            if not (p.name.startswith("step_") and p.suffix == ".npz") and not (
                p.name.startswith(".") and p.name.endswith(".tmp")
            ):
                out.append(f"checkpoints/{p.name}")
    return out


def _is_empty_dir(path: Path) -> bool:
    return path.is_dir() and not any(path.iterdir())


def _check_writable_target(run_dir: Path) -> None:
    """``run_dir`` can be created: it is not a file and its nearest existing ancestor is a
    writable directory."""
    if run_dir.exists() and not run_dir.is_dir():
        raise ToylabError(
            f"--out {str(run_dir)!r} is a file, not a directory. Choose a directory path "
            "for the run (it is created if missing)."
        )
    parent = run_dir.parent if not run_dir.exists() else run_dir
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise ToylabError(
            f"--out {str(run_dir)!r} cannot be created: {str(parent)!r} is a file, not a "
            "directory. Choose another path."
        )
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ToylabError(
            f"--out {str(run_dir)!r} cannot be created: {str(parent)!r} is not writable "
            "by you. Choose a directory you can write to."
        )


def _removable_run(path: Path, what: str) -> None:
    """Refuse unless ``path`` is a toylab run holding only what toylab wrote."""
    if not is_run_dir(path):
        raise ToylabError(
            f"{what} {str(path)!r} exists and is not a toylab run (it has no toylab "
            "manifest.json). toylab never deletes a directory it did not write: choose "
            "another --out, or move that directory away yourself."
        )
    foreign = _foreign_entries(path)
    if foreign:
        shown = ", ".join(foreign[:5]) + (" ..." if len(foreign) > 5 else "")
        raise ToylabError(
            f"{what} {str(path)!r} is a toylab run but also holds files toylab did not "
            f"write ({shown}). --overwrite replaces the whole directory: move those files "
            "elsewhere first, or choose another --out."
        )


def _sibling(final_dir: Path, tag: str) -> Path:
    return final_dir.with_name(f".{final_dir.name}.{tag}")


def pending_overwrite(run_dir: str | Path) -> Path | None:
    """The hidden directory of an interrupted ``--overwrite`` of ``run_dir``, if any."""
    new = _sibling(Path(run_dir), "new")
    return new if is_run_dir(new) else None


def _remove_run(path: Path) -> None:
    """Delete a directory toylab wrote (a run, or an empty directory); anything else stays."""
    if _is_empty_dir(path):
        path.rmdir()
        return
    _removable_run(path, "directory")
    shutil.rmtree(path)


def _swap_in(final_dir: Path, new_dir: Path) -> None:
    """Replace ``final_dir`` by the complete run ``new_dir``; safe to repeat after a kill."""
    old = _sibling(final_dir, "old")
    if new_dir.exists():
        if old.exists():
            _remove_run(old)
        if final_dir.exists():
            final_dir.rename(old)
        new_dir.rename(final_dir)
    if old.exists():
        _remove_run(old)


# ---------------------------------------------------------------- validation


def _memory_limit() -> tuple[int | None, str]:
    """Bytes available to one computation on the default device, and what they are."""
    import jax

    dev = jax.devices()[0]
    try:
        stats = dev.memory_stats() or {}
    except Exception:  # noqa: BLE001 - backends without memory statistics
        stats = {}
    if stats.get("bytes_limit"):
        return int(stats["bytes_limit"]), f"{dev.platform} device memory"
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"), "physical memory"
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return None, ""


def _check_memory(config: ExperimentConfig, members: Any) -> None:
    """Refuse a config whose training step or evaluation cannot fit in memory.

    A lower bound, so it never refuses a config that fits: every member keeps at least
    its inputs, each hidden layer's pre- and post-activation and its outputs for every
    example of a batch (float32), to differentiate the loss.
    """
    num_members = len(members)
    dist = members[0].dist

    def units(m: Any) -> int:
        d = m.dist
        return d.dim + 2 * sum(m.model.hidden) + (d.num_classes if d.num_classes > 0 else d.dim)

    per_example = 4 * sum(units(m) for m in members)
    t = config.train
    n_eval = dist.domain.size if dist.kind == "finite" else t.num_eval_samples
    domain = f"the finite domain ({n_eval} inputs)"
    needs = {  # bytes each use needs at least, by what sets it
        domain if dist.kind == "finite" else f"[train] num_eval_samples = {n_eval}": per_example
        * n_eval
    }
    if t.data != "full":
        needs[f"[train] batch_size = {t.batch_size}"] = per_example * t.batch_size
    if t.data == "fixed":
        needs[f"[train] num_train = {t.num_train}"] = 4 * num_members * (dist.dim + 1) * t.num_train
    field, need = max(needs.items(), key=lambda kv: kv[1])
    limit, what = _memory_limit()
    if limit is not None and need > limit:
        raise ToylabError(
            f"{field} needs at least {need / 2**30:.1f} GiB per step for "
            f"{num_members} member(s), more than the {limit / 2**30:.1f} GiB of {what}. "
            "Lower batch_size (or num_eval_samples), use fewer seeds or sweep values, or a "
            "smaller [model] hidden."
        )


def _validate(config: ExperimentConfig) -> tuple[ExperimentConfig, Ensemble | EnsembleGroups]:
    """Everything that can be checked before a file is written; returns the resolved config
    and its (abstract) ensemble."""
    config = config.resolved()
    # model x distribution, data mode, loss x distribution of every member (init_members
    # builds every member's shapes and checks its loss; no compilation)
    ensemble, _ = init_members(
        _dist_arg(config), config.model, config.train, config.seeds, config.sweep, abstract=True
    )
    _check_memory(config, config.members())
    return config, ensemble


def _dist_arg(config: ExperimentConfig) -> Any:
    """What :func:`toylab.train.train` gets as ``dist``: the distribution, or under a
    distribution sweep its config (the members fill in the swept parameters)."""
    return config.distribution if config.sweeps_distribution else config.make_distribution()


def _distinct_dists(config: ExperimentConfig) -> list[Any]:
    out: list[Any] = []
    for m in config.members():
        if m.dist not in out:
            out.append(m.dist)
    return out


def _bayes_first(dist: Any, progress: Progress) -> None:
    """Compute the Bayes-optimal accuracy (cached per distribution) with a status line, so
    training's first evaluation does not sit silent through a long quadrature."""
    if getattr(dist, "num_classes", 0) < 2:
        return
    with progress.task(f"Bayes-optimal accuracy of {type(dist).__name__}"):
        try:
            dist.bayes()
        except ToylabError:  # no Bayes accuracy here; training reports none either
            pass


# ---------------------------------------------------------------- start, resume, load


def start_run(
    config: ExperimentConfig,
    run_dir: str | Path,
    *,
    progress: bool | Progress = False,
    overwrite: bool = False,
) -> Run:
    """Train ``config`` into a new run directory ``run_dir`` and return the loaded run.

    ``run_dir`` must be missing or empty, unless ``overwrite=True``: then it may be a
    complete or interrupted toylab run (nothing else, see the module docstring), which the
    new run replaces once it is complete. The config is validated first; nothing is
    written for an invalid one. ``progress``: a :class:`toylab._progress.Progress` (or
    ``True`` for progress on stderr).
    """
    prog = _as_progress(progress)
    final_dir = Path(run_dir)
    _check_writable_target(final_dir)
    replace = final_dir.exists() and not _is_empty_dir(final_dir)
    if replace:
        if not overwrite:
            if is_run_dir(final_dir):
                raise ToylabError(
                    f"--out {str(final_dir)!r} already exists and is not empty (it holds a "
                    f"toylab run). Use --resume {str(final_dir)!r} to continue that run, "
                    "--overwrite to replace it, or choose a new directory."
                )
            raise ToylabError(
                f"--out {str(final_dir)!r} already exists and is not empty (and is not a "
                "toylab run). Choose a new directory."
            )
        _removable_run(final_dir, "--out")
    config, ensemble = _validate(config)
    programs = _programs(ensemble)
    prog.note(f"training {ensemble.num_members} member(s) in {len(programs)} compiled program(s)")
    if len(programs) > 1:
        for k, p in enumerate(programs):
            prog.note(f"  program {k}: {p['description']}")
    for d in _distinct_dists(config):
        _bayes_first(d, prog)
    work_dir = _sibling(final_dir, "new") if replace else final_dir
    if replace and work_dir.exists():  # a stale interrupted overwrite, replaced by this one
        _remove_run(work_dir)
    created = not work_dir.exists()
    work_dir.mkdir(parents=True, exist_ok=True)
    import jax

    manifest = {
        "format": FORMAT,
        "status": "running",
        "name": config.name,
        "versions": _versions(),
        "platform": {
            "system": platform.platform(),
            "machine": platform.machine(),
            "jax_backend": jax.default_backend(),
        },
        "toylab_git": _git_hash(),  # the commit of toylab itself (not the project's)
        "seeds": list(config.seeds),
        "members": _member_table(config),
        "programs": programs,
        "start_time": _now(),
        "end_time": None,
        "step": 0,
        "num_steps": config.train.num_steps,
        "divergences": [],
        "diverged_members": [],
        "files": {},
        "final_params": None,
    }
    if replace:
        manifest["replaces"] = final_dir.name
    # the manifest first: from here on the directory is recognisably a toylab run
    atomic_write_json(work_dir / "manifest.json", manifest)
    atomic_write_text(work_dir / "config.toml", tomli_w.dumps(config.to_dict()))
    try:
        _run_training(work_dir, config, manifest, [], None, prog)
    except Exception as e:
        if manifest["step"] == 0:  # nothing trained: leave no half-made run behind
            shutil.rmtree(work_dir)
            if not created:  # the user's empty directory stays
                work_dir.mkdir()
            where = ""
        else:
            where = (
                f" The incomplete run is in {str(work_dir)!r}; after fixing the cause, continue "
                f"it with 'toylab train --resume {final_dir}' or replace it with "
                "'toylab train CONFIG --out DIR --overwrite'."
            )
        if is_out_of_memory(e):
            raise ToylabError(
                f"training ran out of memory ({str(e).splitlines()[0][:160]}). Lower [train] "
                "batch_size, num_eval_samples or num_train, use fewer seeds or sweep values, or "
                "a smaller [model] hidden." + where
            ) from None
        if isinstance(e, ToylabError):
            raise ToylabError(f"{e}{where}") from None
        raise
    if replace:
        _swap_in(final_dir, work_dir)
    return load_run(final_dir)


def _as_progress(progress: bool | Progress) -> Progress:
    if isinstance(progress, Progress):
        return progress
    return Progress(True) if progress else QUIET


def _run_training(
    run_dir: Path,
    config: ExperimentConfig,
    manifest: dict[str, Any],
    records: list[dict[str, Any]],
    state: TrainState | None,
    progress: Progress,
) -> TrainResult:
    writer = _Writer(run_dir, config, manifest, records)
    result = _train(
        _dist_arg(config),
        config.model,
        config.train,
        config.seeds,
        config.sweep,
        state=state,
        callback=writer,
        progress=progress.enabled,
    )
    final = _ckpt_rel(config.train.num_steps)
    manifest["final_params"] = final
    _verify(run_dir, manifest, final)
    manifest["status"] = "complete"
    manifest["end_time"] = _now()
    atomic_write_json(run_dir / "manifest.json", manifest)
    return result


def _read_manifest(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "manifest.json"
    if run_dir.exists() and not run_dir.is_dir():
        raise ToylabError(f"{str(run_dir)!r} is a file, not a run directory. Check the path.")
    if not run_dir.is_dir():
        raise ToylabError(f"run directory {str(run_dir)!r} does not exist. Check the path.")
    if not path.exists():
        raise ToylabError(
            f"{str(run_dir)!r} is not a toylab run directory (no manifest.json). Create one "
            "with 'toylab train CONFIG --out DIR'."
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise CorruptRun(f"{str(path)!r} is corrupted (not valid JSON).") from None
    fmt = manifest.get("format") if isinstance(manifest, dict) else None
    if fmt != FORMAT:
        raise CorruptRun(
            f"{str(run_dir)!r} has run format {fmt!r}, but this toylab reads {FORMAT!r}. "
            "Load it with the toylab version that wrote it (see manifest.json) or retrain."
        )
    return manifest


def resume_run(run_dir: str | Path, *, progress: bool | Progress = False) -> Run:
    """Continue an interrupted run from its last saved state (a finished run is returned as
    is). An interrupted ``overwrite`` of ``run_dir`` (see :func:`start_run`) is continued
    and then swapped in."""
    prog = _as_progress(progress)
    final_dir = Path(run_dir)
    new_dir = _sibling(final_dir, "new")
    if is_run_dir(new_dir):
        prog.note(f"continuing the interrupted --overwrite of {final_dir} (in {new_dir})")
        if _read_manifest(new_dir).get("status") != "complete":
            _resume_in_place(new_dir, prog)
        _swap_in(final_dir, new_dir)
        return load_run(final_dir)
    if not final_dir.exists() and _sibling(final_dir, "old").exists():
        raise CorruptRun(  # pragma: no cover - needs a kill between two renames
            f"{str(final_dir)!r} is missing but {str(_sibling(final_dir, 'old'))!r} holds "
            "the run it was replacing: rename that directory back to continue."
        )
    if _sibling(final_dir, "old").exists() and is_run_dir(final_dir):
        _remove_run(_sibling(final_dir, "old"))  # killed after the swap, before the cleanup
    manifest = _read_manifest(final_dir)
    if manifest.get("status") == "complete":
        prog.note(f"{final_dir} is already complete; nothing to resume")
        return load_run(final_dir)
    _resume_in_place(final_dir, prog)
    return load_run(final_dir)


def _resume_in_place(run_dir: Path, progress: Progress) -> None:
    manifest = _read_manifest(run_dir)
    config, _ = _validate(load_config(run_dir / "config.toml"))
    for d in _distinct_dists(config):
        _bayes_first(d, progress)
    ensemble, template = init_members(
        _dist_arg(config), config.model, config.train, config.seeds, config.sweep, abstract=True
    )
    state: TrainState | None = None
    if (run_dir / "state.npz").exists():
        state = TrainState(**load_tree(run_dir / "state.npz", _state_tree(template)))
    step = 0 if state is None else int(state.step)
    records = [r for r in _read_metrics(run_dir) if r["step"] <= step] if state is not None else []
    # the checksums of what is on disk up to the resumed step (a kill can come between a
    # file and the manifest that records it); later checkpoints are rewritten
    files = {k: v for k, v in manifest.get("files", {}).items() if k != "state.npz"}
    for p in sorted((run_dir / "checkpoints").glob("step_*.npz")):
        s = int(p.stem.split("_")[1])
        rel = _ckpt_rel(s)
        if s <= step and rel not in files:
            files[rel] = sha256_file(p)
        elif s > step:
            files.pop(rel, None)
    manifest["files"] = files
    manifest["resumed"] = [*manifest.get("resumed", []), {"at_step": step, "time": _now()}]
    _run_training(run_dir, config, manifest, records, state, progress)


@dataclasses.dataclass(frozen=True)
class Run:
    """A run loaded from disk: config, manifest, metrics and parameters per checkpoint.

    ``params`` are the final parameters of a complete run (or the latest saved ones of an
    interrupted run); ``params_source`` says which file they came from and how it was
    verified; ``step`` is their training step.
    """

    path: Path
    config: ExperimentConfig
    manifest: dict[str, Any]
    metrics: list[dict[str, Any]]
    ensemble: Ensemble | EnsembleGroups
    params: Any  # final (or latest) parameters, stacked over members (tuples over groups)
    params_source: str = ""
    step: int = 0

    @property
    def dist(self) -> Any:
        """The distribution every member trained on. A sweep over distribution
        parameters gives each member its own: then this is an error pointing to
        :meth:`dist_of`."""
        first = self.ensemble.dist_of(0)
        if any(self.ensemble.dist_of(m) != first for m in range(1, self.num_members)):
            assert self.config.sweep is not None
            raise ToylabError(
                f"Run.dist: the members of {str(self.path)!r} have different distributions "
                f"(the sweep {self.config.sweep.describe()}). Use run.dist_of(member)."
            )
        return first

    def dist_of(self, member: int) -> Any:
        """Member ``member``'s own distribution (its swept parameters applied)."""
        self._check_member("Run.dist_of", member)
        return self.ensemble.dist_of(member)

    def member_values(self, member: int) -> dict[str, Any]:
        """Member ``member``'s swept values, ``{short axis name: value}``."""
        self._check_member("Run.member_values", member)
        return self.ensemble.member_values(member)

    def _check_member(self, where: str, member: Any) -> None:
        if (
            isinstance(member, bool)
            or not isinstance(member, int)
            or not 0 <= member < self.num_members
        ):
            raise ToylabError(
                f"{where}: member must be in 0..{self.num_members - 1}, got {member!r}."
            )

    @property
    def num_members(self) -> int:
        return self.ensemble.num_members

    @property
    def complete(self) -> bool:
        return self.manifest.get("status") == "complete"

    @property
    def checkpoint_steps(self) -> list[int]:
        return sorted(
            int(p.stem.split("_")[1]) for p in (self.path / "checkpoints").glob("step_*.npz")
        )

    def member_label(self, member: int) -> str:
        """``"seed 0"`` or, in a sweep, ``"seed 0, feature_probability=0.1, hidden=[5]"``."""
        return self.ensemble.member_label(member)

    @property
    def diverged(self) -> dict[int, str]:
        """Members that diverged during training, with the message saying when and how."""
        members = [int(m) for m in self.manifest.get("diverged_members", [])]
        msgs = [str(m) for m in self.manifest.get("divergences", [])]
        if len(members) == len(msgs):
            return dict(zip(members, msgs, strict=True))
        # runs written before "diverged_members": "member 3 (seed 1) diverged at step 40 ..."
        out = {}
        for msg in msgs:
            head = msg.split(" ", 2)
            if len(head) > 1 and head[0] == "member" and head[1].isdigit():
                out[int(head[1])] = msg
        return out

    def params_at(self, step: int) -> Any:
        if step not in self.checkpoint_steps:
            raise ToylabError(
                f"Run.params_at: step must be a checkpoint step {self.checkpoint_steps}, got {step!r}."
            )
        _verify(self.path, self.manifest, _ckpt_rel(step))
        return load_tree(_ckpt_path(self.path, step), self.params)

    def model(self, member: int = 0, step: int | None = None) -> Any:
        """Member ``member``'s model (an ordinary NNX module) at ``step`` (default: latest)."""
        self._check_member("Run.model", member)
        params = self.params if step is None else self.params_at(step)
        return self.ensemble.model(params, member)

    def models(self, step: int | None = None) -> list[Any]:
        import jax

        params = self.params if step is None else self.params_at(step)
        host = jax.tree.map(np.asarray, params)  # one transfer, then NumPy slices
        return [self.ensemble.model(host, m) for m in range(self.num_members)]


def _final_params(run_dir: Path, manifest: dict[str, Any], template: TrainState) -> tuple:
    """A complete run's final parameters: the file the manifest names (runs written before
    ``final_params`` existed: the checkpoint at the last step, which is the same), else a
    verified ``state.npz`` at the last step; never anything else."""
    step = int(manifest.get("num_steps", 0))
    rel = manifest.get("final_params") or _ckpt_rel(step)
    try:
        how = _verify(run_dir, manifest, rel)
    except CorruptRun as e:
        spath = run_dir / "state.npz"
        recorded = manifest.get("files", {}).get("state.npz")
        if not (spath.exists() and recorded and sha256_file(spath) == recorded):
            raise CorruptRun(
                f"{e} The run is complete, but without this file its final parameters are "
                "unknown; toylab will not substitute other parameters."
            ) from None
        state = load_tree(spath, _state_tree(template))
        if int(state["step"]) != step:  # pragma: no cover - the manifest is written last
            raise e from None
        return (
            state["params"],
            f"state.npz (final parameters, step {step}; {rel} is "
            "missing or damaged, state.npz SHA-256 verified)",
            step,
        )
    params = load_tree(run_dir / rel, template.params)
    return params, f"{rel} (final parameters, step {step}; {how})", step


def load_run(run_dir: str | Path) -> Run:
    """Load a run directory written by :func:`start_run` (complete or interrupted).

    A complete run's parameters come from the file named by its manifest, checked against
    the recorded SHA-256; an interrupted run's from ``state.npz``. A missing or altered
    file raises :class:`~toylab.CorruptRun`; no other parameters are ever substituted.
    """
    run_dir = Path(run_dir)
    manifest = _read_manifest(run_dir)
    config = load_config(run_dir / "config.toml")
    ensemble, template = init_members(
        _dist_arg(config), config.model, config.train, config.seeds, config.sweep, abstract=True
    )
    complete = manifest.get("status") == "complete"
    # every array file present is checked against its recorded SHA-256 (a missing
    # checkpoint is reported when it is asked for; an interrupted run's state.npz may be
    # newer than its manifest, see below)
    for rel in sorted(manifest.get("files") or {}):
        if (run_dir / rel).exists() and (complete or rel != "state.npz"):
            _verify(run_dir, manifest, rel)
    if complete:
        params, source, step = _final_params(run_dir, manifest, template)
    else:
        spath = run_dir / "state.npz"
        if not spath.exists():
            raise CorruptRun(
                f"{str(run_dir)!r} is an interrupted run with no saved training state "
                "(state.npz); its parameters are unknown. Continue it with "
                f"'toylab train --resume {run_dir}' (training restarts from step 0)."
            )
        state = load_tree(spath, _state_tree(template))
        step = int(state["step"])
        recorded = manifest.get("files", {}).get("state.npz")
        how = "no checksum recorded"
        if recorded is not None:
            if sha256_file(spath) == recorded:
                how = "SHA-256 verified"
            elif step > int(manifest.get("step", 0)):
                how = "newer than the manifest (interrupted between two writes)"
            else:
                raise CorruptRun(
                    f"{str(spath)!r} does not match the SHA-256 recorded in manifest.json: it "
                    "was altered or damaged after the run wrote it. Continue the run with "
                    f"'toylab train --resume {run_dir}' after restoring it, or train again."
                )
        params = state["params"]
        source = f"state.npz (training interrupted at step {step}; {how})"
    return Run(run_dir, config, manifest, _read_metrics(run_dir), ensemble, params, source, step)
