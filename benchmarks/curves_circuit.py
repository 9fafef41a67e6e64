"""The handwritten curve circuit against a trained conv run: tuning, correlation, transplant.

For a run trained on :class:`~toylab.distributions.CurveImages` orientation bins with
the circuit's geometry (``conv = [{kernel = 5, pool = "avg", pool_window = 2}, {kernel =
3, ...}]``, e.g. ``/work/wt2/curves_example.toml``) it prints

* the circuit's certified claim (:meth:`toylab.curves.CurveCircuit.verify`) at one
  orientation on the run's family;
* per member: the circuit orientation (every ``--step`` degrees, ``kappa = 0.15``) whose
  best ``conv_1`` channel correlates most over random ``(theta, kappa)`` (sampled,
  Fisher-z 95%), the certified enclosure of the two theta tuning curves' correlation,
  and the transplant of that circuit into that channel: accuracy change and the ablation's
  on one sample of ``--samples`` images (sampled, paired 95% intervals).

Times are wall-clock seconds of this run.

Run:  python benchmarks/curves_circuit.py RUN_DIR [--samples 10000] [--step 45]
"""

from __future__ import annotations

import argparse
import math
import time

from toylab.curves import certified_correlation, compare_circuit, curve_circuit, transplant
from toylab.runs import load_run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir")
    ap.add_argument("--samples", type=int, default=10_000)
    ap.add_argument("--step", type=int, default=45)
    ap.add_argument("--compare", type=int, default=2_000)
    args = ap.parse_args()
    run = load_run(args.run_dir)
    fam = run.dist_of(0)
    t0 = time.perf_counter()
    v = curve_circuit(fam, math.radians(60), 0.15).verify(fam, max_boxes=400)
    nums = ", ".join(f"{k} {x:.4g}" for k, x in v.numbers.items())
    print(f"circuit 60 deg: passed {v.passed} [{v.tier}]: {nums} ({time.perf_counter() - t0:.1f}s)")
    for m in range(run.num_members):
        t0 = time.perf_counter()
        model = run.model(m)
        cands = []
        for d in range(0, 360, args.step):
            circ = curve_circuit(fam, math.radians(d), 0.15)
            cands.append((compare_circuit(circ, model, fam, num_samples=args.compare), d, circ))
        cmp, deg, circ = max(cands, key=lambda t: t[0].best_correlation)
        cc = certified_correlation(circ, model, fam, cmp.best)
        tr = transplant(model, cmp.best, circ, fam, num_samples=args.samples, seed=123)
        print(
            f"member {m}: circuit {deg} deg ~ conv_1:{cmp.best}: r = {cmp.best_correlation:.3f}"
            f" [{cmp.best_interval[0]:.3f}, {cmp.best_interval[1]:.3f}] [sampled]; theta tuning"
            f" correlation in [{cc.lower:.3f}, {cc.upper:.3f}] [certified]; transplant (scale"
            f" {tr.scale:.3g}) {tr.accuracy_before:.4f} -> {tr.accuracy_after:.4f}, change"
            f" {tr.effect:+.4f} [{tr.effect_interval[0]:+.4f}, {tr.effect_interval[1]:+.4f}];"
            f" ablation {tr.ablation_effect:+.4f} [{tr.ablation_interval[0]:+.4f},"
            f" {tr.ablation_interval[1]:+.4f}] [sampled, {tr.num_samples} images]"
            f" ({time.perf_counter() - t0:.1f}s)"
        )


if __name__ == "__main__":
    main()
