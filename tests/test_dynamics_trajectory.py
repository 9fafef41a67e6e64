"""Training dynamics: exact quantities at every checkpoint (toylab.dynamics.trajectory).

References: toylab.exact.analyze of the run's final model (the last checkpoint is the
final parameters), a Monte Carlo estimate of the settle distance with its confidence
interval, and hand-built networks whose units are dead or alive by construction.
"""

import dataclasses
import importlib
import shutil

import jax
import numpy as np
import pytest

from toylab.cli import main
from toylab.config import parse_config
from toylab.dynamics import (
    animation_path,
    load_trajectory,
    select_steps,
    settle_steps,
    trajectory,
    unit_events,
    write_dynamics_report,
)
from toylab.exact import analyze
from toylab.network import Network, as_network
from toylab.runs import start_run

CONFIG = {
    "name": "tiny-dynamics",
    "seeds": [0, 1],
    "distribution": {"name": "two_blobs"},
    "model": {"hidden": [4], "activation": "relu"},
    "train": {"num_steps": 60, "log_every": 30, "checkpoints": [5, 20], "learning_rate": 0.05},
}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    return start_run(parse_config(CONFIG), tmp_path_factory.mktemp("dyn") / "run")


@pytest.fixture()
def run_copy(tiny_run, tmp_path):
    """A private copy of the tiny run (tests that write into RUN/dynamics)."""
    from toylab.runs import load_run

    dst = tmp_path / "run"
    shutil.copytree(tiny_run.path, dst, ignore=shutil.ignore_patterns("dynamics"))
    return load_run(dst)


def _equal(a, b):
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype.kind == "f":
        return a.shape == b.shape and np.array_equal(a, b, equal_nan=True)
    return a.shape == b.shape and np.array_equal(a, b)


def test_last_checkpoint_equals_exact_analysis_of_the_final_model(tiny_run):
    traj = trajectory(tiny_run, store=False)
    assert traj.steps.tolist() == [0, 5, 20, 60] and traj.members.tolist() == [0, 1]
    assert traj.neurons.tolist() == [f"hidden_0:{u}" for u in range(4)]
    for m in range(2):
        ref = analyze(tiny_run.model(m), tiny_run.dist_of(m))  # final params, not a checkpoint
        assert traj.accuracy[m, -1] == pytest.approx(ref.accuracy, abs=1e-12)  # same float64 math
        mom = ref.moments["hidden_0"]
        np.testing.assert_allclose(traj.firing_probability[m, -1], mom.firing_probability,
                                   rtol=0, atol=1e-12)  # fmt: skip
        np.testing.assert_allclose(traj.max[m, -1], ref.extrema("hidden_0").max, rtol=0, atol=1e-12)
        assert traj.num_regions[m, -1] == ref.geometry.num_regions
        assert traj.tier[m, -1] == ref.tier
        bayes = tiny_run.dist_of(m).bayes().accuracy
        assert traj.gap[m, -1] == pytest.approx(bayes - ref.accuracy, abs=1e-12)
    assert np.all(np.isnan(traj.distance[:, 0])) and np.all(np.isfinite(traj.distance[:, 1:]))


def test_stored_trajectory_reloads_identically_and_is_not_recomputed(run_copy, monkeypatch):
    mod = importlib.import_module("toylab.dynamics.trajectory")  # the package exports the function

    first = trajectory(run_copy)
    assert (run_copy.path / "dynamics" / "trajectory.npz").is_file()
    assert (run_copy.path / "dynamics" / "dynamics.json").is_file()

    def boom(*args, **kwargs):
        raise AssertionError("recomputed although a valid trajectory is stored")

    monkeypatch.setattr(mod, "_compute", boom)
    again = trajectory(run_copy)
    for f in dataclasses.fields(first):
        assert _equal(getattr(first, f.name), getattr(again, f.name)), f.name
    # consecutive checkpoints are cut from the stored file (the first has no distance);
    # dropping one in between would lose the distances across it: recomputed instead
    sub = load_trajectory(run_copy, members=[1], steps=[5, 20, 60])
    assert sub is not None and sub.members.tolist() == [1]
    assert _equal(sub.accuracy, first.accuracy[1:, 1:])
    assert np.all(np.isnan(sub.distance[0, 0]))
    assert _equal(sub.distance[0, 1:], first.distance[1, 2:])
    assert load_trajectory(run_copy, steps=[0, 20, 60]) is None
    # a damaged archive is not trusted: recomputed (and rewritten) instead
    npz = run_copy.path / "dynamics" / "trajectory.npz"
    data = bytearray(npz.read_bytes())
    data[len(data) // 2] ^= 0xFF
    npz.write_bytes(bytes(data))
    assert load_trajectory(run_copy) is None


def _fake_run(nets_by_step, dist):
    class FakeRun:
        checkpoint_steps = sorted(nets_by_step)
        num_members = 1
        path = None

        def models(self, step):
            return [nets_by_step[step]]

        def dist_of(self, m):
            return dist

    return FakeRun()


def test_births_and_deaths_of_constructed_units():
    dist = parse_config(CONFIG).make_distribution()
    w1 = np.array([[1.0, -1.0], [0.5, 1.0]])
    w2 = np.array([[1.0, 0.0], [0.0, 1.0]])
    # unit 0 is dead (its pre-activation <= -1000 + 1.5 * 16 on the whole integration box)
    # at steps 0 and 10 and alive from 100; unit 1 is alive up to 100 and dead at 1000
    biases = {0: (-1e3, 0.0), 10: (-1e3, 0.0), 100: (0.0, 0.0), 1000: (0.0, -1e3)}
    nets = {s: Network.from_weights([w1, w2], [np.array(b), np.zeros(2)], ("relu",))
            for s, b in biases.items()}  # fmt: skip
    traj = trajectory(_fake_run(nets, dist), store=False)
    assert traj.alive[0].tolist() == [[False, True], [False, True], [True, True], [True, False]]
    assert traj.births()[0].tolist() == [100, -1]
    assert traj.deaths()[0].tolist() == [-1, 1000]
    # unit 0 dead at 0 and 10, both the constant 0: distance 0; unit 1 unchanged until 1000
    assert traj.distance[0, 1].tolist() == [0.0, 0.0]
    assert traj.distance[0, 2, 1] == 0.0 and traj.distance[0, 3, 0] == 0.0
    assert traj.distance[0, 3, 1] == np.inf  # alive -> dead (a constant): not the same function
    assert traj.settle_steps(0.01)[0].tolist() == [100, -1]


def test_unit_events_and_settle_steps_on_sequences():
    alive = np.array([[1, 0, 0, 1], [0, 0, 1, 1], [1, 0, 1, 0], [1, 1, 1, 0]], bool)
    births, deaths = unit_events(alive, [0, 1, 10, 100])
    # unit 0 dies and revives: born again at 10; unit 3 dies at 10 and stays dead
    assert births.tolist() == [10, 100, 1, -1]
    assert deaths.tolist() == [-1, -1, -1, 10]
    d = np.array([[np.nan] * 3, [0.5, 0.001, 0.2], [0.001, 0.002, np.nan], [0.005, 0.003, 0.0]])
    assert settle_steps(d, [0, 1, 10, 100], 0.01).tolist() == [1, 0, 10]
    assert settle_steps(d, [0, 1, 10, 100], 1e-4).tolist() == [-1, -1, 10]
    assert select_steps([0, 1, 3, 9, 26, 77, 228], 3) == [0, 9, 228]
    assert select_steps([0, 5], 10) == [0, 5]


def test_settle_distance_matches_monte_carlo(tiny_run):
    traj = trajectory(tiny_run, store=False, steps=[20, 60])
    dist = tiny_run.dist_of(0)
    a = as_network(tiny_run.model(0, 20)).numpy(np.float64)
    b = as_network(tiny_run.model(0, 60)).numpy(np.float64)
    n = 200_000
    x = np.asarray(dist.sample(jax.random.key(3), n).x, np.float64)
    ha, hb = a.forward(x)["hidden_0"], b.forward(x)["hidden_0"]
    # ratio estimator R = mean(u) / mean(v), u = (a - b)^2, v = (b - mean b)^2; its
    # standard error by the delta method: sd(u - R v) / (sqrt(n) mean(v))
    u = (ha - hb) ** 2
    v = (hb - hb.mean(0)) ** 2
    r = u.mean(0) / v.mean(0)
    se = (u - r * v).std(0) / (np.sqrt(n) * v.mean(0))
    exact = traj.distance[0, 1]
    live = traj.alive[0, 1]
    assert live.any()
    # 5 standard errors: a false failure has probability < 1e-6 per unit (normal tail)
    assert np.all(np.abs(exact[live] - r[live]) <= 5 * se[live] + 1e-12), (exact, r, se)
    assert np.all(traj.distance_error[0, 1, live] < 1e-6)  # exact tier: rounding only


def test_cli_writes_report_animations_and_atlas_page(run_copy, capsys):
    argv = ["dynamics", str(run_copy.path), "--quiet", "--max-checkpoints", "3", "--members", "1"]
    assert main(argv) == 0
    index = run_copy.path / "dynamics" / "index.md"
    text = index.read_text()
    assert "## Exact quantities along training" in text and "## Births, deaths" in text
    assert "checkpoints: 0, 20, 60 (3 of the run's 4)" in text
    assert "(trajectory.png)" in text and (run_copy.path / "dynamics" / "trajectory.png").is_file()
    from PIL import Image

    gif = animation_path(run_copy.path, 1, "hidden_0:3")
    assert gif.is_file() and "member1/hidden_0-3.gif" in text
    with Image.open(gif) as im:
        assert im.format == "GIF" and im.n_frames == 3
    assert not (run_copy.path / "dynamics" / "member0").exists()  # only the members asked for
    from toylab.viz.atlas import write_atlas

    write_atlas(run_copy, members=[1], dynamics=False)
    page = (run_copy.path / "atlas" / "member1" / "hidden_0-2.html").read_text()
    assert "img/hidden_0-2_training.gif" in page
    copied = run_copy.path / "atlas" / "member1" / "img" / "hidden_0-2_training.gif"
    assert copied.read_bytes() == animation_path(run_copy.path, 1, "hidden_0:2").read_bytes()


def test_cli_bad_input_exits_2(run_copy, tmp_path, capsys):
    assert main(["dynamics", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["dynamics", str(run_copy.path), "--members", "7"]) == 2
    assert "--members must be in 0..1" in capsys.readouterr().err
    assert main(["dynamics", str(run_copy.path), "--max-checkpoints", "1"]) == 2
    assert "--max-checkpoints must be an integer >= 2" in capsys.readouterr().err
    # a dynamics directory toylab did not write is never written into
    own = run_copy.path / "dynamics"
    own.mkdir()
    (own / "notes.txt").write_text("mine")
    assert main(["dynamics", str(run_copy.path), "--quiet"]) == 2
    assert "did not write" in capsys.readouterr().err
    assert sorted(p.name for p in own.iterdir()) == ["notes.txt"]


def test_report_sections_are_extensible(run_copy):
    from toylab._errors import NotApplicable

    calls = []

    def extra(ctx):
        calls.append(ctx.trajectory.steps.tolist())
        return ["## Extra", "", f"{len(ctx.members)} members", ""]

    def never(ctx):
        """A section that does not apply."""
        raise NotApplicable("not for this run")

    path = write_dynamics_report(run_copy, members=[0], steps=[0, 60], sections=[extra, never])
    text = path.read_text()
    assert calls == [[0, 60]] and "## Extra" in text and "1 members" in text
    assert "A section that does not apply. — not applicable: not for this run" in text
    with pytest.raises(NotApplicable, match="no section applies"):
        write_dynamics_report(run_copy, sections=[never])


def test_finite_task_train_and_test_accuracy_at_every_checkpoint(tmp_path):
    cfg = {"name": "mod", "seeds": [0], "distribution": {"name": "modular_arithmetic", "p": 5},
           "model": {"kind": "onehot_mlp", "hidden": [6]},
           "train": {"data": "full", "train_fraction": 0.6, "num_steps": 40, "log_every": 20,
                     "checkpoints": [10]}}  # fmt: skip
    run = start_run(parse_config(cfg), tmp_path / "mod")
    traj = trajectory(run, store=False)
    assert traj.kind == "finite" and traj.correct.shape == (1, 3, 25)
    assert np.all(traj.num_regions == -1) and traj.overall_tier == "exact"
    dom = run.dist_of(0).domain
    x, y = np.asarray(dom.inputs), np.asarray(dom.labels)
    mask = np.asarray(run.ensemble.train_data[0], bool)
    for t, step in enumerate(traj.steps):
        # the reference: the model's own (JAX, float32) forward pass and a count; a float32
        # near-tie could flip a prediction, which 25 inputs of a 40-step run do not have
        logits = np.asarray(run.model(0, int(step))(x))
        correct = np.argmax(logits, -1) == y
        assert traj.correct[0, t].tolist() == correct.tolist()
        assert traj.train_accuracy[0, t] == correct[mask].mean()
        assert traj.test_accuracy[0, t] == correct[~mask].mean()
        assert traj.accuracy[0, t] == pytest.approx(correct.mean(), abs=1e-12)
