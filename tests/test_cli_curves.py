"""Every ``toylab`` command on a run of conv nets on curve images: it works, or it refuses
in one line with exit status 2 (never a traceback); ``toylab check`` searches claims over the
family's parameters. One tiny run (2 seeds, one conv block
of 2 channels, a few steps) trained once for the module."""

import json

import numpy as np
import pytest
import tomli_w

from toylab.cli import main

CONFIG = {
    "name": "tiny_curves",
    "seeds": [0, 1],
    "distribution": {
        "name": "curve_images",
        "size": 12,
        "task": "orientation",
        "num_bins": 4,
        "length": 9.0,
    },  # fmt: skip
    "model": {
        "kind": "conv",
        "conv": [{"channels": 2, "kernel": 3, "pool": "avg", "pool_window": 2}],
        "hidden": [],
        "activation": "relu",
    },
    "train": {
        "num_steps": 30,
        "batch_size": 32,
        "log_every": 10,
        "checkpoints": "log:3",
        "num_eval_samples": 256,
    },  # fmt: skip
}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("curves")
    cfg = tmp / "c.toml"
    cfg.write_text(tomli_w.dumps(CONFIG))
    out = tmp / "run"
    assert main(["train", str(cfg), "--out", str(out), "--quiet"]) == 0
    return out


def _one_line_refusal(err: str, *words: str) -> None:
    lines = [ln for ln in err.strip().splitlines() if ln]
    assert len(lines) == 1 and "error:" in lines[0] and "Traceback" not in err, err
    for w in words:
        assert w in lines[0], (w, lines[0])


def test_info_names_the_conv_blocks(run_dir, capsys):
    assert main(["info", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "model:    conv conv=[2ch 3x3 avg2x2] hidden=[] activation=relu" in out
    assert "accuracy @ 30:" in out


def test_report(run_dir, capsys):
    assert main(["report", str(run_dir), "--quiet"]) == 0
    assert "report:" in capsys.readouterr().out
    text = (run_dir / "report" / "index.md").read_text()
    assert "| 1 (seed 1) |" in text


def test_atlas_writes_a_page_per_channel(run_dir, capsys, tmp_path):
    out = tmp_path / "atlas"
    assert main(["atlas", str(run_dir), "--out", str(out), "--tuning-boxes", "20",
                 "--quiet"]) == 0  # fmt: skip
    assert str(out / "index.html") in capsys.readouterr().out
    assert json.loads((out / "atlas.json").read_text())["budget"]["tuning_boxes"] == 20
    index = (out / "index.html").read_text()
    for m in (0, 1):
        for c in (0, 1):
            assert f'href="member{m}/conv_0-{c}.html"' in index
            page = (out / f"member{m}" / f"conv_0-{c}.html").read_text()
            assert '<code id="address">conv_0:' + str(c) + "</code>" in page
            assert "Certified tuning" in page and "Top dataset examples" in page
            # writes to the linear read-out (4 classes), by weight norm
            assert page.count("<code>output:") == 4
    # the stated family maximum brackets a value rendered from the family (independent
    # of the atlas: the network's own forward pass on rendered images)
    from toylab.runs import load_run

    run = load_run(run_dir)
    dist = run.dist_of(0)
    net = run.model(0).to_network().numpy(np.float64)
    rng = np.random.default_rng(0)
    p = dist.param_low + rng.random((400, 4)) * (dist.param_high - dist.param_low)
    sampled = float(net.values(dist.render(p), "conv_0:1").max())
    page = (out / "member0" / "conv_0-1.html").read_text()
    start = page.index("certified maximum over the family")
    row = page[start : page.index("</tr>", start)]
    upper = float(row.split("≤ max ≤")[1].split("<")[0].split("(")[0])
    assert sampled <= upper + 1e-9  # a certified upper bound is never below a sampled value
    # the atlas never writes into a directory of other files
    other = tmp_path / "other"
    other.mkdir()
    (other / "mine.txt").write_text("x")
    assert main(["atlas", str(run_dir), "--out", str(other), "--quiet"]) == 2
    _one_line_refusal(capsys.readouterr().err, "other files")
    assert main(["atlas", str(run_dir), "--tuning-boxes", "0", "--quiet"]) == 2
    _one_line_refusal(capsys.readouterr().err, "--tuning-boxes")


@pytest.mark.parametrize(
    "command, words",
    [
        (["compare"], ("compare", "conv")),
        (["dynamics"], ("dynamics does not apply", "images")),
        (["universality"], ("universality does not apply", "images")),
    ],
)
def test_commands_that_do_not_apply_refuse_in_one_line(run_dir, capsys, command, words):
    assert main([*command, str(run_dir), "--quiet"]) == 2
    _one_line_refusal(capsys.readouterr().err, *words)


def test_train_resume_of_a_complete_run(run_dir, capsys):
    assert main(["train", "--resume", str(run_dir), "--quiet"]) == 0
    assert "run written to" in capsys.readouterr().out


def test_claims_search_the_family_not_the_pixel_box(run_dir, capsys, tmp_path):
    """On an image run a claim is searched over the family's parameters (its noiseless
    images): a 'dead' claim that fails comes with a rendered image on which the channel
    fires, recomputed here through the network's own forward pass."""
    from toylab.claims import check, dead
    from toylab.runs import load_run

    run = load_run(run_dir)
    model, dist = run.model(0), run.dist_of(0)
    net = model.to_network().numpy(np.float64)
    rng = np.random.default_rng(0)
    params = rng.uniform(dist.param_low, dist.param_high, (512, 4))
    for neuron in ("conv_0:0", "conv_0:1"):
        res = check(dead(neuron), model, dist, budget=60)
        sampled = net.values(dist.render(params), neuron)
        if res.holds:  # then no sampled family image may make it fire
            assert np.all(sampled <= 0), neuron
        else:
            assert "family's noiseless images" in res.detail
            assert net.values(np.asarray(res.witness)[None], neuron)[0] > 0
    claims = tmp_path / "claims.toml"
    claims.write_text('[[claim]]\nneuron = "conv_0:0"\nstatement = "is dead"\nkind = "dead"\n')
    assert main(["check", str(run_dir), str(claims), "--quiet"]) in (0, 1)
    out = capsys.readouterr().out
    assert "is dead" in out and "Traceback" not in out
