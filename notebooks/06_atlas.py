# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 06 · The neuron atlas
#
# Notebooks 02-05 looked at neurons one plot at a time. The **atlas** is all of them at
# once: a static HTML site written into a run directory, one page per hidden neuron,
# with its exact map (region boundaries, zero set, argmax), its exact statistics, its
# incoming and outgoing weights linked to the neighbouring neurons, its map at every
# checkpoint, and whatever results of other methods you hand it. Every link is relative
# and nothing is fetched from the network, so the folder can be zipped, emailed or
# served by any static host.
#
# You will
# 1. train a tiny run and write its atlas with `toylab.viz.write_atlas`;
# 2. list its pages;
# 3. add feature-visualization, dataset-example and claim results to the neuron pages;
# 4. walk a circuit through the atlas *programmatically*: parse a neuron page with the
#    standard library's `html.parser` and follow the strongest outgoing weight, layer by
#    layer;
# 5. show a page's figures inline and print the `file://` address to open in a browser.
#
# The first cell holds the sizes; make them smaller for a quick run.

# %% tags=["parameters"]
num_steps = 600  # training steps per member
seeds = [0, 1]  # one member per seed
hidden = [6, 4]  # hidden layer widths
map_size = 100  # atlas maps are drawn on a map_size x map_size grid
dynamics = True  # draw every neuron at every checkpoint (a strip per page)
num_starts = 32  # feature-visualization starts per neuron (member 0)
run_dir = "runs/06_atlas"  # where the run and its atlas go (relative to the notebook)
SMALL = {"num_steps": 40, "seeds": [0], "hidden": [4, 3], "map_size": 40, "dynamics": False,
         "num_starts": 8}  # fmt: skip

# %%
# ruff: noqa: E402  (imports follow the parameters cell)
import tempfile
import time
from html.parser import HTMLParser
from pathlib import Path

import jax
from IPython.display import Image, display

from toylab.claims import check, dead, not_
from toylab.config import parse_config
from toylab.methods import dataset_examples, feature_visualization
from toylab.runs import start_run
from toylab.viz import write_atlas

start = time.perf_counter()
# Keep compiled programs in an on-disk cache (a temporary directory): building, training
# and reloading a run compile some programs more than once.
jax_cache = tempfile.TemporaryDirectory(prefix="jax_cache_")  # removed when the kernel exits
jax.config.update("jax_compilation_cache_dir", jax_cache.name)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)

# %% [markdown]
# ## 1. A tiny run
#
# `start_run` trains the config into a run directory (notebook 02, section 5). The atlas
# reads everything it needs from the loaded run: config, metrics, checkpoints, members.

# %%
config = parse_config({
    "name": "06_atlas",
    "seeds": list(seeds),
    "distribution": {"name": "xor_blobs", "offset": 2.0, "scale": 1.0},
    "model": {"hidden": list(hidden), "activation": "relu"},
    "train": {"num_steps": num_steps, "log_every": max(num_steps // 20, 1),
              "checkpoints": "log:4"},
})  # fmt: skip
t0 = time.perf_counter()
run = start_run(config, run_dir, overwrite=True)
print(f"trained {run.num_members} member(s) of a {hidden} ReLU MLP in "
      f"{time.perf_counter() - t0:.1f} s; checkpoints {run.checkpoint_steps}")  # fmt: skip

# %% [markdown]
# ## 2. Results of other methods, for the neuron pages
#
# Everything beyond the exact analysis is optional and duck-typed: a mapping keyed by
# `(member, address)` (or a callable `(member, address) -> value or None`) of objects
# with the fields `write_atlas` documents. Here, for every hidden neuron of member 0:
# gradient-ascent starts and ends (`feature_visualization`), the top dataset examples
# (`dataset_examples`) and an exact verdict on "is not dead" (`toylab.claims`).
#
# The atlas looks for the fields `start`/`end`, `x`/`values` and
# `statement`/`verdict`/`counterexample`. The result objects of `toylab.methods` and
# `toylab.claims` name some of them differently (`endpoints`, `examples`, `witness`,
# and a claim verdict has `holds` but no `verdict` text), so we pass small dicts.

# %%
model, dist = run.model(0), run.dist
key = jax.random.key(0)
addresses = [f"hidden_{k}:{u}" for k, n in enumerate(hidden) for u in range(n)]
feature_viz, examples, claims = {}, {}, {}
t0 = time.perf_counter()
for address in addresses:
    fv = feature_visualization(model, dist, address, key=key, num_starts=num_starts,
                               num_steps=100)  # fmt: skip
    feature_viz[(0, address)] = {"start": fv.starts, "end": fv.endpoints, "score": fv.values}
    de = dataset_examples(model, dist, address, key=key, num_samples=1024, num_examples=6,
                          num_coverage=1000)  # fmt: skip
    examples[(0, address)] = {"x": de.examples, "values": de.values}
    r = check(not_(dead(address)), model, dist)
    claims[(0, address)] = [{
        "statement": r.statement, "verdict": "holds" if r.holds else "fails",
        "holds": r.holds, "tier": r.tier, "counterexample": r.witness,
    }]  # fmt: skip
print(f"methods on {len(addresses)} neurons in {time.perf_counter() - t0:.1f} s")
print("dead neurons in member 0:",
      [a for a in addresses if not claims[(0, a)][0]["holds"]] or "none")  # fmt: skip

# %% [markdown]
# ## 3. Write the atlas and list its pages
#
# One exact analysis per member gives every map its overlays and every page its exact
# statistics; `dynamics` adds each neuron's map at every checkpoint.

# %%
t0 = time.perf_counter()
index = write_atlas(run, num=map_size, dynamics=dynamics, feature_viz=feature_viz,
                    dataset_examples=examples, claims=claims)  # fmt: skip
atlas = index.parent
print(f"atlas written in {time.perf_counter() - t0:.1f} s: {index}")
pages = sorted(p.relative_to(atlas).as_posix() for p in atlas.rglob("*.html"))
images = list(atlas.rglob("*.png"))
print(f"{len(pages)} pages, {len(images)} images:")
for page in pages:
    print("  ", page)
assert len(pages) == 2 + run.num_members * sum(hidden)  # self-check: index, run, neurons

# %% [markdown]
# ## 4. Walking a circuit through the atlas
#
# Each neuron page lists its outgoing weights in a table whose first column links to
# the next layer's pages. `html.parser` (standard library) is enough to read it: we
# collect every table under the heading before it, keeping each cell's text and link.


# %%
class NeuronPage(HTMLParser):
    """The address and the tables of a neuron page: ``tables[heading] = rows`` where each
    row is a list of ``(text, href)`` cells (``href`` of the cell's link, or ``None``)."""

    def __init__(self, path: Path):
        super().__init__()
        self.path, self.address, self.tables = path, None, {}
        self._heading = self._text = None
        self._in_address = False
        self._row = self._cell = None
        self.feed(path.read_text(encoding="utf-8"))

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "code" and a.get("id") == "address":
            self._in_address = True
        elif tag in ("h2", "h3"):
            self._text = []
        elif tag == "table":
            self.tables[self._heading] = []
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = [[], None]
        elif tag == "a" and self._cell is not None:
            self._cell[1] = a.get("href")

    def handle_endtag(self, tag):
        if tag in ("h2", "h3") and self._text is not None:
            self._heading, self._text = "".join(self._text).strip(), None
        elif tag in ("td", "th") and self._cell is not None:
            self._row.append(("".join(self._cell[0]).strip(), self._cell[1]))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            if self._heading in self.tables:
                self.tables[self._heading].append(self._row)
            self._row = None

    def handle_data(self, data):
        if self._in_address:
            self.address, self._in_address = data.strip(), False
        if self._text is not None:
            self._text.append(data)
        if self._cell is not None:
            self._cell[0].append(data)

    def outgoing(self):
        """``[(address, weight, href)]`` of the outgoing weights (header row skipped)."""
        return [(r[0][0], float(r[1][0]), r[0][1]) for r in self.tables["outgoing"][1:]]


first = NeuronPage(atlas / "member0" / "hidden_0-0.html")
print("page of", first.address)
print("tables:", list(first.tables))
for name, value in first.tables["Exact statistics"]:
    print(f"   {name[0]:30s} {value[0]}")

# %% [markdown]
# Now the walk: start at `hidden_0:0`, follow the outgoing weight of largest magnitude to
# the next page, and repeat until the weights lead to a logit (which has no page).

# %%
page, path = first, []
while True:
    target, weight, href = max(page.outgoing(), key=lambda row: abs(row[1]))
    path.append((page.address, weight, target))
    print(f"{page.address:12s} --({weight:+.4f})--> {target}")
    if href is None:
        break
    page = NeuronPage(page.path.parent / href)
    assert page.address == target  # the link leads to the right page

# self-check: the parsed weights are the model's (to the 4 decimals the page shows)
layers = model.to_network().dense_layers()
for k, (src, weight, dst) in enumerate(path):
    i, j = int(src.split(":")[1]), int(dst.split(":")[1])
    assert abs(layers[k + 1][0][i, j] - weight) < 1e-4, (src, dst)  # layer k+1 leaves hidden_k

# %% [markdown]
# ## 5. Figures inline, and the address to open
#
# The pages' figures are ordinary PNG files, so a notebook can show them directly: the
# thumbnail from the index and the full map of the last hidden neuron on our path (its
# exact region boundaries, zero set and argmax, with the feature-visualization ends
# and the dataset examples drawn on it).

# %%
img = atlas / "member0" / "img"
last = path[-2][2] if len(path) > 1 else path[0][0]  # the last hidden neuron on the path
name = last.replace(":", "-")
print(f"{last}: thumbnail and map")
display(Image(filename=str(img / f"{name}_thumb.png")))
display(Image(filename=str(img / f"{name}.png")))
if dynamics:
    print(f"{last} at the checkpoints {run.checkpoint_steps} (a small strip, shown at 2x):")
    display(Image(filename=str(img / f"{name}_dynamics.png"), width=430))

# %% [markdown]
# Open the atlas in a browser (a local file: no server needed). The index shows every
# member's neurons as thumbnails, with a seed switch; `run.html` the data, the training
# curves, the exact accuracy against Bayes-optimal and every member as a circuit diagram.

# %%
print(index.resolve().as_uri())
print((atlas / "member0" / "hidden_0-0.html").resolve().as_uri())

# %%
print(f"notebook ran in {time.perf_counter() - start:.1f} s")

# %% [markdown]
# ## Exercises
#
# 1. **Walk backwards.** Extend `NeuronPage` with `incoming()` and walk from a logit's
#    strongest hidden_1 input back to the input layer. Does the backward walk pass
#    through the neurons of the forward walk?
# 2. **Matched neurons on the pages.** Match member 0 to member 1 with
#    `toylab.circuits.match_neurons` and pass `matches={(0, a): {"name": b, "score": corr}}`
#    to `write_atlas`. Which neurons have a partner with correlation above 0.95?
# 3. **The command line.** Write the same atlas with
#    `python -m toylab atlas RUN_DIR --members 0 --no-dynamics` and compare its pages with
#    the ones above (which sections are missing, and why?).
# 4. **A bigger run.** Train `hidden = [16, 16]` on the rings (`{"name": "rings", ...}`)
#    and browse the atlas: find a neuron that fires on one ring only, and state it as a
#    claim (notebook 05).
