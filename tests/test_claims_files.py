"""Claim files and the `toylab check` command."""

import json

import numpy as np
import pytest

from toylab import ToylabError
from toylab.claims import HalfPlane, check, fires_only_in, load_claims
from toylab.claims.cli import main
from toylab.distributions import two_blobs
from toylab.models import MLP

GOOD = """
[[claim]]
name = "x1 detector"
neuron = "hidden_0:0"
statement = "fires only where x1 >= 0"
kind = "fires_only_in"
region = { kind = "halfplane", normal = [1.0, 0.0], offset = 0.0 }

[[claim]]
neuron = ["hidden_0:0", "hidden_0:1"]
statement = "never fire in the far left, and one is alive"
all = [
  { kind = "fires_only_in", region = { kind = "box", low = [-1.0, -100.0], high = [100.0, 100.0] } },
  { any = [ { kind = "dead" }, { kind = "fires_on_mass", q = 0.5, cls = 0 } ] },
]

[[claim]]
neuron = "hidden_0:0"
statement = "is not dead"
not = { kind = "dead" }
"""


def test_claim_file_parses_and_composes(tmp_path):
    path = tmp_path / "claims.toml"
    path.write_text(GOOD)
    claims = load_claims(path)
    assert [c.kind for c in claims] == ["fires_only_in", "all", "not"]
    assert claims[0].name == "x1 detector" and claims[1].neuron == ("hidden_0:0", "hidden_0:1")
    model = MLP.from_weights([np.eye(2), np.ones((2, 2))])
    results = [check(c, model, two_blobs()) for c in claims]
    # hidden_0:1 = relu(x2) fires at x1 < -1: the second claim fails, exactly
    assert [r.holds for r in results] == [True, False, True]
    assert all(r.tier == "exact" for r in results)
    assert results[1].witness[0] < -1


BAD = [
    ('kind = "fires_only_inn"', "Did you mean 'fires_only_in'"),
    ('kind = "fires_on_mass"\nq = 0.5', "exactly one of cls"),
    ('kind = "fires_on_mass"\ncls = 0', "needs 'q'"),
    ('kind = "fires_on_mass"\nq = 0.5\nclass = 0', "key 'class' is now 'cls'"),
    ('kind = "fires_on_mass"\nq = 1.5\ncls = 0', "q must be <= 1.0, got 1.5"),
    ('kind = "selectivity"\ns = 0.5\ncls = 0', "Did you mean 'activation_share'"),
    ('kind = "activation_share"\ns = 0.5\ncls = 0', "key 's' is now 'share'"),
    ('kind = "argmax_near"\npoint = [nan, 0]\neps = 1.0', r"point\[0\] must be finite"),
    ('kind = "dead"\nregion = { kind = "halfplane", normal = [1, 0] }', "unknown key 'region'"),
    ('kind = "fires_only_in"\nregion = { kind = "halfplain", normal = [1, 0] }', "Did you mean 'halfplane'"),
    ('kind = "fires_only_in"\nregion = { kind = "halfplane" }', "needs 'normal'"),
    ('kind = "argmax_near"\npoint = [0, 0]\neps = -1.0', "eps must be"),
    ('kind = "monotone"\ndirection = [1, 0]\ndecreasng = true', "Did you mean 'decreasing'"),
    ("all = []", "non-empty list"),
]  # fmt: skip


@pytest.mark.parametrize("body, match", BAD)
def test_bad_claim_files_explain_themselves(tmp_path, body, match):
    path = tmp_path / "c.toml"
    path.write_text(f'[[claim]]\nneuron = "hidden_0:0"\nstatement = "s"\n{body}\n')
    with pytest.raises(ToylabError, match=match):
        load_claims(path)


def test_missing_fields_and_bad_addresses(tmp_path):
    path = tmp_path / "c.toml"
    for body, match in [
        ('statement = "s"\nkind = "dead"', "missing 'neuron'"),
        ('neuron = "hidden_0:0"\nkind = "dead"', "missing 'statement'"),
        ('neuron = "hidden0:0"\nstatement = "s"\nkind = "dead"', "bad neuron 'hidden0:0'"),
        ('neuron = "hidden_0:0"\nstatement = "s"', "missing 'kind'"),
        ('neuron = 3\nstatement = "s"\nkind = "dead"', r"neuron must be an address .*, got 3\."),
        ('neuron = ["hidden_0:0", 1]\nstatement = "s"\nkind = "dead"', "got 1"),
        ('neuron = []\nstatement = "s"\nkind = "dead"', r"neuron must be .*, got \[\]"),
        ('neuron = "hidden_0:0"\nstatement = 5\nkind = "dead"', "statement must be a string"),
    ]:
        path.write_text(f"[[claim]]\n{body}\n")
        with pytest.raises(ToylabError, match=match):
            load_claims(path)
    path.write_text("[[claims]]\nneuron = 1\n")
    with pytest.raises(ToylabError, match="Did you mean 'claim'"):
        load_claims(path)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A small trained run (a few steps: the claims are built from its own weights)."""
    from toylab.config import parse_config
    from toylab.runs import start_run

    cfg = {"name": "claims", "seeds": [0], "distribution": {"name": "two_blobs"},
           "model": {"hidden": [3]}, "train": {"num_steps": 5, "log_every": 5,
                                               "checkpoints": []}}  # fmt: skip
    return start_run(parse_config(cfg), tmp_path_factory.mktemp("run") / "run").path


def test_toylab_check_exit_codes_and_report(run_dir, tmp_path, capsys):
    from toylab.runs import load_run

    W, b = load_run(run_dir).model(0).to_network().dense_layers()[0]
    # true by construction: each unit fires only on its own half-plane; false: its opposite
    own = (f'region = {{ kind = "halfplane", normal = [{float(W[0, 0])!r}, {float(W[1, 0])!r}], '
           f"offset = {float(-b[0])!r} }}")  # fmt: skip
    true_claim = (
        f'[[claim]]\nneuron = "hidden_0:0"\nstatement = "own side"\nkind = "fires_only_in"\n{own}\n'
    )
    path = tmp_path / "ok.toml"
    path.write_text(true_claim)
    assert main([str(run_dir), str(path)]) == 0
    out = capsys.readouterr().out
    assert "own side" in out and "holds" in out and "exact" in out
    report = json.loads((run_dir / "report" / "claims.json").read_text())
    assert report["num_failed"] == 0 and report["results"][0]["tier"] == "exact"
    # the unit is alive somewhere on the domain unless its half-plane misses it; negate
    false_claim = true_claim.replace('statement = "own side"\nkind = "fires_only_in"\n' + own,
                                     f'statement = "not own side"\nnot = {{ kind = "fires_only_in", {own} }}')  # fmt: skip
    path.write_text(true_claim + "\n" + false_claim)
    assert main([str(run_dir), str(path), "--member", "0"]) == 1
    md = (run_dir / "report" / "claims.md").read_text()
    assert "1 of 2 hold" in md and "not own side" in md and "FAILS" in md
    path.write_text('[[claim]]\nneuron = "hidden_0:9"\nstatement = "s"\nkind = "dead"\n')
    assert main([str(run_dir), str(path)]) == 2
    assert "has 3 units" in capsys.readouterr().err
    assert main([str(run_dir), str(tmp_path / "missing.toml")]) == 2


def test_cmd_check_with_a_namespace(run_dir, tmp_path):
    import argparse

    from toylab.claims.cli import cmd_check

    path = tmp_path / "c.toml"
    path.write_text('[[claim]]\nneuron = "hidden_0:0"\nstatement = "s"\nkind = "dead"\n'
                    '[[claim]]\nneuron = "hidden_0:0"\nstatement = "t"\nnot = { kind = "dead" }\n')  # fmt: skip
    # exactly one of "dead" and "not dead" holds
    code = cmd_check(argparse.Namespace(run_dir=str(run_dir), claims=str(path), member=0))
    assert code == 1


EVERY_KIND = """
[[claim]]
neuron = "hidden_0:0"
statement = "fires right of x1 = 0"
kind = "fires_only_in"
region = { kind = "halfplane", normal = [1.0, 0.0], offset = 0.0 }

[[claim]]
neuron = "hidden_0:1"
statement = "fires in the 2-sigma ellipse of blob 0"
kind = "fires_only_in"
region = { kind = "ellipse", component = 0, k = 2.0 }

[[claim]]
neuron = "hidden_0:1"
statement = "is dead"
kind = "dead"

[[claim]]
neuron = "hidden_0:0"
statement = "fires on class 0"
kind = "fires_on_mass"
q = 0.9
cls = 0

[[claim]]
neuron = "hidden_0:1"
statement = "increases with x2 in a box"
kind = "monotone"
direction = [0.0, 1.0]
region = { kind = "box", low = [-1.0, -1.0], high = [1.0, 1.0] }
decreasing = false

[[claim]]
neuron = "hidden_0:0"
statement = "linear on a triangle"
kind = "linear_on"
region = { kind = "polygon", vertices = [[-1.0, 0.0], [1.0, 0.0], [0.0, 1.0]] }

[[claim]]
neuron = "output:0"
statement = "peaks near the corner"
kind = "argmax_near"
point = [8.0, 6.0]
eps = 0.5

[[claim]]
neuron = "hidden_0:0"
statement = "mostly from blob 0"
kind = "activation_share"
share = 0.9
component = 0

[[claim]]
neuron = "hidden_0:0"
statement = "matters for class 0"
kind = "ablation_lowers_accuracy"
cls = 0
delta = 0.01

[[claim]]
neuron = ["hidden_0:0", "hidden_0:1"]
statement = "a composition"
any = [ { kind = "dead" }, { not = { kind = "fires_on_mass", q = 0.5, component = 1 } } ]
"""


def _same_claim(a, b):
    assert (a.kind, a.neuron, a.statement, a.name) == (b.kind, b.neuron, b.statement, b.name)
    assert dict(a.params) == dict(b.params), (a.params, b.params)
    assert len(a.children) == len(b.children)
    for x, y in zip(a.children, b.children, strict=True):
        _same_claim(x, y)


def test_python_claims_equal_file_claims(tmp_path):
    """One schema (review T2): a real file with every file kind loads into the same claims
    as the Python constructors with the same arguments, and they get the same verdicts."""
    from toylab.claims import (
        Ellipse,
        Polygon,
        ablation_lowers_accuracy,
        activation_share,
        any_of,
        argmax_near,
        box_region,
        check_all,
        dead,
        fires_on_mass,
        linear_on,
        monotone,
        not_,
    )

    path = tmp_path / "every_kind.toml"
    path.write_text(EVERY_KIND, encoding="utf-8")
    from_file = load_claims(path)
    both = ["hidden_0:0", "hidden_0:1"]
    python = [
        fires_only_in("hidden_0:0", HalfPlane((1.0, 0.0), 0.0), statement="fires right of x1 = 0"),
        fires_only_in("hidden_0:1", Ellipse(2.0, component=0),
                      statement="fires in the 2-sigma ellipse of blob 0"),
        dead("hidden_0:1", statement="is dead"),
        fires_on_mass("hidden_0:0", 0.9, cls=0, statement="fires on class 0"),
        monotone("hidden_0:1", (0.0, 1.0), region=box_region((-1, -1), (1, 1)),
                 statement="increases with x2 in a box"),
        linear_on("hidden_0:0", Polygon(((-1, 0), (1, 0), (0, 1))),
                  statement="linear on a triangle"),
        argmax_near("output:0", (8.0, 6.0), 0.5, statement="peaks near the corner"),
        activation_share("hidden_0:0", 0.9, component=0, statement="mostly from blob 0"),
        ablation_lowers_accuracy("hidden_0:0", 0, 0.01, statement="matters for class 0"),
        any_of(dead(both), not_(fires_on_mass(both, 0.5, component=1)),
               statement="a composition"),
    ]  # fmt: skip
    assert len(from_file) == len(python) == 10
    for a, b in zip(from_file, python, strict=True):
        _same_claim(a, b)
    model = MLP.from_weights([np.eye(2), np.ones((2, 2))])
    dist = two_blobs()
    for a, b in zip(check_all(from_file, model, dist), check_all(python, model, dist),
                    strict=True):  # fmt: skip
        assert a.to_dict() == b.to_dict()
    # relu(x1) fires right of 0 and on 97.7% of class 0 but is linear on no triangle across
    # x1 = 0; relu(x2) is alive; both logits are relu(x1) + relu(x2), so ablating changes
    # nothing (ties go to class 0)
    assert [r.holds for r in check_all(from_file, model, dist)] == [
        True, False, False, True, True, False, True, True, False, True,
    ]  # fmt: skip
