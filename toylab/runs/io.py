"""Atomic file writes and pickle-free array storage.

Every file in a run directory is written to a temporary file in the same
directory, flushed and fsync-ed, then moved into place with ``os.replace``: a
process killed at any moment leaves either the old file or the new one, never a
torn one. Files get the permissions an ordinary ``open()`` would give them
(``0o666`` less the user's umask), so a run shared with colleagues is readable.
Arrays are stored in ``.npz`` archives keyed by their pytree path and read back
with ``allow_pickle=False``, so loading a run never executes code;
:func:`save_tree` returns the SHA-256 of the bytes it wrote (run manifests record
it, :func:`sha256_file` checks it).
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import jax
import numpy as np

from toylab._errors import ToylabError

__all__ = [
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "load_tree",
    "owned_dir",
    "save_tree",
    "sha256_file",
    "strict_json",
]


def _umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # pragma: no cover - not Linux: the classic read-and-restore
    os.umask(mask)  # pragma: no cover
    return mask  # pragma: no cover


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see the module docstring)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; a plain open() would not
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    try:  # make the rename itself durable
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:  # pragma: no cover - some filesystems refuse directory fsync
        pass


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def strict_json(obj: Any) -> Any:
    """``obj`` with every non-finite float (NaN, ±inf) replaced by ``None``: standard JSON
    has no NaN, and ``json.dumps`` would write the non-standard bare ``NaN``."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: strict_json(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [strict_json(v) for v in obj]
    return obj


def atomic_write_json(path: str | Path, obj: Any, *, indent: int | None = 2) -> None:
    """Strict JSON: non-finite floats become ``null`` (:func:`strict_json`)."""
    text = json.dumps(strict_json(obj), indent=indent, sort_keys=True, allow_nan=False)
    atomic_write_text(path, text + "\n")


def _flat(tree: Any) -> dict[str, np.ndarray]:
    out = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        arr = np.asarray(jax.random.key_data(leaf) if _is_key(leaf) else leaf)
        out[jax.tree_util.keystr(path)] = arr
    return out


def _is_key(x: Any) -> bool:
    return isinstance(x, jax.Array | jax.ShapeDtypeStruct) and jax.dtypes.issubdtype(
        x.dtype, jax.dtypes.prng_key
    )


def _shape_dtype(leaf: Any) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype a leaf is stored with (key leaves as their raw key data)."""
    if isinstance(leaf, jax.ShapeDtypeStruct):
        if _is_key(leaf):
            data = jax.eval_shape(jax.random.key_data, leaf)
            return tuple(data.shape), np.dtype(data.dtype)
        return tuple(leaf.shape), np.dtype(leaf.dtype)
    ref = np.asarray(jax.random.key_data(leaf) if _is_key(leaf) else leaf)
    return ref.shape, ref.dtype


def save_tree(path: str | Path, tree: Any) -> str:
    """Save a pytree of arrays to ``path`` (``.npz``, atomically); return the SHA-256 (hex)
    of the bytes written."""
    buf = io.BytesIO()
    np.savez(buf, **_flat(tree))  # type: ignore[arg-type]
    data = buf.getvalue()
    atomic_write_bytes(path, data)
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path) -> str:
    """The SHA-256 (hex) of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_tree(path: str | Path, template: Any) -> Any:
    """Load arrays saved by :func:`save_tree` into the structure of ``template`` (arrays or
    ``jax.ShapeDtypeStruct`` leaves).

    Every leaf of ``template`` must be present with the same shape and dtype, and
    no extra arrays may be present; otherwise a :class:`ToylabError` says which.
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except FileNotFoundError:
        raise ToylabError(f"missing file {str(path)!r}; the run directory is incomplete.") from None
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
        raise ToylabError(
            f"cannot read {str(path)!r}: the file is corrupted or not a toylab array archive ({e})."
        ) from None
    leaves_with_path, treedef = jax.tree_util.tree_flatten_with_path(template)
    leaves = []
    for p, leaf in leaves_with_path:
        name = jax.tree_util.keystr(p)
        if name not in arrays:
            raise ToylabError(
                f"{str(path)!r} has no array {name!r}; it was written by an incompatible model "
                "or toylab version."
            )
        arr = arrays.pop(name)
        shape, dtype = _shape_dtype(leaf)
        if arr.shape != shape or arr.dtype != dtype:
            raise ToylabError(
                f"{str(path)!r}: array {name!r} has shape {arr.shape} and dtype {arr.dtype}, "
                f"expected {shape} and {dtype}; the file does not match this config."
            )
        # device_put, not jnp.asarray: the same array without compiling a program per shape
        leaves.append(jax.random.wrap_key_data(arr) if _is_key(leaf) else jax.device_put(arr))
    if arrays:
        raise ToylabError(
            f"{str(path)!r} holds unexpected arrays {sorted(arrays)[:5]}; it does not match "
            "this config."
        )
    return jax.tree_util.tree_unflatten(treedef, leaves)


def owned_dir(
    out: str | Path,
    marker: str,
    what: str,
    *,
    create: bool = True,
    stamp: dict[str, Any] | None = None,
) -> Path:
    """A directory toylab writes into: ``out``, created with its ``marker`` file (JSON,
    ``stamp`` plus ``written_by``) when ``create``. A :class:`~toylab.ToylabError` when
    ``out`` is a file, or a non-empty directory without ``marker`` (files toylab did not
    write: toylab never writes among them). ``what`` names the contents in the message
    (``"the training-dynamics report"``)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ToylabError(
            f"{str(out)!r} is a file, not toylab's {out.name} directory; toylab writes {what} "
            "there. Move the file away and rerun."
        )
    if out.is_dir() and any(out.iterdir()) and not (out / marker).exists():
        raise ToylabError(
            f"{str(out)!r} holds files toylab did not write (it has no {marker}); toylab "
            "never writes among them. Move that directory away and rerun."
        )
    if create:
        import toylab

        out.mkdir(parents=True, exist_ok=True)
        if not (out / marker).exists():
            atomic_write_json(out / marker,
                              {"written_by": f"toylab {toylab.__version__}", **(stamp or {})})  # fmt: skip
    return out
