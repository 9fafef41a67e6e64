"""The atlas of a run of toy models of superposition: a page per feature, exact numbers
checked against an independent computation from the raw parameters, every link resolves."""

import html
import re
from pathlib import Path

import numpy as np
import pytest
from test_atlas import check_links

from toylab.cli import main
from toylab.config import parse_config
from toylab.runs import load_run, start_run

CONFIG = {
    "name": "tms",
    "seeds": [0, 1],
    "distribution": {"name": "sparse_features", "num_features": 5, "importance_decay": 0.9},
    "model": {"kind": "superposition_relu", "hidden": [2]},
    "train": {"loss": "importance_mse", "num_steps": 30, "log_every": 10, "checkpoints": []},
    "sweep": {"param": "distribution.feature_probability", "values": [0.5, 0.05]},
}


@pytest.fixture(scope="module")
def atlas(tmp_path_factory):
    run = start_run(parse_config(CONFIG), tmp_path_factory.mktemp("tms") / "run")
    assert main(["atlas", str(run.path), "--quiet"]) == 0
    return load_run(run.path), Path(run.path) / "atlas"


def _cell(text, header):
    m = re.search(rf"<th>{re.escape(header)}</th><td class=\"num\">([^<]*)</td>", text)
    assert m, header
    return html.unescape(m.group(1))


def test_a_page_per_feature_and_links_resolve(atlas):
    run, out = atlas
    assert run.num_members == 4  # 2 seeds x 2 feature probabilities
    pages = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.html"))
    want = [f"member{m}/input-{i}.html" for m in range(4) for i in range(5)]
    assert pages == sorted(["index.html", "run.html", *want])
    check_links(out)
    index = (out / "index.html").read_text()
    assert "seed 1, feature_probability=0.05" in index


def test_feature_numbers_against_the_raw_parameters(atlas):
    run, out = atlas
    for m in range(run.num_members):
        W = np.asarray(run.params["W"][...], np.float64)[m]  # (m, n), independent of the atlas
        b = np.asarray(run.params["b"][...], np.float64)[m]
        norms = np.sqrt((W**2).sum(0))
        gram = W.T @ W
        for i in range(5):
            text = (out / f"member{m}" / f"input-{i}.html").read_text()
            assert f'<code id="address">input:{i}</code>' in text
            # printed with 6 decimals: agreement to half a unit in the last place
            assert float(_cell(text, "‖W_i‖ (norm)")) == pytest.approx(norms[i], abs=5e-7)
            d = norms[i] ** 4 / (gram[i] ** 2).sum() if norms[i] > 0 else 0.0
            assert float(_cell(text, "dimensionality D_i")) == pytest.approx(d, abs=5e-7)
            assert float(_cell(text, "output bias b_i")) == pytest.approx(b[i], abs=5e-7)
            p = run.dist_of(m).probs[i]
            assert float(_cell(text, "activation probability p_i")) == pytest.approx(p, abs=5e-7)
            want = "not represented" if norms[i] <= 0.5 else "represented"
            assert re.search(rf"</code>: {want}\b", text)
