"""The neuron atlas: files, links, escaping, optional inputs, and a real browser."""

import os
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from toylab.config import parse_config
from toylab.exact import analyze
from toylab.runs import start_run
from toylab.viz.atlas import neuron_filename, write_atlas

EVIL = "tiny<script>window.__pwned=1</script>&co"
CONFIG = {
    "name": EVIL,
    "seeds": [0, 1],
    "distribution": {"name": "two_blobs"},
    "model": {"hidden": [3, 2], "activation": "relu"},
    "train": {"num_steps": 50, "log_every": 25, "checkpoints": [25]},
}
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.hrefs, self.srcs, self.scripts = [], [], 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "a" and "href" in a:
            self.hrefs.append(a["href"])
        if tag in ("img", "script", "link") and ("src" in a or "href" in a):
            self.srcs.append(a.get("src") or a.get("href"))
        if tag == "script":
            self.scripts += 1


def _parse(path):
    p = _Links()
    p.feed(Path(path).read_text(encoding="utf-8"))
    return p


def check_links(out):
    """Every link and image of every page is relative and resolves; nothing is fetched."""
    for page in out.rglob("*.html"):
        links = _parse(page)
        for ref in links.hrefs + links.srcs:
            assert not re.match(r"^[a-z]+:", ref) and not ref.startswith("/"), (page, ref)
            target = ref.split("#")[0]
            if target:
                assert (page.parent / target).is_file(), f"{page}: broken link {ref}"
        assert "http://" not in page.read_text() and "https://" not in page.read_text()


@pytest.fixture(scope="session")
def run(tmp_path_factory):
    return start_run(parse_config(CONFIG), tmp_path_factory.mktemp("atlas") / "run")


class _Claim:
    def __init__(self, statement, verdict, counterexample=None):
        self.statement, self.verdict, self.counterexample = statement, verdict, counterexample


@pytest.fixture(scope="session")
def atlas(run):
    def examples(member, address):
        return {"x": np.array([[1.0, 0.5], [2.0, -0.5]]), "values": np.array([3.25, 2.5])}

    index = write_atlas(
        run,
        num=48,
        feature_viz={(0, "hidden_0:0"): {"start": np.zeros((2, 2)), "end": np.ones((2, 2)),
                                         "score": [0.125, 0.75]}},
        dataset_examples=examples,
        tuning_curves={"hidden_0:1": {"t": np.linspace(0, 1, 5), "exact": np.arange(5.0),
                                      "sampled": np.arange(5.0) + 0.1}},
        matches={(1, "hidden_0:2"): {"name": "<i>edge</i> detector", "score": 0.93}},
        claims={(0, "hidden_0:0"): [_Claim("<b>fires</b> on the right", "fails", [1.0, 2.0])]},
        methods=[{"method": "feature <viz>", "score": 0.5}],
    )  # fmt: skip
    return index


def test_atlas_layout_and_relative_links(run, atlas):
    out = Path(run.path) / "atlas"
    assert atlas == out / "index.html"
    pages = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.html"))
    expected = [
        f"member{m}/hidden_{k}-{u}.html"
        for m in (0, 1)
        for k, n in ((0, 3), (1, 2))
        for u in range(n)
    ]
    assert pages == sorted(["index.html", "run.html", *expected])
    assert neuron_filename("hidden_0:3") == "hidden_0-3.html"
    assert neuron_filename("hidden_1.pre:0") == "hidden_1.pre-0.html"
    check_links(out)
    # no temporary files left behind by the atomic writes
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]


def test_neuron_page_content(run, atlas):
    out = atlas.parent
    text = (out / "member0" / "hidden_0-0.html").read_text()
    assert '<code id="address">hidden_0:0</code>' in text
    a = analyze(run.model(0), run.dist)
    p = float(a.moments["hidden_0"].firing_probability[0])
    assert f"{p:.6f}" in text
    assert "&lt;b&gt;fires&lt;/b&gt; on the right" in text and "verdict-fails" in text
    assert "0.1250" in text and "0.7500" in text  # feature-visualization scores
    assert "3.2500" in text  # dataset example
    # weights: every incoming weight listed; outgoing ones link to the next layer's pages
    (w0, _), (w1, _), _ = run.model(0).to_network().dense_layers()
    for i in range(2):
        assert f"{w0[i, 0]:+.4f}" in text
    for j in range(2):
        assert f'<a href="hidden_1-{j}.html"><code>hidden_1:{j}</code></a>' in text
        assert f"{w1[0, j]:+.4f}" in text
    match = (out / "member1" / "hidden_0-2.html").read_text()
    assert "&lt;i&gt;edge&lt;/i&gt; detector" in match and "<i>edge" not in match
    assert "img/hidden_0-1_tuning0.png" in (out / "member0" / "hidden_0-1.html").read_text()
    run_page = (out / "run.html").read_text()
    assert "feature &lt;viz&gt;" in run_page
    assert f"{a.accuracy:.6f}" in run_page


def test_user_strings_are_escaped(atlas):
    for page in atlas.parent.rglob("*.html"):
        text = page.read_text()
        assert "<script>window.__pwned" not in text
        if page.name in ("index.html", "run.html") or page.parent.name.startswith("member"):
            assert "tiny&lt;script&gt;window.__pwned=1&lt;/script&gt;&amp;co" in text
    assert _parse(atlas).scripts == 1  # only the seed switch


def test_atlas_pages_name_members_and_never_show_negative_zero(atlas):
    index = atlas.read_text()
    assert "member 1 (seed 1)" in index
    assert "(seed 0)" in (atlas.parent / "member0" / "hidden_0-0.html").read_text()
    for page in atlas.parent.rglob("*.html"):
        assert not re.search(r"-0\.0+(?![0-9])", page.read_text()), page
    assert (atlas.parent / "atlas.json").is_file()  # marks the directory as an atlas


def test_atlas_images_are_pngs_with_content(atlas):
    import matplotlib.image

    imgs = list(atlas.parent.rglob("*.png"))
    assert len(imgs) >= 10 * 3 + 3
    for path in imgs:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    px = matplotlib.image.imread(atlas.parent / "member0" / "img" / "hidden_0-0.png")[..., :3]
    assert px.std() > 0.05


def test_cli_atlas(run, tmp_path, capsys):
    import argparse

    from toylab.viz.cli import register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["atlas", str(run.path), "--out", str(tmp_path / "a"),
                              "--members", "1", "--no-dynamics"])  # fmt: skip
    assert args.fn(args) == 0
    assert f"atlas: {tmp_path / 'a' / 'index.html'}" in capsys.readouterr().out
    assert (tmp_path / "a" / "member1" / "hidden_0-0.html").is_file()
    assert not (tmp_path / "a" / "member0").exists()
    assert not list((tmp_path / "a").rglob("*_dynamics.png"))


def _browser():
    """Chromium driven by Playwright, or a skip (a failure under CI) with the reason."""
    reason = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        reason = "playwright is not installed (pip install playwright)"
    if reason is None and not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        reason = f"chromium is not installed at {CHROMIUM} (apt-get install -y chromium)"
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"browser test cannot run under CI: {reason}")
        pytest.skip(reason)
    return sync_playwright


def test_atlas_in_a_real_browser(atlas, tmp_path):
    sync_playwright = _browser()
    errors = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("requestfailed", lambda r: errors.append(f"failed: {r.url}"))

            def check_images():
                page.wait_for_load_state("load")
                bad = page.evaluate(
                    "Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0))"
                    ".map(i => i.src)"
                )
                assert bad == []
                return page.evaluate("document.images.length")

            page.goto(atlas.as_uri())
            assert check_images() == 10
            assert page.evaluate("typeof window.__pwned") == "undefined"
            assert EVIL in page.inner_text("h1")  # shown literally, not executed
            # the seed switch: member 1 shows, member 0 hides
            assert page.is_visible("#member0") and not page.is_visible("#member1")
            page.click("nav.seeds a[href='#member1']")
            assert page.is_visible("#member1") and not page.is_visible("#member0")
            page.screenshot(path=str(tmp_path / "index.png"), full_page=True)
            # index -> neuron page of member 1
            page.click("#member1 a.cell >> nth=0")
            assert page.url.endswith("member1/hidden_0-0.html")
            assert page.inner_text("#address") == "hidden_0:0"
            assert check_images() >= 2
            page.screenshot(path=str(tmp_path / "neuron_first.png"), full_page=True)
            # walk the circuit: follow an outgoing weight to a neuron of the next layer
            page.click("table a:has-text('hidden_1:')  >> nth=0")
            assert re.search(r"member1/hidden_1-[01]\.html$", page.url)
            assert page.inner_text("#address").startswith("hidden_1:")
            # and back along an incoming weight
            page.click("table a:has-text('hidden_0:0')")
            assert page.url.endswith("member1/hidden_0-0.html")
            check_images()
            page.screenshot(path=str(tmp_path / "neuron.png"), full_page=True)
            page.click("nav.crumbs a:has-text('run page')")
            assert check_images() >= 3
            assert page.evaluate("typeof window.__pwned") == "undefined"
            page.screenshot(path=str(tmp_path / "run.png"), full_page=True)
            page.click("nav.crumbs a:has-text('atlas')")
            assert page.url.endswith("index.html")
        finally:
            browser.close()
    assert errors == []
    assert (tmp_path / "index.png").stat().st_size > 10_000


def test_atlas_without_javascript_shows_every_member(atlas):
    sync_playwright = _browser()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(java_script_enabled=False).new_page()
            page.goto(atlas.as_uri())
            assert page.is_visible("#member0") and page.is_visible("#member1")
        finally:
            browser.close()


def test_atlas_reads_toylab_result_objects(run, tmp_path):
    """The atlas takes toylab's own method and claim results, not only stand-ins."""
    import jax

    from toylab import claims
    from toylab.methods import dataset_examples, feature_visualization

    model, dist = run.model(0), run.dist
    fv = feature_visualization(model, dist, "hidden_0:0", key=jax.random.key(0), num_starts=4,
                               num_steps=5)  # fmt: skip
    ex = dataset_examples(model, dist, "hidden_0:0", key=jax.random.key(1), num_samples=64,
                          num_examples=3, num_coverage=256)  # fmt: skip
    verdict = claims.check(claims.dead("hidden_0:0"), model, dist)
    out = write_atlas(
        run, tmp_path / "a", members=[0], dynamics=False, circuits=False,
        feature_viz={"hidden_0:0": fv}, dataset_examples={"hidden_0:0": ex},
        claims={"hidden_0:0": [verdict]},
    )  # fmt: skip
    page = (out.parent / "member0" / "hidden_0-0.html").read_text()
    end0 = f"{float(fv.endpoints[0][0]):.3f}"
    assert end0 in page  # feature-visualization endpoints are listed
    assert "Top dataset examples" in page and f"{float(ex.examples[0][0]):.3f}" in page
    assert ("holds" if verdict.holds else "fails") in page
