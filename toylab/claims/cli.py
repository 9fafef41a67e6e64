"""``toylab check RUN_DIR claims.toml``: guard a run's claims in CI.

Prints a verdict table, writes it to ``RUN_DIR/report/claims.md`` and
``claims.json`` (atomically), and returns 0 when every claim holds, 1 when one
fails (the only use of exit status 1 in toylab). Bad claim files and flags raise
:class:`toylab.ToylabError` (exit status 2 from the ``toylab`` command).
:func:`register` adds the subcommand to a parser.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from toylab._errors import ToylabError

__all__ = ["cmd_check", "format_table", "main", "register"]


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``check`` to an ``argparse`` subparsers object."""
    c = subparsers.add_parser(
        "check",
        help="check a claim file against a run (exit 1 if a claim fails)",
        description="Decide every claim of CLAIMS (TOML, see toylab.claims.files) about a "
        "trained member of RUN_DIR: exactly where possible, else by a counterexample search "
        "or sampling. Writes RUN_DIR/report/claims.md and claims.json.",
    )
    c.add_argument("run_dir", help="run directory")
    c.add_argument("claims", help="claim file (TOML)")
    c.add_argument("--member", type=int, default=0, help="ensemble member (default 0)")
    c.add_argument("--budget", type=int, default=200, help="inputs per search (default 200)")
    c.add_argument("--samples", type=int, default=20_000,
                   help="samples per sampled verdict (default 20000)")  # fmt: skip
    c.add_argument("--seed", type=int, default=0, help="seed of searches and samples")
    c.add_argument("--quiet", action="store_true",
                   help="no progress output (also off when stdout is not a terminal)")  # fmt: skip
    c.set_defaults(fn=cmd_check)
    return c


def _row(name: str, r: Any) -> list[str]:
    margin = f"{r.margin:.4g}"
    extra = ""
    if r.witness is not None and len(r.witness) <= 8:
        extra = "x = [" + ", ".join(f"{v:.4g}" for v in r.witness) + "]"
    elif r.witness is not None:  # an image: the search's detail names its parameters
        extra = str(getattr(r, "detail", "") or f"a counterexample of {len(r.witness)} values")
    if r.failing_mass is not None:
        extra += f" P(fail) = {r.failing_mass:.3g}"
    if r.estimate is not None and r.failing_mass is None:
        extra += f" estimate = {r.estimate:.4g}"
    if r.interval is not None:
        extra += f" CI [{r.interval[0]:.3g}, {r.interval[1]:.3g}]"
    return [name, r.neuron, "holds" if r.holds else "FAILS", r.tier, margin, extra.strip()]


def format_table(names: list[str], results: list[Any], *, markdown: bool = False) -> str:
    """A verdict table, plain text or markdown."""
    head = ["claim", "neuron", "verdict", "tier", "margin", "evidence"]
    rows = [_row(n, r) for n, r in zip(names, results, strict=True)]
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
        return "\n".join(lines)
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join([fmt.format(*head), fmt.format(*("-" * w for w in widths))]
                     + [fmt.format(*row) for row in rows])  # fmt: skip


def cmd_check(args: argparse.Namespace) -> int:
    """Run ``toylab check``; returns 0 (all hold) or 1 (some fail)."""
    from toylab._progress import Progress

    budget = int(getattr(args, "budget", 200))
    samples = int(getattr(args, "samples", 20_000))
    seed = int(getattr(args, "seed", 0))
    member = int(getattr(args, "member", 0))
    for flag, value, low in (("--budget", budget, 1), ("--samples", samples, 1),
                             ("--seed", seed, 0), ("--member", member, 0)):  # fmt: skip
        if value < low:
            raise ToylabError(f"{flag} must be an integer >= {low}, got {value}.")
    progress = Progress.for_cli(quiet=bool(getattr(args, "quiet", False)))

    from toylab.claims import check_all, load_claims
    from toylab.runs import load_run
    from toylab.runs.io import atomic_write_json, atomic_write_text

    try:
        claims = load_claims(args.claims)
    except UnicodeDecodeError as e:
        raise ToylabError(
            f"claim file {str(args.claims)!r} is not UTF-8 text (byte {e.object[e.start]:#04x} "
            f"at position {e.start}). Save it as UTF-8."
        ) from None
    run = load_run(args.run_dir)
    if member >= run.num_members:
        raise ToylabError(
            f"--member must be in 0..{run.num_members - 1} (the run has {run.num_members} "
            f"member(s)), got {member}."
        )
    model = run.model(member)
    with progress.task(f"checking {len(claims)} claim(s) about member {member}"):
        results = check_all(claims, model, run.dist_of(member), budget=budget, num_samples=samples,
                            seed=seed)  # fmt: skip
    names = [c.name or c.statement for c in claims]
    print(format_table(names, results))
    num_failed = sum(not r.holds for r in results)
    report = Path(run.path) / "report"
    md = [f"# Claims about {run.path.name}, member {member}", "",
          f"Claim file: `{args.claims}`. {len(results) - num_failed} of {len(results)} hold.",
          "", format_table(names, results, markdown=True), "", "## Details", ""]  # fmt: skip
    for name, r in zip(names, results, strict=True):
        md += [f"### {name}", "", "```", r.explain(), "```", ""]
    atomic_write_text(report / "claims.md", "\n".join(md))
    atomic_write_json(report / "claims.json", {
        "run": str(run.path), "member": member, "claims_file": str(args.claims),
        "num_claims": len(results), "num_failed": num_failed,
        "results": [{"name": n, **r.to_dict()} for n, r in zip(names, results, strict=True)],
    })  # fmt: skip
    print(f"{len(results) - num_failed} of {len(results)} claims hold; "
          f"report: {report / 'claims.md'}")  # fmt: skip
    return 1 if num_failed else 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone ``check`` command with the ``toylab`` exit codes (0, 1, 2, 3): the same as
    ``toylab check ARGS``."""
    from toylab.cli import main as toylab_main

    return toylab_main(["check", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
