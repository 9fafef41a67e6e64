"""``toylab compare RUN_DIR [--seed N] [--quick]``: score every sampled method on a run
(:func:`register` adds the subcommand to :mod:`toylab.cli`)."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["cmd_compare", "register"]


def cmd_compare(args: argparse.Namespace) -> int:
    from toylab._errors import ToylabError
    from toylab._progress import Progress

    if args.seed < 0:
        raise ToylabError(f"--seed must be an integer >= 0, got {args.seed}.")
    progress = Progress.for_cli(quiet=args.quiet)

    import jax

    from toylab.methods.compare import CompareConfig, compare_run, report_lines
    from toylab.report import write_comparison
    from toylab.runs import load_run

    run = load_run(args.run_dir)
    kind = run.config.model.kind
    superposition = kind in ("superposition_linear", "superposition_relu")
    if kind not in ("mlp", "onehot_mlp") and not superposition:
        raise ToylabError(
            f"compare scores the methods on MLP runs ([model] kind = 'mlp') and superposition "
            f"runs; this run's model is kind = {kind!r}. 'toylab report DIR' reports this run."
        )
    if not any(k.startswith("hidden_") for k in getattr(run.model(0), "widths", {})):
        raise ToylabError(
            "compare scores the methods on hidden neurons, and this run's model has no hidden "
            "layer ([model] hidden = []). 'toylab report DIR' reports this run."
        )
    cfg = CompareConfig.quick() if args.quick else CompareConfig()
    what = (
        "training sparse autoencoders on the hidden layer"
        if superposition
        else "scoring every sampled method on every hidden neuron"
    )
    phases = (lambda phase: progress.note(f"  {phase}")) if progress.enabled else None
    with progress.task(f"{what} of {run.num_members} member(s)"):
        res = compare_run(run, key=jax.random.key(args.seed), budgets=cfg, progress=phases)
    print("\n".join(report_lines(res)))
    written = write_comparison(run, res)
    print(f"written: {written.with_suffix('.csv')} and {written.name} "
          "(the run's report and atlas show them when next written)")  # fmt: skip
    return 0


def register(subparsers: Any) -> None:
    """Add the ``compare`` subcommand to ``toylab``'s subparsers."""
    c = subparsers.add_parser(
        "compare",
        help="score every sampled method against the exact answer on a run",
        description="Run feature visualization, dataset examples, sweeps, attribution, "
        "ablation and selectivity on every hidden neuron of every member of RUN_DIR, score "
        "each against the exact answer, and write RUN_DIR/compare/compare.csv and .json. "
        "Needs a run of a piecewise-linear MLP on a 2-D distribution (the exact answers "
        "are computed for those); on a superposition run it trains sparse autoencoders on "
        "the hidden layer and scores them against the true features instead; other runs get "
        "an error saying so.",
    )
    c.add_argument("run_dir")
    c.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    c.add_argument("--quick", action="store_true", help="smaller budgets")
    c.add_argument("--quiet", action="store_true",
                   help="no progress output (also off when stdout is not a terminal)")  # fmt: skip
    c.set_defaults(fn=cmd_compare)
