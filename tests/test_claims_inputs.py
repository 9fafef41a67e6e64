"""Every class of bad input to toylab.claims gets the standard one-line error.

The standard shape (toylab._errors.fail): ``where: name must be expected, got value. fix``,
one line, naming the argument (or file key) and the value. Classes: non-finite
coordinates, neuron addresses that are not strings, out-of-range probabilities and
accuracy differences, wrong types, unknown or renamed names, structural mistakes,
mismatches found at check time, and claim files that cannot be read.
"""

import math

import numpy as np
import pytest

from toylab import ToylabError
from toylab.claims import (
    Claim,
    Ellipse,
    HalfPlane,
    Polygon,
    ablation_lowers_accuracy,
    argmax_near,
    box_region,
    check,
    clopper_pearson,
    dead,
    fires_on_mass,
    fires_only_in,
    load_claims,
    matches_circuit,
    monotone,
    wilson,
)
from toylab.distributions import BooleanFunction, two_blobs
from toylab.network import Network

NET = Network.from_weights([np.eye(2), np.ones((2, 2))])
DIST = two_blobs()
BOOL = BooleanFunction(n=2, fn="and")
NAN, INF = math.nan, math.inf
I2 = ((1.0, 0.0), (0.0, 1.0))
PLANE = ((0.0, 0.0), (1.0, 0.0), (0.0, 1.0))


def _dead(**kwargs):
    return check(dead("hidden_0:0"), NET, DIST, **kwargs)


NON_FINITE = [
    (lambda: HalfPlane((NAN, 0.0)), r"HalfPlane: normal\[0\] must be finite, got nan"),
    (lambda: HalfPlane((1.0, 0.0), INF), "HalfPlane: offset must be finite, got inf"),
    (lambda: Polygon(((0, 0), (1, NAN), (0, 1))), "Polygon: vertices must be finite"),
    (lambda: box_region((NAN, 0), (1, 1)), r"box_region: low\[0\] must be finite"),
    (lambda: Ellipse(2.0, mean=(NAN, 0.0), cov=I2), r"Ellipse: mean\[0\] must be finite"),
    (lambda: Ellipse(2.0, mean=(0.0, 0.0), cov=((INF, 0), (0, 1))), "cov must be finite"),
    (lambda: argmax_near("hidden_0:0", (NAN, 0.0), 1.0), r"point\[0\] must be finite"),
    (lambda: argmax_near("hidden_0:0", (0.0, 0.0), INF), "eps must be finite"),
    (lambda: monotone("hidden_0:0", (INF, 0.0)), r"direction\[0\] must be finite"),
    (lambda: _dead(plane=((NAN, 0), (1, 0), (0, 1))), r"check: plane\[0\] must be finite"),
    (lambda: _dead(plane=PLANE, window=((0, 0), (1, NAN), (0, 1))), "check: window must be"),
]
NEURONS = [
    (lambda: dead(3), "dead: neuron must be an address like 'hidden_0:3'.*, got 3"),
    (lambda: dead(["hidden_0:0", 1]), r"dead: neuron must be .*\(a string\), got 1\."),
    (lambda: dead(None), "dead: neuron must be .*, got None"),
    (lambda: dead([]), r"dead: neuron must be .*, got \[\]"),
    (lambda: fires_on_mass({"a": 1}, 0.5, cls=0), "fires_on_mass: neuron must be"),
    (lambda: matches_circuit("hidden_0:0", NET, 5, 0.1), "circuit_neuron must be .*, got 5"),
    (lambda: dead("hidden0:0"), "dead: bad neuron 'hidden0:0'.*Did you mean 'hidden_0'"),
    (lambda: check(dead("hiden_0:0"), NET, DIST), "Did you mean 'hidden_0'"),
    (lambda: check(dead("hidden_0:7"), NET, DIST), "has 2 units"),
    (lambda: check(dead("input:0"), NET, DIST), "a hidden or output neuron"),
]
RANGES = [
    (lambda: fires_on_mass("hidden_0:0", 1.5, cls=0), "q must be <= 1.0, got 1.5"),
    (lambda: fires_on_mass("hidden_0:0", -0.1, cls=0), "q must be >= 0.0, got -0.1"),
    (lambda: fires_on_mass("hidden_0:0", NAN, cls=0), "q must be finite, got nan"),
    (lambda: ablation_lowers_accuracy("hidden_0:0", 0, 2.0), "delta must be <= 1.0, got 2.0"),
    (lambda: _dead(confidence=1.5), "check: confidence must be <= 0.999999, got 1.5"),
    (lambda: _dead(confidence=0.2), "check: confidence must be >= 0.5, got 0.2"),
    (lambda: wilson(5, 3), "wilson: successes must be <= 3, got 5"),
    (lambda: clopper_pearson(1, 3, 1.0), "clopper_pearson: confidence must be <="),
    (lambda: Ellipse(-1.0, component=0), "Ellipse: k must be > 0, got -1.0"),
    (lambda: argmax_near("hidden_0:0", (0, 0), -1.0), "eps must be >= 0"),
]
TYPES = [
    (lambda: fires_on_mass("hidden_0:0", "0.5", cls=0), "q must be a real number, got '0.5'"),
    (lambda: fires_on_mass("hidden_0:0", True, cls=0), "q must be a real number, got True"),
    (lambda: monotone("hidden_0:0", (1, 0), decreasing="yes"), "decreasing must be true or"),
    (lambda: monotone("hidden_0:0", "x1"), "direction must be a sequence of numbers"),
    (lambda: monotone("hidden_0:0", (0.0, 0.0)), "direction must be a non-zero vector"),
    (lambda: fires_on_mass("hidden_0:0", 0.5, cls=0.5), "cls must be an integer, got 0.5"),
    (lambda: fires_on_mass("hidden_0:0", 0.5, component=-1), "component must be >= 0"),
    (lambda: fires_only_in("hidden_0:0", "x > 0"), "region must be a region"),
    (lambda: matches_circuit("hidden_0:0", "relu", "hidden_0:0", 0.1), "circuit must be"),
    (lambda: Claim.from_function("hidden_0:0", "s", 3), "fn must be a callable, got 3"),
    (lambda: dead("hidden_0:0", statement=5), "dead: statement must be a string"),
    (lambda: _dead(budget=0), "check: budget must be >= 1, got 0"),
    (lambda: _dead(num_samples=1.5), "check: num_samples must be an integer, got 1.5"),
    (lambda: _dead(seed=-1), "check: seed must be >= 0, got -1"),
    (lambda: check("dead", NET, DIST), "check: claim must be a toylab.claims.Claim"),
    (lambda: check(dead("hidden_0:0"), "net", DIST), "check: model must be"),
    (lambda: check(dead("hidden_0:0"), NET, "blobs"), "check: dist must be"),
    (lambda: Ellipse(2.0, component=0, num_vertices=3), "num_vertices must be >= 8"),
]
NAMES = [
    (lambda: _dead(tier="exactly"), "check: tier must be one of .* Did you mean 'exact'"),
    (lambda: Claim("fires_only_inn", "hidden_0:0"), "Did you mean 'fires_only_in'"),
    (lambda: Claim("fires_on_mass", "hidden_0:0", params={"q": 0.5, "class": 0}),
     "unknown parameter 'class'"),
    (lambda: fires_only_in("hidden_0:0", {"kind": "halfplain", "normal": [1, 0]}),
     r"region.kind must be one of .* Did you mean 'halfplane'"),
    (lambda: fires_only_in("hidden_0:0", {"kind": "box", "low": [0, 0], "hi": [1, 1]}),
     "unknown key 'hi' in a box region"),
]  # fmt: skip
STRUCTURE = [
    (lambda: fires_on_mass("hidden_0:0", 0.5), "give exactly one of cls=... .* or component="),
    (lambda: fires_on_mass("hidden_0:0", 0.5, cls=0, component=0), "exactly one of cls"),
    (lambda: Ellipse(2.0, component=0, mean=(0, 0), cov=I2), "component/mean must be given"),
    (lambda: Ellipse(2.0, mean=(0, 0), cov=((1, 2), (2, 1))), "positive definite"),
    (lambda: Polygon(((0, 0), (2, 0), (1, 0.2), (1, 2))), "convex polygon"),
    (lambda: Polygon(((0, 0), (1, 1))), "at least 3"),
    (lambda: box_region((0, 0), (-1, 1)), "box_region: high must be > low"),
    (lambda: _dead(plane=((0, 0), (1, 0), (2, 0))), "two linearly independent directions"),
    (lambda: _dead(plane=((0, 0), (1, 0))), r"plane must be a triple \(origin, d1, d2\)"),
    (lambda: _dead(window=((0, 0), (1, 0), (0, 1))), "window must be None without a plane"),
]
AT_CHECK = [
    (lambda: check(fires_only_in("hidden_0:0", HalfPlane((1, 0, 0))), NET, DIST),
     "region must be a half-plane with a normal of length 2"),
    (lambda: check(monotone("hidden_0:0", (1, 0, 0)), NET, DIST),
     "direction must be a vector of length 2"),
    (lambda: check(argmax_near("hidden_0:0", (1, 0, 0), 1.0), NET, DIST),
     "point must be a point with 2 coordinates"),
    (lambda: check(fires_on_mass("hidden_0:0", 0.5, cls=5), NET, DIST),
     r"check: cls must be a class in 0..1, got 5"),
    (lambda: check(fires_on_mass("hidden_0:0", 0.5, component=5), NET, DIST),
     r"check: component must be in 0..1, got 5"),
    (lambda: check(fires_on_mass("hidden_0:0", 0.5, component=0), NET, BOOL),
     "component must be omitted on a finite domain"),
    (lambda: check(fires_only_in("hidden_0:0", Ellipse(2.0, component=0)), NET, BOOL),
     "dist must be a Gaussian mixture"),
    (lambda: check(ablation_lowers_accuracy("output:0", 0, 0.1), NET, DIST),
     "neuron must be a hidden post-activation neuron"),
    (lambda: check(dead("hidden_0:0"), NET, two_blobs(dim=3)), "a network with 3 inputs"),
    (lambda: check(dead("hidden_0:0"), NET, BOOL, plane=PLANE),
     "plane must be None for a finite domain"),
    (lambda: check(monotone("hidden_0:0", (1, 0)), NET, BOOL),
     "needs a continuous domain"),
    (lambda: check(fires_on_mass("hidden_0:0", 0.5, cls=0), NET, DIST, tier="searched"),
     "cannot decide"),
]  # fmt: skip

CLASSES = {
    "non_finite": NON_FINITE,
    "neurons": NEURONS,
    "ranges": RANGES,
    "types": TYPES,
    "names": NAMES,
    "structure": STRUCTURE,
    "at_check": AT_CHECK,
}


@pytest.mark.parametrize("cls", sorted(CLASSES))
def test_bad_python_arguments_get_one_line_errors(cls):
    for make, match in CLASSES[cls]:
        with pytest.raises(ToylabError, match=match) as info:
            make()
        assert "\n" not in str(info.value), str(info.value)


def _file(tmp_path, body, name="c.toml"):
    path = tmp_path / name
    path.write_text(f'[[claim]]\nneuron = "hidden_0:0"\nstatement = "s"\n{body}\n')
    return path


FILE_CASES = [
    ('kind = "argmax_near"\npoint = [nan, 0.0]\neps = 1.0', r"point\[0\] must be finite"),
    ('kind = "fires_only_in"\nregion = { kind = "halfplane", normal = [inf, 0.0] }',
     r"region: HalfPlane: normal\[0\] must be finite"),
    ('kind = "fires_only_in"\nregion = { kind = "polygon", vertices = [[0, 0], [1, nan], [0, 1]] }',
     "vertices must be finite"),
    ('kind = "fires_only_in"\nregion = { kind = "polygon", vertices = [0, 1, 2] }',
     r"vertices must be a list of \[x, y\] pairs"),
    ('kind = "fires_on_mass"\nq = 1.5\ncls = 0', "q must be <= 1.0, got 1.5"),
    ('kind = "fires_on_mass"\nq = "half"\ncls = 0', "q must be a real number, got 'half'"),
    ('kind = "monotone"\ndirection = [1, 0]\ndecreasing = "yes"', "decreasing must be true"),
    ('kind = "fires_on_mass"\nq = 0.5\nclass = 0', "key 'class' is now 'cls'"),
    ('kind = "selectivity"\ns = 0.5\ncls = 0', "Did you mean 'activation_share'"),
    ('kind = 3', "kind must be one of"),
    ('not = 3', "-> not: claim must be a table, got 3"),
]  # fmt: skip


def test_bad_claim_files_get_one_line_errors(tmp_path):
    for body, match in FILE_CASES:
        with pytest.raises(ToylabError, match=match) as info:
            load_claims(_file(tmp_path, body))
        msg = str(info.value)
        assert "\n" not in msg and "c.toml: claim 1" in msg, msg
    path = tmp_path / "c.toml"
    path.write_text('neuron = 3\n[[claim]]\nneuron = 3\nstatement = "s"\nkind = "dead"\n')
    with pytest.raises(ToylabError, match="unknown top-level key 'neuron'"):
        load_claims(path)
    path.write_text('[[claim]]\nneuron = 3\nstatement = "s"\nkind = "dead"\n')
    with pytest.raises(ToylabError, match=r"claim 1: neuron must be .*, got 3\."):
        load_claims(path)


def test_unreadable_claim_files_are_clear_errors(tmp_path):
    latin = tmp_path / "latin1.toml"
    latin.write_bytes(
        '[[claim]]\nneuron = "hidden_0:0"\nstatement = "caf\u00e9"\n'.encode("latin-1")
    )
    for path, match in [
        (latin, "is not UTF-8 text .*save it as UTF-8"),
        (tmp_path, "is a directory"),
        (tmp_path / "missing.toml", "does not exist"),
    ]:
        with pytest.raises(ToylabError, match=match) as info:
            load_claims(path)
        assert "\n" not in str(info.value)
    bad = tmp_path / "bad.toml"
    bad.write_text("[[claim]\n")
    with pytest.raises(ToylabError, match="is not valid TOML"):
        load_claims(bad)
