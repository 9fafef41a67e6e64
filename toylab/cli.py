"""The ``toylab`` command. Everything it does is a call into the Python API.

Exit status: 0 success; 1 only when ``toylab check`` finds a claim that fails; 2 for
every mistake in the input (arguments, configs, claim files, run directories, files
that cannot be written, a model too large for memory), with a one-line message that
names the flag or config field; 3 for an unexpected error inside toylab (a short
message and the path of a file holding the full traceback); 130 when interrupted.

Start-up is fast: this module imports nothing heavy (no jax, flax or matplotlib) until a
command runs, and the ``compare``, ``check`` and ``atlas`` subcommands are only imported
when they are the command being run (``toylab --help`` lists them from :data:`LAZY`).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib
import os
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any

from toylab._errors import ToylabError, is_out_of_memory
from toylab._progress import Progress

__all__ = ["DEMO_CONFIG", "EXIT_CLAIM_FAILED", "EXIT_INTERNAL", "EXIT_USER", "build_parser", "main"]

EXIT_CLAIM_FAILED = 1
EXIT_USER = 2
EXIT_INTERNAL = 3

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

#: ``toylab demo --example superposition``: the toy-models-of-superposition sparsity sweep
#: (Elhage et al. 2022): n = 20 features of uniform importance in m = 5 dimensions, six
#: feature probabilities × two seeds, all twelve members in one compiled program.
SUPERPOSITION_DEMO_CONFIG: dict[str, Any] = {
    "name": "superposition",
    "seeds": [0, 1],
    "distribution": {"name": "sparse_features", "num_features": 20},
    "model": {"kind": "superposition_relu", "hidden": [5]},
    "train": {
        "loss": "importance_mse",
        "optimizer": "adamw",
        "learning_rate": 0.003,
        "num_steps": 3000,
        "batch_size": 1024,
        "log_every": 250,
        "checkpoints": "log:6",
    },
    "sweep": {
        "param": "distribution.feature_probability",
        "values": [1.0, 0.3, 0.1, 0.03, 0.01, 0.003],
    },
}
#: ``toylab demo --example curves``: a small conv ensemble on analytic curve images (issue
#: 15): 16x16 images of one arc each, the orientation task (8 bins of theta), two conv
#: blocks of 6 channels (5x5 and 3x3 kernels, 2x2 average pooling) and a linear read-out.
#: ``examples/curves.toml`` is the same model at research size.
CURVES_DEMO_CONFIG: dict[str, Any] = {
    "name": "curves",
    "seeds": [0, 1, 2],
    "distribution": {"name": "curve_images", "size": 16, "task": "orientation", "num_bins": 8},
    "model": {
        "kind": "conv",
        "conv": [
            {"channels": 6, "kernel": 5, "pool": "avg", "pool_window": 2},
            {"channels": 6, "kernel": 3, "pool": "avg", "pool_window": 2},
        ],
        "hidden": [],
        "activation": "relu",
    },
    "train": {
        "optimizer": "adam",
        "learning_rate": 0.005,
        "num_steps": 800,
        "batch_size": 64,
        "log_every": 100,
        "checkpoints": "log:4",
    },
}
DEMOS = {
    "blobs": DEMO_CONFIG,
    "superposition": SUPERPOSITION_DEMO_CONFIG,
    "curves": CURVES_DEMO_CONFIG,
}
DEMO_DIRS = {"blobs": "runs/demo", "superposition": "runs/superposition", "curves": "runs/curves"}

#: Subcommands registered by their own modules, imported only when run:
#: ``name -> (module with a register(subparsers) function, one-line help)``. The help
#: strings are the ones the modules register (tests/test_cli.py checks they agree).
LAZY: dict[str, tuple[str, str]] = {
    "compare": (
        "toylab.methods.cli",
        "score every sampled method against the exact answer on a run",
    ),
    "check": ("toylab.claims.cli", "check a claim file against a run (exit 1 if a claim fails)"),
    "atlas": (
        "toylab.viz.cli",
        "write a run's neuron atlas (static HTML, one page per neuron)",
    ),
    "dynamics": (
        "toylab.dynamics.cli",
        "write a run's training-dynamics report (exact quantities at every checkpoint)",
    ),
    "universality": (
        "toylab.universality.cli",
        "write a run's universality report (units matched across seeds against chance)",
    ),
}


#: Commands that do not apply to runs on image distributions (``kind == "image"``, e.g.
#: curve images): every section needs the exact analysis of 2-D or finite inputs.
IMAGE_REFUSALS: dict[str, str] = {
    "dynamics": "follows exact quantities (linear regions, firing probabilities, maps) "
    "through training, which need 2-D or finite inputs",
    "universality": "matches units across seeds by their exact correlations under the "
    "distribution, which need 2-D or finite inputs",
}


def _refuse_image_run(command: str, args: argparse.Namespace) -> None:
    """One clear line (exit 2) when ``command`` does not apply to the run's image inputs."""
    why = IMAGE_REFUSALS.get(command)
    run_dir = getattr(args, "run_dir", None)
    if why is None or run_dir is None:
        return
    from toylab.runs import load_run

    dist = load_run(run_dir).dist_of(0)
    if getattr(dist, "kind", None) == "image":
        raise ToylabError(
            f"{command} does not apply to {str(run_dir)!r}: it {why}, and this run's inputs "
            f"are {dist.dim}-pixel images ({type(dist).__name__}). 'toylab report "
            f"{run_dir}' and 'toylab atlas {run_dir}' (certified channel tuning) report it."
        )


def _progress(args: argparse.Namespace) -> Progress:
    return Progress.for_cli(quiet=bool(getattr(args, "quiet", False)))


def _positive(flag: str, value: int | None) -> None:
    if value is not None and value < 1:
        raise ToylabError(f"{flag} must be an integer >= 1, got {value}.")


def cmd_demo(args: argparse.Namespace) -> int:
    from toylab.config import parse_config

    _positive("--steps", args.steps)
    _positive("--seeds", args.seeds)
    base = DEMOS[args.example]
    data: dict[str, Any] = {**base, "train": {**base["train"]}}
    if args.steps is not None:
        data["train"]["num_steps"] = args.steps
    if args.seeds is not None:
        data["seeds"] = list(range(args.seeds))
    config = parse_config(data)
    progress = _progress(args)
    out = Path(args.out or DEMO_DIRS[args.example])

    import jax

    from toylab.report import write_comparison, write_report
    from toylab.runs import start_run

    n = len(config.seeds)
    if args.example == "blobs":
        print(f"toylab demo: training {n} seed{'s' if n > 1 else ''} of a "
              f"{'-'.join(map(str, config.model.hidden))} {config.model.activation} MLP on two "
              "Gaussian blobs")  # fmt: skip
    elif args.example == "curves":
        from toylab.viz._conv_atlas import describe_conv

        print(f"toylab demo: training {n} seed{'s' if n > 1 else ''} of a conv net "
              f"({describe_conv(config.model.conv)}, linear read-out) on 16x16 curve images "
              "(8 orientation bins)")  # fmt: skip
    else:
        values = config.sweep.values if config.sweep else ()
        print(f"toylab demo: training toy models of superposition (20 features in 5 "
              f"dimensions) at {len(values)} feature probabilities × {n} seed"
              f"{'s' if n > 1 else ''}, in one program")  # fmt: skip
    run = start_run(config, out, progress=progress, overwrite=True)
    if args.example == "curves":  # no exact plane analysis: the report and the channel atlas
        return _demo_curves(run, progress)
    from toylab.methods import CompareConfig, compare_run

    budgets = CompareConfig.quick() if args.example == "superposition" else None
    task = ("scoring sparse autoencoders against the true features"
            if args.example == "superposition"
            else "scoring sampled methods against the exact answer")  # fmt: skip
    with progress.task(task):
        scores = compare_run(run, key=jax.random.key(0), budgets=budgets)
    write_comparison(run, scores)
    report = write_report(run, compare=scores, progress=progress)
    print(f"report: {report}")
    from toylab.viz.atlas import compare_inputs, write_atlas

    print(f"atlas:  {write_atlas(run, progress=progress, **compare_inputs(run.path))}")
    return 0


def _demo_curves(run: Any, progress: Progress) -> int:
    from toylab.report import write_report
    from toylab.viz._conv_atlas import ConvAtlasBudget
    from toylab.viz.atlas import write_atlas

    print(f"report: {write_report(run, progress=progress)}")
    budget = ConvAtlasBudget(tuning_boxes=200, max_boxes=100)  # 'toylab atlas' does more
    print(f"atlas:  {write_atlas(run, conv_budget=budget, progress=progress)}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from toylab.config import load_config
    from toylab.runs import resume_run, start_run

    progress = _progress(args)
    if args.resume:
        if args.config or args.out or args.overwrite:
            raise ToylabError(
                "train --resume DIR takes no CONFIG, --out or --overwrite: the run directory "
                "holds its config. Example: toylab train --resume runs/exp"
            )
        run = resume_run(args.resume, progress=progress)
    else:
        if not args.config or not args.out:
            raise ToylabError(
                "train needs CONFIG and --out DIR (or --resume DIR). Example: "
                "toylab train experiment.toml --out runs/exp"
            )
        config = load_config(args.config)
        run = start_run(config, args.out, progress=progress, overwrite=args.overwrite)
    for msg in run.manifest.get("divergences", []):
        print(f"warning: {msg}", file=sys.stderr)
    if run.config.sweep is not None:
        _print_members(run)
    print(f"run written to {run.path}")
    if args.report:
        from toylab.report import write_report

        print(f"report: {write_report(run, progress=progress)}")
    return 0


def _print_members(run: Any, limit: int = 40) -> None:
    """The members of a swept run by name, and the programs they trained in."""
    programs = run.manifest.get("programs") or []
    print(f"members: {run.num_members} in {max(len(programs), 1)} compiled program(s)")
    if len(programs) > 1:
        for k, p in enumerate(programs):
            print(f"  program {k}: {p.get('description')}: members {p.get('members')}")
    for m in range(min(run.num_members, limit)):
        print(f"  {m:>3}: {run.member_label(m)}")
    if run.num_members > limit:
        print(f"  ... ({run.num_members - limit} more; see manifest.json)")


def _seeds_text(seeds: Any) -> str:
    """``[0, 1, 2]``, or ``0 to 63`` for a long run of consecutive seeds."""
    seeds = list(seeds)
    if len(seeds) > 8 and seeds == list(range(seeds[0], seeds[0] + len(seeds))):
        return f"{seeds[0]} to {seeds[-1]}"
    return str(seeds)


def _values_line(run: Any, vals: list[float]) -> str:
    """Every member's value, or for more than 8 members: min, median and max, naming the
    members at the ends (a 64-seed run would otherwise print a wall of numbers)."""
    if len(vals) <= 8:
        return ", ".join("nan" if v != v else f"{v:.4f}" for v in vals)
    import numpy as np

    arr = np.asarray(vals, dtype=float)
    ok = np.flatnonzero(~np.isnan(arr))
    if ok.size == 0:
        return f"nan for all {arr.size} members"
    lo, hi = ok[np.argmin(arr[ok])], ok[np.argmax(arr[ok])]
    text = (f"min {arr[lo]:.4f} ({run.member_label(int(lo))}), median "
            f"{np.median(arr[ok]):.4f}, max {arr[hi]:.4f} ({run.member_label(int(hi))})")  # fmt: skip
    return text + (f"; nan for {arr.size - ok.size} members" if ok.size < arr.size else "")


def cmd_info(args: argparse.Namespace) -> int:
    from toylab.runs import load_run, pending_overwrite

    run = load_run(args.run_dir)
    m = run.manifest
    print(f"run:      {run.path}  ({m.get('name')})")
    print(f"status:   {m.get('status')} at step {m.get('step')}/{m.get('num_steps')}")
    print(f"data:     {run.config.distribution}")
    mc = run.config.model
    conv = ""
    if getattr(mc, "conv", None):
        from toylab.viz._conv_atlas import describe_conv

        conv = f" conv=[{describe_conv(mc.conv)}]"
    print(f"model:    {mc.kind}{conv} hidden={list(mc.hidden)} activation={mc.activation}")
    print(f"members:  {run.num_members} (seeds {_seeds_text(run.config.seeds)})"
          + (f", sweep {run.config.sweep.describe()}" if run.config.sweep else ""))  # fmt: skip
    print(f"versions: {', '.join(f'{k} {v}' for k, v in m.get('versions', {}).items())}")
    print(f"checkpoints: {run.checkpoint_steps}")
    print(f"parameters: {run.params_source}")
    if run.metrics:
        last = run.metrics[-1]
        finite = run.dist_of(0).kind == "finite"
        for key in ("loss", "accuracy", "bayes_gap", "train_accuracy", "test_accuracy"):
            if key in last:
                vals = _values_line(run, [float(v) for v in last[key]])
                name = "domain accuracy" if finite and key == "accuracy" else key
                print(f"{name:>15} @ {last['step']}: {vals}")
        print("  (the metrics logged during training: float32, "
              + ("over every input of the domain)" if finite else
                 f"on {run.ensemble.num_eval} held-out samples)"))  # fmt: skip
    if run.config.sweep is not None:
        _print_members(run)
    for msg in m.get("divergences", []):
        print(f"warning: {msg}")
    pending = pending_overwrite(run.path)
    if pending is not None:
        print(f"note: an interrupted --overwrite of this run is in {pending}; finish it with "
              f"'toylab train --resume {run.path}'.")  # fmt: skip
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from toylab.report import write_report
    from toylab.runs import load_run

    print(f"report: {write_report(load_run(args.run_dir), progress=_progress(args))}")
    return 0


def _quiet(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quiet", action="store_true",
                   help="no progress output (also off when stdout is not a terminal)")  # fmt: skip


def _version() -> str:
    from toylab import __version__

    return f"toylab {__version__}"


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``toylab`` parser. The lazily imported subcommands (:data:`LAZY`) get their full
    arguments only when ``command`` names them (``"all"``: every one)."""
    p = argparse.ArgumentParser(
        prog="toylab",
        description="Interpretability research on toy models whose every neuron is known exactly.",
        epilog="Exit status: 0 ok, 1 a claim failed (toylab check), 2 a mistake in the input, "
        "3 an internal error (the message names a traceback file).",
    )
    p.add_argument("--version", action="version", version=_version())
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    d = sub.add_parser("demo", help="train the default experiment and write its report",
                       description="Train several seeds of a small ReLU MLP on two Gaussian "
                       "blobs and write a report (runs/demo/report/index.md), the method "
                       "scores and the atlas; with --example superposition, the toy models "
                       "of superposition sparsity sweep (runs/superposition); with --example "
                       "curves, a small conv ensemble on curve images (runs/curves). An existing "
                       "toylab run in --out is replaced once the new one is complete; any "
                       "other directory is refused.")  # fmt: skip
    d.add_argument("--example", choices=sorted(DEMOS), default="blobs",
                   help="which demo: blobs (default), superposition or curves")  # fmt: skip
    d.add_argument("--out", default=None,
                   help="run directory (default: runs/demo, runs/superposition or runs/curves)")  # fmt: skip
    d.add_argument(
        "--steps", type=int, default=None, help="training steps (default: the example's, e.g. 2000)"
    )
    d.add_argument("--seeds", type=int, default=None, help="number of seeds (default 4)")
    _quiet(d)
    d.set_defaults(fn=cmd_demo)

    t = sub.add_parser("train", help="train an experiment config into a run directory",
                       description="Train CONFIG (TOML) into --out DIR, or continue an "
                       "interrupted run (or an interrupted --overwrite) with --resume DIR.")  # fmt: skip
    t.add_argument("config", nargs="?", help="experiment config (TOML)")
    t.add_argument("--out", help="new run directory")
    t.add_argument("--resume", metavar="DIR", help="continue the interrupted run in DIR")
    t.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing toylab run in --out (only once the new one is complete; "
        "a directory that is not a toylab run is never replaced)",
    )
    t.add_argument("--report", action="store_true", help="write the report when done")
    _quiet(t)
    t.set_defaults(fn=cmd_train)

    i = sub.add_parser("info", help="summarise a run directory")
    i.add_argument("run_dir")
    i.set_defaults(fn=cmd_info)

    r = sub.add_parser("report", help="(re)write a run's report")
    r.add_argument("run_dir")
    _quiet(r)
    r.set_defaults(fn=cmd_report)

    for name, (module, summary) in LAZY.items():
        if command in (name, "all"):
            importlib.import_module(module).register(sub)
        else:
            sub.add_parser(name, help=summary, add_help=False)
    return p


def _command_of(argv: list[str]) -> str | None:
    """The subcommand named in ``argv`` (the first word that is not an option)."""
    return next((a for a in argv if not a.startswith("-")), None)


def _internal_error(command: str, argv: list[str], e: BaseException) -> int:
    """Write the full traceback to a file and print a short message naming it."""
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    text = f"toylab {' '.join(argv)}\n{_version()}, Python {sys.version.split()[0]}\n\n" + "".join(
        traceback.format_exception(e)
    )
    try:
        fd, name = tempfile.mkstemp(prefix=f"toylab-{stamp}-", suffix=".txt")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        where = f"the full traceback is in {name}"
    except OSError:  # pragma: no cover - no writable temporary directory
        where = "the traceback could not be saved:\n" + text
    first = str(e).strip().splitlines()[0][:300] if str(e).strip() else ""
    print(f"toylab {command}: internal error ({type(e).__name__}{': ' + first if first else ''})."
          f"\nThis is a bug in toylab, not in your input; {where}. Please attach it to a bug "
          "report.", file=sys.stderr)  # fmt: skip
    return EXIT_INTERNAL


def main(argv: list[str] | None = None) -> int:
    """Run ``toylab`` with ``argv`` (default ``sys.argv[1:]``) and return the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = _command_of(argv)
    try:
        parser = build_parser(command)
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, --version, usage errors (argparse: status 2)
        return e.code if isinstance(e.code, int) else (0 if e.code is None else EXIT_USER)
    if not getattr(args, "fn", None):
        if command in LAZY:  # pragma: no cover - a lazy placeholder always gets replaced
            return EXIT_INTERNAL
        parser.print_help()
        return EXIT_USER
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    name = args.command
    from toylab import _compile_cache  # imports jax: only once a command runs

    _compile_cache.enable()  # a later process loads what this one compiles
    try:
        _refuse_image_run(name, args)
        return int(args.fn(args))
    except ToylabError as e:
        print(f"toylab {name}: error: {e}", file=sys.stderr)
        return EXIT_USER
    except KeyboardInterrupt:
        print("\ninterrupted; an interrupted run continues with 'toylab train --resume DIR'.",
              file=sys.stderr)  # fmt: skip
        return 130
    except Exception as e:
        if is_out_of_memory(e):
            print(f"toylab {name}: error: out of memory ({str(e).splitlines()[0][:200]}). "
                  "Lower [train] batch_size, num_eval_samples or num_train, use fewer seeds "
                  "or sweep values, or a smaller [model] hidden.", file=sys.stderr)  # fmt: skip
            return EXIT_USER
        if isinstance(e, OSError) and e.filename is not None:
            print(f"toylab {name}: error: cannot access {str(e.filename)!r}: "
                  f"{e.strerror or e}. Check the path and its permissions.", file=sys.stderr)  # fmt: skip
            return EXIT_USER
        return _internal_error(name, argv, e)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
