"""``toylab dynamics RUN_DIR [--members ...] [--max-checkpoints N]``: the training-dynamics
report (:func:`register` adds the subcommand to :mod:`toylab.cli`)."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["cmd_dynamics", "register"]

HELP = "write a run's training-dynamics report (exact quantities at every checkpoint)"


def cmd_dynamics(args: argparse.Namespace) -> int:
    from toylab._errors import ToylabError
    from toylab._progress import Progress

    if args.max_checkpoints is not None and args.max_checkpoints < 2:
        raise ToylabError(
            f"--max-checkpoints must be an integer >= 2 (the first and the last checkpoint "
            f"are always kept), got {args.max_checkpoints}."
        )
    if args.threshold is not None and not args.threshold > 0:
        raise ToylabError(f"--threshold must be a number > 0, got {args.threshold}.")
    from toylab._validate import check_members_flag
    from toylab.dynamics._report import write_dynamics_report
    from toylab.dynamics.trajectory import SETTLE_THRESHOLD
    from toylab.runs import load_run

    run = load_run(args.run_dir)
    check_members_flag(args.members, run.num_members)
    progress = Progress.for_cli(quiet=args.quiet)
    index = write_dynamics_report(
        run, members=args.members, max_checkpoints=args.max_checkpoints, progress=progress,
        threshold=SETTLE_THRESHOLD if args.threshold is None else args.threshold,
    )  # fmt: skip
    print(f"dynamics report: {index}")
    return 0


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``dynamics`` command to ``toylab``'s subparsers."""
    d = subparsers.add_parser(
        "dynamics",
        help=HELP,
        description="Analyse every member of RUN_DIR exactly at every checkpoint (accuracy, "
        "gap to Bayes, linear regions, every hidden unit's firing probability, mean and "
        "extrema; births, deaths and settling of units) and write RUN_DIR/dynamics/index.md "
        "with figures and an animated map of every neuron through training. The exact "
        "quantities are stored in RUN_DIR/dynamics/trajectory.npz and reused by later runs "
        "of this command.",
    )
    d.add_argument("run_dir", help="run directory (from 'toylab train' or 'toylab demo')")
    d.add_argument("--members", type=int, nargs="+", default=None,
                   help="members to analyse (default: all)")  # fmt: skip
    d.add_argument("--max-checkpoints", type=int, default=None, metavar="N",
                   help="analyse at most N checkpoints, evenly spaced on the log scale "
                   "(default: all)")  # fmt: skip
    d.add_argument("--threshold", type=float, default=None,
                   help="settling threshold of the relative distance between consecutive "
                   "checkpoints (default 0.01)")  # fmt: skip
    d.add_argument("--quiet", action="store_true",
                   help="no progress output (also off when stdout is not a terminal)")  # fmt: skip
    d.set_defaults(fn=cmd_dynamics)
    return d
