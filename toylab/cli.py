"""The ``toylab`` command. Everything it does is a call into the Python API."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from toylab._errors import ToylabError

DEMO_CONFIG: dict[str, Any] = {
    "name": "demo",
    "seeds": [0, 1, 2, 3],
    "distribution": {"name": "two_blobs"},
    "model": {"kind": "mlp", "hidden": [8, 8], "activation": "relu"},
    "train": {
        "optimizer": "adam",
        "learning_rate": 0.01,
        "num_steps": 2000,
        "batch_size": 128,
        "log_every": 100,
        "checkpoints": "log:8",
    },
}


def _progress(args: argparse.Namespace) -> bool:
    return not args.quiet


def cmd_demo(args: argparse.Namespace) -> int:
    import jax

    from toylab.config import parse_config
    from toylab.report import write_report
    from toylab.runs import start_run

    data: dict[str, Any] = {**DEMO_CONFIG, "train": {**DEMO_CONFIG["train"]}}
    if args.steps is not None:
        data["train"]["num_steps"] = args.steps
    if args.seeds is not None:
        if args.seeds < 1:
            raise ToylabError(f"--seeds must be >= 1, got {args.seeds}.")
        data["seeds"] = list(range(args.seeds))
    config = parse_config(data)
    out = Path(args.out)
    print(f"toylab demo: training {len(config.seeds)} seeds of a "
          f"{'-'.join(map(str, config.model.hidden))} {config.model.activation} MLP on two "
          "Gaussian blobs")  # fmt: skip
    run = start_run(config, out, progress=_progress(args), overwrite=True)
    from toylab.methods import compare_run

    print("scoring sampled methods against the exact answer ...")
    scores = compare_run(run, key=jax.random.key(0))
    report = write_report(run, compare=scores)
    print(f"report: {report}")
    from toylab.viz.atlas import compare_inputs, write_atlas

    print(f"atlas:  {write_atlas(run, **compare_inputs(run.path))}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from toylab.config import load_config
    from toylab.runs import resume_run, start_run

    if args.resume:
        if args.config or args.out:
            raise ToylabError(
                "train --resume DIR takes no CONFIG or --out: the run directory holds its config."
            )
        run = resume_run(args.resume, progress=_progress(args))
    else:
        if not args.config or not args.out:
            raise ToylabError(
                "train needs CONFIG and --out DIR (or --resume DIR). Example: "
                "toylab train experiment.toml --out runs/exp"
            )
        run = start_run(load_config(args.config), args.out, progress=_progress(args),
                        overwrite=args.overwrite)  # fmt: skip
    for msg in run.manifest.get("divergences", []):
        print(f"warning: {msg}", file=sys.stderr)
    print(f"run written to {run.path}")
    if args.report:
        from toylab.report import write_report

        print(f"report: {write_report(run)}")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from toylab.runs import load_run

    run = load_run(args.run_dir)
    m = run.manifest
    print(f"run:      {run.path}  ({m.get('name')})")
    print(f"status:   {m.get('status')} at step {m.get('step')}/{m.get('num_steps')}")
    print(f"data:     {run.config.distribution}")
    mc = run.config.model
    print(f"model:    {mc.kind} hidden={list(mc.hidden)} activation={mc.activation}")
    print(f"members:  {run.num_members} (seeds {list(run.config.seeds)})"
          + (f", sweep {run.config.sweep.param}={list(run.config.sweep.values)}"
             if run.config.sweep else ""))  # fmt: skip
    print(f"versions: {', '.join(f'{k} {v}' for k, v in m.get('versions', {}).items())}")
    print(f"checkpoints: {run.checkpoint_steps}")
    if run.metrics:
        last = run.metrics[-1]
        for key in ("loss", "accuracy", "bayes_gap", "test_accuracy"):
            if key in last:
                vals = ", ".join(f"{v:.4f}" for v in last[key])
                print(f"{key:>14} @ {last['step']}: {vals}")
    for msg in m.get("divergences", []):
        print(f"warning: {msg}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from toylab.report import write_report
    from toylab.runs import load_run

    print(f"report: {write_report(load_run(args.run_dir))}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="toylab",
        description="Interpretability research on toy models whose every neuron is known exactly.",
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    d = sub.add_parser("demo", help="train the default experiment and write its report",
                       description="Train several seeds of a small ReLU MLP on two Gaussian "
                       "blobs and write a report (runs/demo/report/index.md).")  # fmt: skip
    d.add_argument("--out", default="runs/demo", help="run directory (default: runs/demo)")
    d.add_argument("--steps", type=int, default=None, help="training steps (default 2000)")
    d.add_argument("--seeds", type=int, default=None, help="number of seeds (default 4)")
    d.add_argument("--quiet", action="store_true", help="no progress bar")
    d.set_defaults(fn=cmd_demo)

    t = sub.add_parser("train", help="train an experiment config into a run directory",
                       description="Train CONFIG (TOML) into --out DIR, or continue an "
                       "interrupted run with --resume DIR.")  # fmt: skip
    t.add_argument("config", nargs="?", help="experiment config (TOML)")
    t.add_argument("--out", help="new run directory")
    t.add_argument("--resume", metavar="DIR", help="continue the interrupted run in DIR")
    t.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing run in --out (only once the new one is complete)",
    )
    t.add_argument("--report", action="store_true", help="write the report when done")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(fn=cmd_train)

    i = sub.add_parser("info", help="summarise a run directory")
    i.add_argument("run_dir")
    i.set_defaults(fn=cmd_info)

    r = sub.add_parser("report", help="(re)write a run's report")
    r.add_argument("run_dir")
    r.set_defaults(fn=cmd_report)

    from toylab.claims.cli import register as register_check
    from toylab.methods.cli import register as register_compare
    from toylab.viz.cli import register as register_atlas

    register_compare(sub)
    register_check(sub)
    register_atlas(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "fn", None):
        parser.print_help()
        return 2
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        return int(args.fn(args))
    except ToylabError as e:
        print(f"toylab {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted; an interrupted run continues with 'toylab train --resume DIR'.",
              file=sys.stderr)  # fmt: skip
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
