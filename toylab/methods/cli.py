"""``toylab compare RUN_DIR [--seed N] [--quick]``: score every sampled method on a run
(:func:`register` adds the subcommand to :mod:`toylab.cli`)."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["cmd_compare", "register"]


def cmd_compare(args: argparse.Namespace) -> int:
    import jax

    from toylab.methods.compare import CompareConfig, compare_run, report_lines
    from toylab.runs import load_run

    run = load_run(args.run_dir)
    cfg = CompareConfig.quick() if args.quick else CompareConfig()
    res = compare_run(run, key=jax.random.key(args.seed), budgets=cfg)
    print("\n".join(report_lines(res)))
    print(f"written: {run.path / 'compare' / 'compare.csv'} and compare.json")
    return 0


def register(subparsers: Any) -> None:
    """Add the ``compare`` subcommand to ``toylab``'s subparsers."""
    c = subparsers.add_parser(
        "compare",
        help="score every sampled method against the exact answer on a run",
        description="Run feature visualization, dataset examples, sweeps, attribution, "
        "ablation and selectivity on every hidden neuron of every member of RUN_DIR, score "
        "each against the exact answer, and write RUN_DIR/compare/compare.csv and .json.",
    )
    c.add_argument("run_dir")
    c.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    c.add_argument("--quick", action="store_true", help="smaller budgets")
    c.set_defaults(fn=cmd_compare)
