"""The universality report (``toylab universality RUN``) and its atlas links.

References: :func:`toylab.universality.match_ensemble` called directly on the same run
(the report must print its numbers, not others), a brute-force Monte Carlo correlation
of a family's units (an independent check that a family's units are alike), and the
files a user put in ``RUN/universality`` (never touched).
"""

import json
import shutil

import jax
import numpy as np
import pytest

from toylab.cli import main
from toylab.config import parse_config
from toylab.runs import load_run, start_run
from toylab.universality import match_ensemble

CONFIG = {
    "name": "tiny-universality",
    "seeds": {"range": 6},
    "distribution": {"name": "two_blobs"},
    "model": {"hidden": [4, 4], "activation": "relu"},
    "train": {"num_steps": 300, "log_every": 100, "learning_rate": 0.05},
}
BASELINE_SIZE = 4


@pytest.fixture(scope="module")
def reported(tmp_path_factory):
    """A tiny 6-seed run and its report, written once through the CLI."""
    from toylab.universality import _report

    path = tmp_path_factory.mktemp("univ") / "run"
    start_run(parse_config(CONFIG), path)
    with pytest.MonkeyPatch.context() as mp:  # smaller side sections: this suite's time
        for name, value in (("CKA_BASELINE_SIZE", 2), ("CLUSTER_MEMBERS", 2),
                            ("CLUSTER_SHUFFLES", 20), ("DENSITY_MEMBERS", 1),
                            ("FAMILY_MEMBERS", 3), ("FAMILY_ROWS", 2)):  # fmt: skip
            mp.setattr(_report, name, value)
        args = ["universality", str(path), "--baseline-size", str(BASELINE_SIZE), "--quiet"]
        assert main(args) == 0
    return load_run(path)


def test_report_numbers_are_match_ensembles(reported):
    out = reported.path / "universality"
    index = (out / "index.md").read_text()
    summary = json.loads((out / "summary.json").read_text())
    em = match_ensemble(reported, reference=0, baseline_size=BASELINE_SIZE)
    assert summary["members"] == list(range(6)) and summary["reference"] == 0
    assert summary["tier"] == em.tier
    for sc in em.scores:
        got = summary["scores"][sc.layer]
        for kind, d in {"trained": sc.trained, **sc.baselines}.items():
            # the same float64 computation: equal to rounding of the JSON round trip
            np.testing.assert_allclose(got[kind]["quantiles"], d.quantiles, rtol=0, atol=1e-12)
            assert got[kind]["num_units"] == len(d.values)
            assert got[kind]["num_dead"] == d.num_dead
            assert f"| {d.median:.3f} |" in index  # the table prints the median
        assert got["above_baseline_p95"] == pytest.approx(sc.above, abs=1e-12)
    fams = [f for f in em.families]
    assert [f["fraction"] for f in summary["families"]] == pytest.approx(
        [f.fraction for f in fams], abs=1e-12
    )
    assert [[tuple(u[:2]) for u in f["units"]] for f in summary["families"]] == [
        [tuple(u) for u in f.units] for f in fams
    ]
    for section in ("Best-match correlations", "Recurring families", "Dead, duplicate",
                    "Linear CKA", "clusterability", "Density or decision boundary"):  # fmt: skip
        assert section in index
    for name in ("scores.png", *summary["family_figures"].values()):
        assert (out / name).stat().st_size > 1000
    assert (out / "universality.json").is_file()


def test_a_family_is_alike_by_monte_carlo(reported):
    """Independent check: the units of the most frequent family correlate (sampled) as
    the report says."""
    summary = json.loads((reported.path / "universality" / "summary.json").read_text())
    fam = summary["families"][0]
    (m0, a0, _), (m1, a1, c1) = fam["units"][:2]
    x = np.asarray(reported.dist_of(0).sample(jax.random.key(7), 200_000).x, np.float64)

    def unit(m, addr):
        layer, u = addr.split(":")
        return reported.model(m).to_network().numpy(np.float64).forward(x)[layer][:, int(u)]

    rho = np.corrcoef(unit(m0, a0), unit(m1, a1))[0, 1]
    # 200k samples: the standard error of a correlation near 1 is (1 - ρ²)/√n < 0.003;
    # 0.02 leaves room for heavy tails of ReLU units
    assert rho == pytest.approx(c1, abs=0.02)


def test_foreign_universality_dir_is_refused_and_untouched(reported, tmp_path, capsys):
    dst = tmp_path / "run"
    shutil.copytree(reported.path, dst, ignore=shutil.ignore_patterns("universality"))
    mine = dst / "universality"
    mine.mkdir()
    (mine / "notes.txt").write_text("my notes")
    assert main(["universality", str(dst), "--quiet"]) == 2
    assert "did not write" in capsys.readouterr().err
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]
    assert (mine / "notes.txt").read_text() == "my notes"


@pytest.mark.parametrize(
    ("flags", "needle"),
    [
        (["--reference", "9"], "--reference"),
        (["--members", "0", "7"], "--members"),
        (["--members", "2"], "--members"),
        (["--members", "1", "1"], "--members"),
        (["--members", "1", "2", "--reference", "0"], "--reference"),
        (["--baseline-size", "0"], "--baseline-size"),
    ],
)
def test_bad_flags_exit_2_naming_the_flag(reported, flags, needle, capsys):
    assert main(["universality", str(reported.path), "--quiet", *flags]) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err


def test_missing_run_exits_2(tmp_path):
    assert main(["universality", str(tmp_path / "missing"), "--quiet"]) == 2


def test_atlas_links_each_unit_to_its_matches(reported, tmp_path):
    from toylab.viz.atlas import neuron_filename, write_atlas

    summary = json.loads((reported.path / "universality" / "summary.json").read_text())
    fam = summary["families"][0]
    (m0, a0, _), (m1, a1, c1) = fam["units"][:2]
    write_atlas(reported, tmp_path / "atlas", members=[m0, m1], dynamics=False,
                circuits=False, num=40)  # fmt: skip
    page = (tmp_path / "atlas" / f"member{m0}" / neuron_filename(a0)).read_text()
    assert "Matches in other seeds" in page and fam["id"] in page
    assert f'href="../member{m1}/{neuron_filename(a1)}"' in page
    assert f"{c1:.3f}" in page
    back = (tmp_path / "atlas" / f"member{m1}" / neuron_filename(a1)).read_text()
    assert f'href="../member{m0}/{neuron_filename(a0)}"' in back
