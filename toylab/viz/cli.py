"""``toylab atlas RUN_DIR``: write a run's neuron atlas (wired into :mod:`toylab.cli`)."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["cmd_atlas", "register"]


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``atlas`` command to ``toylab``'s subparsers."""
    a = subparsers.add_parser(
        "atlas",
        help="write a run's neuron atlas (static HTML, one page per neuron)",
        description="Write RUN_DIR/atlas/: an index of every hidden neuron of every member, "
        "one page per neuron (its map on a grid with the exact regions drawn over it, exact "
        "statistics, weights with links to neighbouring neurons) and a run page. Open atlas/index.html in a browser; it "
        "needs no server and no network.",
    )
    a.add_argument("run_dir", help="run directory (from 'toylab train' or 'toylab demo')")
    a.add_argument("--out", default=None, help="output directory (default: RUN_DIR/atlas)")
    a.add_argument(
        "--members", type=int, nargs="+", default=None, help="members to include (default: all)"
    )
    a.add_argument("--no-dynamics", action="store_true", help="skip the training-dynamics strips")
    a.add_argument("--tuning-boxes", type=int, default=None,
                   help="conv runs: parameter boxes bounded per channel's certified tuning map "
                   "(default 400; more narrows the enclosures and takes longer)")  # fmt: skip
    a.add_argument("--quiet", action="store_true",
                   help="no progress output (also off when stdout is not a terminal)")  # fmt: skip
    a.set_defaults(fn=cmd_atlas)
    return a


def cmd_atlas(args: argparse.Namespace) -> int:
    from toylab._progress import Progress
    from toylab._validate import check_members_flag
    from toylab.runs import load_run
    from toylab.viz.atlas import compare_inputs, write_atlas

    run = load_run(args.run_dir)
    check_members_flag(args.members, run.num_members)
    budget = None
    if args.tuning_boxes is not None:
        from toylab._errors import ToylabError
        from toylab.viz._conv_atlas import ConvAtlasBudget

        if args.tuning_boxes < 1:
            raise ToylabError(f"--tuning-boxes must be an integer >= 1, got {args.tuning_boxes}.")
        budget = ConvAtlasBudget(tuning_boxes=args.tuning_boxes)
    progress = Progress.for_cli(quiet=args.quiet)
    index = write_atlas(run, args.out, members=args.members, dynamics=not args.no_dynamics,
                        conv_budget=budget, progress=progress,
                        **compare_inputs(run.path))  # fmt: skip
    print(f"atlas: {index}")
    return 0
