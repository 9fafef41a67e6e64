"""Run directories: an experiment on disk.

A run directory holds::

    config.toml             the experiment config, as resolved (defaults filled in)
    manifest.json           format, status, versions, platform, seeds, members, git hash, times
    metrics.jsonl           one JSON record per logged step (per-member lists)
    checkpoints/step_XXXXXXXX.npz   parameters of every member at each checkpoint step
    state.npz               the latest full training state (parameters, optimizer, step)
    report/                 the report written by ``toylab demo`` / :func:`toylab.report.write_report`

Every file is written atomically (:mod:`toylab.runs.io`); ``state.npz`` is
written last at every event, so a run killed at any moment resumes from a
consistent state (:func:`resume_run`) and ends with the same parameters as an
uninterrupted run. Nothing is pickled: loading a run never executes code.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import platform
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import tomli_w

from toylab._errors import ToylabError
from toylab.config import ExperimentConfig, load_config
from toylab.runs.io import atomic_write_json, atomic_write_text, load_tree, save_tree
from toylab.train import Ensemble, TrainResult, TrainState, divergence_messages, init_ensemble
from toylab.train import train as _train

__all__ = ["FORMAT", "Run", "load_run", "resume_run", "start_run"]

FORMAT = "toylab-run/1"


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


def _jsonable(rec: dict[str, Any]) -> dict[str, Any]:
    return {k: (np.asarray(v).tolist() if not isinstance(v, int) else v) for k, v in rec.items()}


def _write_metrics(run_dir: Path, records: list[dict[str, Any]]) -> None:
    text = "".join(json.dumps(_jsonable(r), sort_keys=True) + "\n" for r in records)
    atomic_write_text(run_dir / "metrics.jsonl", text)


def _read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        return []
    out = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            raise ToylabError(
                f"{str(path)!r} line {i + 1} is not valid JSON; the file is corrupted."
            ) from None
        out.append({k: (v if k == "step" else np.asarray(v)) for k, v in rec.items()})
    return out


def _ckpt_path(run_dir: Path, step: int) -> Path:
    return run_dir / "checkpoints" / f"step_{step:08d}.npz"


def _state_tree(state: TrainState) -> dict[str, Any]:
    return {f.name: getattr(state, f.name) for f in dataclasses.fields(state)}


@dataclasses.dataclass
class _Writer:
    run_dir: Path
    config: ExperimentConfig
    manifest: dict[str, Any]
    records: list[dict[str, Any]]

    def __call__(self, ensemble: Ensemble, state: TrainState, rec: Any, is_ckpt: bool) -> None:
        step = int(state.step)
        if is_ckpt:
            save_tree(_ckpt_path(self.run_dir, step), state.params)
        if rec is not None:
            self.records.append(rec)
            _write_metrics(self.run_dir, self.records)
        save_tree(self.run_dir / "state.npz", _state_tree(state))
        self.manifest["step"] = step
        self.manifest["divergences"] = divergence_messages(ensemble, state)
        atomic_write_json(self.run_dir / "manifest.json", self.manifest)


def _member_table(config: ExperimentConfig) -> list[dict[str, Any]]:
    """Members in training order: every seed with every sweep value (as in init_ensemble)."""
    values = config.sweep.values if config.sweep else (None,)
    members = [(s, v) for s in config.seeds for v in values]
    return [{"member": m, "seed": s, "sweep_value": v} for m, (s, v) in enumerate(members)]


def start_run(
    config: ExperimentConfig,
    run_dir: str | Path,
    *,
    progress: bool = False,
    overwrite: bool = False,
) -> Run:
    """Train ``config`` into a new run directory ``run_dir`` and return the loaded run.

    ``run_dir`` must not already hold a run unless ``overwrite=True``; then the new
    run is trained into a sibling temporary directory and swapped in only once it
    is complete, so the old run survives any failure.
    """
    run_dir = Path(run_dir)
    final_dir = run_dir
    if run_dir.exists() and any(run_dir.iterdir()):
        if not overwrite:
            raise ToylabError(
                f"--out {str(run_dir)!r} already exists and is not empty. Use --resume "
                f"{str(run_dir)!r} to continue that run, or choose a new directory."
            )
        run_dir = run_dir.with_name(f".{run_dir.name}.new")
        if run_dir.exists():
            shutil.rmtree(run_dir)
    config = config.resolved()
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / "config.toml", tomli_w.dumps(config.to_dict()))
    manifest = {
        "format": FORMAT,
        "status": "running",
        "name": config.name,
        "versions": _versions(),
        "platform": {
            "system": platform.platform(),
            "machine": platform.machine(),
            "jax_backend": __import__("jax").default_backend(),
        },
        "git": _git_hash(),
        "seeds": list(config.seeds),
        "members": _member_table(config),
        "start_time": _now(),
        "end_time": None,
        "step": 0,
        "num_steps": config.train.num_steps,
        "divergences": [],
    }
    atomic_write_json(run_dir / "manifest.json", manifest)
    _run_training(run_dir, config, manifest, [], None, progress)
    if final_dir != run_dir:
        old = final_dir.with_name(f".{final_dir.name}.old")
        if old.exists():
            shutil.rmtree(old)
        final_dir.rename(old)
        run_dir.rename(final_dir)
        shutil.rmtree(old)
    return load_run(final_dir)


def _run_training(
    run_dir: Path,
    config: ExperimentConfig,
    manifest: dict[str, Any],
    records: list[dict[str, Any]],
    state: TrainState | None,
    progress: bool,
) -> TrainResult:
    writer = _Writer(run_dir, config, manifest, records)
    result = _train(
        config.make_distribution(),
        config.model,
        config.train,
        config.seeds,
        config.sweep,
        state=state,
        callback=writer,
        progress=progress,
    )
    manifest["status"] = "complete"
    manifest["end_time"] = _now()
    atomic_write_json(run_dir / "manifest.json", manifest)
    return result


def _read_manifest(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "manifest.json"
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
        raise ToylabError(f"{str(path)!r} is corrupted (not valid JSON).") from None
    fmt = manifest.get("format") if isinstance(manifest, dict) else None
    if fmt != FORMAT:
        raise ToylabError(
            f"{str(run_dir)!r} has run format {fmt!r}, but this toylab reads {FORMAT!r}. "
            "Load it with the toylab version that wrote it (see manifest.json) or retrain."
        )
    return manifest


def resume_run(run_dir: str | Path, *, progress: bool = False) -> Run:
    """Continue an interrupted run from its last saved state (a finished run is returned as is)."""
    run_dir = Path(run_dir)
    manifest = _read_manifest(run_dir)
    if manifest.get("status") == "complete":
        return load_run(run_dir)
    config = load_config(run_dir / "config.toml")
    dist = config.make_distribution()
    ensemble, template = init_ensemble(
        dist, config.model, config.train, config.seeds, config.sweep, abstract=True
    )
    if (run_dir / "state.npz").exists():
        tree = load_tree(run_dir / "state.npz", _state_tree(template))
        state = TrainState(**tree)
    else:
        state = None
    step = 0 if state is None else int(state.step)
    records = [r for r in _read_metrics(run_dir) if r["step"] <= step]
    if state is None:
        records = []
    manifest["resumed"] = [*manifest.get("resumed", []), {"at_step": step, "time": _now()}]
    _run_training(run_dir, config, manifest, records, state, progress)
    return load_run(run_dir)


@dataclasses.dataclass(frozen=True)
class Run:
    """A run loaded from disk: config, manifest, metrics and parameters per checkpoint."""

    path: Path
    config: ExperimentConfig
    manifest: dict[str, Any]
    metrics: list[dict[str, Any]]
    ensemble: Ensemble
    params: Any  # final (or latest) parameters, stacked over members

    @property
    def dist(self) -> Any:
        return self.ensemble.dist

    @property
    def num_members(self) -> int:
        return self.ensemble.num_members

    @property
    def checkpoint_steps(self) -> list[int]:
        return sorted(
            int(p.stem.split("_")[1]) for p in (self.path / "checkpoints").glob("step_*.npz")
        )

    def params_at(self, step: int) -> Any:
        if step not in self.checkpoint_steps:
            raise ToylabError(
                f"Run.params_at: step must be a checkpoint step {self.checkpoint_steps}, got {step!r}."
            )
        return load_tree(_ckpt_path(self.path, step), self.params)

    def model(self, member: int = 0, step: int | None = None) -> Any:
        """Member ``member``'s model (an ordinary NNX module) at ``step`` (default: latest)."""
        if (
            isinstance(member, bool)
            or not isinstance(member, int)
            or not 0 <= member < self.num_members
        ):
            raise ToylabError(
                f"Run.model: member must be in 0..{self.num_members - 1}, got {member!r}."
            )
        params = self.params if step is None else self.params_at(step)
        return self.ensemble.model(params, member)

    def models(self, step: int | None = None) -> list[Any]:
        return [self.model(m, step) for m in range(self.num_members)]


def load_run(run_dir: str | Path) -> Run:
    """Load a run directory written by :func:`start_run` (complete or interrupted)."""
    run_dir = Path(run_dir)
    manifest = _read_manifest(run_dir)
    config = load_config(run_dir / "config.toml")
    dist = config.make_distribution()
    has_state = (run_dir / "state.npz").exists()
    ensemble, template = init_ensemble(
        dist, config.model, config.train, config.seeds, config.sweep, abstract=has_state
    )
    if has_state:
        params = load_tree(run_dir / "state.npz", _state_tree(template))["params"]
    else:  # killed before the first save: the initial parameters
        params = template.params
    return Run(run_dir, config, manifest, _read_metrics(run_dir), ensemble, params)
