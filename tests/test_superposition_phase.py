"""The n=2, m=1 phase diagram: closed-form candidates, the exact antipodal loss at its
parameters, and the classification of trained weights."""

import numpy as np
import pytest

from toylab import ToylabError
from toylab.distributions import SparseFeatures
from toylab.network import Dense, Network, Tied
from toylab.superposition import (
    CANDIDATES,
    classify_solution,
    expected_loss,
    phase_diagram,
    trained_phase,
)


def _net(W, b=(0.0, 0.0)):
    W = np.asarray(W, np.float64)
    return Network((Dense(W.T, np.zeros(1)), Tied(0, np.asarray(b, float))), ("identity", "relu"))


@pytest.fixture(scope="module")
def diagram():
    return phase_diagram([0.1, 1.0, 10.0], [0.02, 1.0])


def test_candidate_losses_are_the_exact_losses_of_their_weights(diagram):
    for a, r in enumerate(diagram.relative_importance):
        for c, p in enumerate(diagram.density):
            dist = SparseFeatures((p, p), (1.0, r))
            one = expected_loss(_net([[1.0, 0.0]], [0.0, p / 2]), dist).value
            assert diagram.losses[a, c, 0] == pytest.approx(one, rel=1e-12, abs=1e-15)
            w0, w1, b0, b1 = diagram.params[a, c]
            anti = expected_loss(_net([[w0, w1]], [b0, b1]), dist).value
            assert diagram.losses[a, c, 2] == pytest.approx(anti, rel=1e-12)
            assert w0 >= 0.5 and w1 <= -0.5


def test_sparse_superposes_and_dense_keeps_the_important_feature(diagram):
    names = diagram.winner_names()
    assert set(names[:, 0]) == {"antipodal pair"}  # density 0.02
    assert names[0, 1] == "input:0 only" and names[2, 1] == "input:1 only"  # density 1
    assert np.all(diagram.margin >= 0)
    assert list(diagram.candidates) == list(CANDIDATES)


def test_antipodal_parameters_are_a_local_optimum(diagram):
    # first order: the projected gradient vanishes; and no nearby point in the box does
    # better, by the general expected_loss (an independent computation of the loss)
    assert np.all(diagram.projected_gradient < 1e-7)
    rng = np.random.default_rng(0)
    for a, c in [(0, 0), (1, 0), (2, 1)]:
        r, p = diagram.relative_importance[a], diagram.density[c]
        dist = SparseFeatures((p, p), (1.0, r))
        w0, w1, b0, b1 = diagram.params[a, c]
        for step in 1e-3 * rng.normal(size=(6, 4)):
            W = [[max(w0 + step[0], 0.5), min(w1 + step[1], -0.5)]]
            near = expected_loss(_net(W, [b0 + step[2], b1 + step[3]]), dist).value
            assert near >= diagram.losses[a, c, 2] - 1e-12  # rounding of both losses


def test_classify_and_trained_phase():
    assert classify_solution(_net([[1.0, -0.9]])) == "antipodal pair"
    assert classify_solution(_net([[0.1, 1.0]])) == "input:1 only"
    assert classify_solution(_net([[0.9, 0.8]])) == "other"
    assert classify_solution(_net([[0.0, 0.0]])) == "none"
    t = trained_phase([(1.0, 0.1, _net([[1.0, -1.0]]), 0.3), (1.0, 0.1, _net([[1.0, 0.0]]), 0.2),
                       (2.0, 0.1, _net([[0.0, 1.0]]), 0.5)])  # fmt: skip
    assert t.solution.tolist() == [["input:0 only"], ["input:1 only"]]
    assert t.num_members.tolist() == [[2], [1]] and t.loss[0, 0] == 0.2
    with pytest.raises(ToylabError, match="shape"):
        classify_solution(_net(np.eye(2)[:1].repeat(2, 0)))
