"""``toylab universality RUN_DIR [--reference M] [--members ...]``: the universality report
(:func:`register` adds the subcommand to :mod:`toylab.cli`)."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["cmd_universality", "register"]

HELP = "write a run's universality report (units matched across seeds against chance)"


def cmd_universality(args: argparse.Namespace) -> int:
    from toylab._errors import ToylabError
    from toylab._progress import Progress
    from toylab._validate import check_members_flag
    from toylab.runs import load_run
    from toylab.universality._report import write_universality_report

    if args.baseline_size is not None and args.baseline_size < 1:
        raise ToylabError(
            f"--baseline-size must be an integer >= 1 (chance networks per baseline), got "
            f"{args.baseline_size}."
        )
    run = load_run(args.run_dir)
    n = run.num_members
    if check_members_flag(args.members, n) is not None:
        if len(args.members) < 2:
            raise ToylabError(
                f"--members must name at least two members to compare, got {args.members}."
            )
    if n < 2:
        raise ToylabError(
            f"toylab universality compares the members of a run; {args.run_dir!r} has {n} "
            "member. Train several seeds (seeds = { range = 64 } in the config)."
        )
    if args.reference is not None:
        pool = args.members if args.members is not None else list(range(n))
        if args.reference not in pool:
            raise ToylabError(
                f"--reference must be one of the compared members (0..{n - 1}"
                + (f", among --members {args.members}" if args.members is not None else "")
                + f"), got {args.reference}."
            )
    progress = Progress.for_cli(quiet=args.quiet)
    index = write_universality_report(
        run, reference=args.reference, members=args.members, baseline_size=args.baseline_size,
        progress=progress,
    )  # fmt: skip
    print(f"universality report: {index}")
    return 0


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``universality`` command to ``toylab``'s subparsers."""
    u = subparsers.add_parser(
        "universality",
        help=HELP,
        description="Match every hidden unit of every member of RUN_DIR against a reference "
        "member from exact correlations under the distribution, against random-"
        "initialisation and layer-shuffle baselines; find the families of units that recur "
        "across seeds, dead, duplicate and split units, linear CKA, clusterability and "
        "density-vs-boundary labels; write RUN_DIR/universality/index.md with figures and "
        "summary.json (which 'toylab atlas' links from each neuron's page).",
    )
    u.add_argument("run_dir", help="run directory (from 'toylab train'), several seeds")
    u.add_argument("--reference", type=int, default=None, metavar="M",
                   help="the member every other is matched against (default: the first)")  # fmt: skip
    u.add_argument("--members", type=int, nargs="+", default=None,
                   help="members to compare (default: all but diverged ones)")  # fmt: skip
    u.add_argument("--baseline-size", type=int, default=32, metavar="N",
                   help="chance networks per baseline (default 32)")  # fmt: skip
    u.add_argument("--quiet", action="store_true",
                   help="no progress output (also off when stdout is not a terminal)")  # fmt: skip
    u.set_defaults(fn=cmd_universality)
    return u
