"""Every run kind gets a report whose numbers say what they are (issue 12, sections 1 and 3)."""

import json

import numpy as np
import pytest

from toylab.config import parse_config
from toylab.exact import finite_accuracy
from toylab.report import fmt_number, write_report
from toylab.runs import start_run


def _relu_mlp_logits(params, m, x):
    """An independent float64 forward pass from the raw stacked arrays of a ReLU MLP."""
    h = np.asarray(x, np.float64)
    layers = params["layers"]
    n = len(layers)
    for k in range(n):
        W = np.asarray(layers[k]["kernel"][...], np.float64)[m]
        b = np.asarray(layers[k]["bias"][...], np.float64)[m]
        h = h @ W + b
        if k < n - 1:
            h = np.maximum(h, 0.0)
    return h


@pytest.fixture(scope="module")
def modular(tmp_path_factory):
    cfg = {"name": "mod", "seeds": [0, 1], "distribution": {"name": "modular_arithmetic", "p": 5},
           "model": {"kind": "onehot_mlp", "hidden": [16]},
           "train": {"data": "full", "train_fraction": 0.6, "num_steps": 60, "log_every": 30,
                     "checkpoints": []}}  # fmt: skip
    return start_run(parse_config(cfg), tmp_path_factory.mktemp("mod") / "run")


def test_finite_tasks_report_exact_train_and_test_accuracy(modular):
    run = modular
    text = write_report(run).read_text()
    assert "held-out accuracy (sampled)" not in text and "standard error" not in text
    assert "## Accuracy (exact: every input of the finite domain)" in text
    summary = json.loads((run.path / "report" / "summary.json").read_text())
    x = np.asarray(run.dist.domain.inputs, np.float64)
    y = np.asarray(run.dist.domain.labels)
    for m in range(run.num_members):
        mask = np.asarray(run.ensemble.train_data[m], bool)
        assert mask.sum() == 15 and (~mask).sum() == 10  # round(0.6 * 25) inputs to train on
        correct = np.argmax(_relu_mlp_logits(run.params, m, x), -1) == y
        want = {"train": correct[mask].mean(), "test": correct[~mask].mean(),
                "domain": correct.mean()}  # fmt: skip
        got = summary["members"][m]["exact"]
        assert got["tier"] == "exact"
        for key, value in want.items():  # exact: counts over the same inputs, no tolerance
            assert got[key] == pytest.approx(value, abs=0), key
        row = (f"| {m} (seed {m}) | {fmt_number(want['train'], 6)} | "
               f"{fmt_number(want['test'], 6)} | {fmt_number(want['domain'], 6)} |")  # fmt: skip
        assert row in text
        # the training-time metric is the whole-domain accuracy, not a held-out one (a float32
        # mean of 25 zeros and ones: exact up to float32 rounding of k/25, < 1e-7)
        assert float(run.metrics[-1]["accuracy"][m]) == pytest.approx(want["domain"], abs=1e-7)


def test_finite_tasks_get_exact_neuron_statistics_in_the_report_and_the_atlas(modular, tmp_path):
    """Every hidden neuron's P(active), mean, max and min on the finite domain, against an
    independent enumeration of the raw arrays (uniform probabilities over 25 inputs)."""
    from toylab.viz.atlas import write_atlas

    run = modular
    text = write_report(run).read_text()
    assert "## Every hidden neuron (exact: every input of the finite domain)" in text
    x = np.asarray(run.dist.domain.inputs, np.float64)
    probs = np.asarray(run.dist.domain.probs, np.float64)
    for m in range(run.num_members):
        W = np.asarray(run.params["layers"][0]["kernel"][...], np.float64)[m]
        b = np.asarray(run.params["layers"][0]["bias"][...], np.float64)[m]
        h = np.maximum(x @ W + b, 0.0)
        for u in (0, 7, 15):
            row = (f"| `hidden_0:{u}` | {fmt_number(probs @ (h[:, u] > 0), 6)} | "
                   f"{fmt_number(probs @ h[:, u], 6)} | {fmt_number(h[:, u].max())} | "
                   f"{fmt_number(h[:, u].min())} |")  # fmt: skip
            assert row in text, row
    out = write_atlas(run, tmp_path / "atlas", members=[0], dynamics=False, circuits=False)
    page = (out.parent / "member0" / "hidden_0-7.html").read_text()
    W = np.asarray(run.params["layers"][0]["kernel"][...], np.float64)[0]
    b = np.asarray(run.params["layers"][0]["bias"][...], np.float64)[0]
    h = np.maximum(x @ W + b, 0.0)
    assert f"{probs @ (h[:, 7] > 0):.6f}" in page and f"{probs @ h[:, 7]:.6f}" in page


def test_finite_accuracy_without_a_training_mask():
    from flax import nnx

    from toylab.distributions import BooleanFunction
    from toylab.models import MLP

    dist = BooleanFunction(n=3, fn="and")
    model = MLP((3, 2), "relu", rngs=nnx.Rngs(0))  # a linear classifier
    acc = finite_accuracy(model, dist)
    x = np.asarray(dist.domain.inputs, np.float64)
    W = np.asarray(model.layers[0].kernel[...], np.float64)
    b = np.asarray(model.layers[0].bias[...], np.float64)
    logits = x @ W + b  # zero biases at initialisation: the all-zero input is a tie
    unique = np.array([np.sum(row == row.max()) == 1 for row in logits])
    want = np.mean((np.argmax(logits, -1) == np.asarray(dist.domain.labels)) & unique)
    assert acc["domain"] == want and acc["train"] is None and acc["test"] is None


def test_superposition_report_states_exact_metrics(tmp_path, capsys):
    cfg = {"name": "sparse", "seeds": [0, 1],
           "distribution": {"name": "sparse_features", "probs": [0.1] * 4,
                            "importance": [1.0, 0.7, 0.5, 0.2]},
           "model": {"kind": "superposition_relu", "hidden": [2]},
           "train": {"loss": "importance_mse", "num_steps": 20, "log_every": 10,
                     "checkpoints": []}}  # fmt: skip
    run = start_run(parse_config(cfg), tmp_path / "run")
    text = write_report(run).read_text()
    assert "nan" not in text.lower()
    assert "held-out importance_mse loss (sampled)" in text
    assert "## Superposition" in text
    summary = json.loads((run.path / "report" / "summary.json").read_text())
    for m in range(2):
        loss = float(run.metrics[-1]["loss"][m])
        assert f"| {m} (seed {m}) | {fmt_number(loss, 6)} |" in text
        # independent: the raw stacked parameters, W of shape (m, n) per member
        W = np.asarray(run.params["W"][...], np.float64)[m]
        norms = np.sqrt((W**2).sum(0))
        gram = W.T @ W
        d = np.where(norms > 0, norms**4 / np.maximum((gram**2).sum(1), 1e-300), 0.0)
        got = summary["members"][m]["superposition"]
        assert got["tier"] == "exact"
        # float64 from the same float32 weights: agreement to rounding (relative 1e-12)
        assert got["dimensions_per_feature"] == pytest.approx(2 / (W**2).sum(), rel=1e-12)
        assert got["num_represented"] == int((norms > 0.5).sum())
        np.testing.assert_allclose(got["dimensionality"], d, rtol=1e-12)
        assert (run.path / "report" / f"superposition_member{m}.png").stat().st_size > 10_000
    # claims about its features are checked on the run (exit 0: holds, 1: fails, never 2)
    from toylab.cli import main

    claims = tmp_path / "c.toml"
    claims.write_text('[[claim]]\nneuron = "input:0"\nstatement = "s"\nkind = "represented"\n'
                      "threshold = 0.0\n")  # fmt: skip
    assert main(["check", str(run.path), str(claims)]) == 0
    assert "input:0" in (run.path / "report" / "claims.md").read_text()
    assert main(["info", str(run.path)]) == 0


def test_report_keeps_the_stored_comparison(tmp_path):
    """`toylab report DIR` after `toylab compare DIR` keeps the methods section (it was
    dropped before). The stored file is the one the CLI writes (report.write_comparison)."""
    from toylab.methods.compare import CompareConfig, CompareResult

    cfg = {"name": "cmp", "seeds": [0], "distribution": {"name": "two_blobs"},
           "model": {"hidden": [2]}, "train": {"num_steps": 5, "log_every": 5,
                                               "checkpoints": []}}  # fmt: skip
    run = start_run(parse_config(cfg), tmp_path / "run")
    assert "Sampled methods vs the exact answer" not in write_report(run).read_text()
    from toylab.methods.compare import METHODS
    from toylab.report import write_comparison

    summary = {m: {"rows": 2, "misleads": 1, "rate": 0.5, "neurons": ["m0/hidden_0:1"]}
               for m in METHODS}  # fmt: skip
    summary["unreachable"] = 0
    res = CompareResult((), summary, CompareConfig.quick(), 1.5, {"exact analysis": 1.0}, 1)
    write_comparison(run, res)
    assert CompareResult.from_json(json.loads((run.path / "compare" / "compare.json")
                                              .read_text())).summary == summary  # fmt: skip
    text = write_report(run).read_text()
    assert "## Sampled methods vs the exact answer" in text
    assert "| feature_visualization | 2 | 1 | 50% | m0/hidden_0:1 |" in text
    (run.path / "compare" / "compare.json").write_text('{"rows": []}')
    text = write_report(run).read_text()
    assert "could not be read" in text and "rerun `toylab compare`" in text


@pytest.mark.parametrize(
    "value, text",
    [(-1e-7, "0.0000"), (-0.0, "0.0000"), (-0.00004, "0.0000"), (-0.00006, "-0.0001"),
     (0.5, "0.5000"), (float("nan"), "nan"), (None, "nan"), (float("-inf"), "-inf")],
)  # fmt: skip
def test_no_negative_zero(value, text):
    assert fmt_number(value) == text


def test_negative_zero_never_reaches_a_page():
    from toylab.viz.atlas import _fmt, _signed

    assert _signed(-1e-9) == "0.0000" and _signed(0.25) == "+0.2500" and _signed(-0.25) == "-0.2500"
    assert _fmt(-2e-5) == "-2e-05" and _fmt(-0.0) == "0.0000" and _fmt(-8.9e-16) == "0.0000"
    assert _fmt(np.int64(64)) == "64" and _fmt(3) == "3"
    assert "-0.0" not in _fmt(np.array([-0.0, -1e-7, 0.25]))
