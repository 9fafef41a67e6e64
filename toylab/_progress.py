"""Progress for long work: bars and status lines on stderr, or nothing at all.

A :class:`Progress` is an explicit value passed to the functions that can take long
(:func:`toylab.runs.start_run`, :func:`toylab.report.write_report`,
:func:`toylab.viz.atlas.write_atlas`); their default, :data:`QUIET`, prints nothing,
so library calls stay silent unless asked. The command line builds one with
:meth:`Progress.for_cli`: on when stdout is a terminal, off with ``--quiet`` or when
the output goes to a file or a pipe (CI logs stay clean).

>>> p = Progress(False)
>>> [i for i in p.iterate(range(3), "counting")]
[0, 1, 2]
>>> with p.task("thinking"):
...     pass
>>> import io
>>> buf = io.StringIO()
>>> with Progress(True, buf).task("quick"):  # quicker than a second: no line at all
...     pass
>>> buf.getvalue()
''
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any, TextIO, TypeVar

__all__ = ["QUIET", "Progress"]

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Progress:
    """Whether to show progress, and where (default: ``sys.stderr`` at the time of use)."""

    enabled: bool = True
    stream: TextIO | None = None

    @classmethod
    def for_cli(cls, quiet: bool = False) -> Progress:
        """On unless ``quiet`` or stdout is not a terminal."""
        return cls(enabled=not quiet and _isatty(sys.stdout))

    def _out(self) -> TextIO:
        return self.stream if self.stream is not None else sys.stderr

    def iterate(
        self, items: Iterable[T], desc: str, *, total: int | None = None, unit: str = "it"
    ) -> Iterator[T]:
        """Yield ``items`` while a bar counts them (``total`` defaults to ``len(items)``)."""
        if not self.enabled:
            yield from items
            return
        from tqdm.auto import tqdm

        if total is None and hasattr(items, "__len__"):
            total = len(items)  # type: ignore[arg-type]
        bar = tqdm(items, desc=desc, total=total, unit=unit, file=self._out(), leave=True)
        try:
            yield from bar
        finally:
            bar.close()

    @contextlib.contextmanager
    def task(self, desc: str, *, after: float = 1.0) -> Iterator[None]:
        """A status line around one long call: ``desc ...`` once it has run for ``after``
        seconds, then ``desc: done in 12.3 s``; nothing at all for a call that is quicker
        (e.g. a cached result)."""
        if not self.enabled:
            yield
            return
        import threading

        out = self._out()
        started = threading.Event()

        def announce() -> None:
            started.set()
            print(f"{desc} ...", file=out, flush=True)

        timer = threading.Timer(after, announce)
        timer.daemon = True
        t0 = time.perf_counter()
        timer.start()
        try:
            yield
        finally:
            timer.cancel()
            timer.join()
        if started.is_set():
            print(f"{desc}: done in {_seconds(time.perf_counter() - t0)}", file=out, flush=True)

    def note(self, message: str) -> None:
        """One line of progress information (nothing when disabled)."""
        if self.enabled:
            print(message, file=self._out(), flush=True)


def _seconds(s: float) -> str:
    return f"{s:.1f} s" if s < 120 else f"{int(s // 60)} min {int(s % 60)} s"


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or replaced streams
        return False


#: Print nothing (the default of every library function that can show progress).
QUIET = Progress(False)
