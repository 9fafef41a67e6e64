"""Jinja2 templates of the atlas (autoescaped: every value is HTML-escaped unless it is
``markupsafe.Markup``). Kept in Python so they ship with the package without package data."""

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#222;
background:#fafafa;font-size:17px;line-height:1.45}
header{background:#263238;color:#fff;padding:.6em 1.2em}
header a{color:#cfe3ff}
header h1{margin:.1em 0;font-size:1.5em}
main{padding:1em 1.4em;max-width:1200px}
code{background:#eceff1;padding:0 .25em;border-radius:3px}
header code{background:#37474f;color:#fff}
nav.crumbs{font-size:.95em;margin-bottom:.2em}
nav.seeds a{display:inline-block;padding:.2em .7em;margin:.15em;border:1px solid #90a4ae;
border-radius:4px;text-decoration:none;color:#263238;background:#fff}
nav.seeds a.on{background:#263238;color:#fff}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(112px,1fr));gap:8px}
.cell{background:#fff;border:1px solid #ddd;border-radius:4px;padding:4px;text-align:center;
font-size:.8em;text-decoration:none;color:#222}
.cell:hover{border-color:#263238}
.cell img{width:100%;image-rendering:pixelated;display:block}
table{border-collapse:collapse;margin:.4em 0 1em}
td,th{border:1px solid #ccc;padding:.2em .6em;text-align:left}
th{background:#eceff1}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.cols{display:flex;flex-wrap:wrap;gap:1.5em}
.cols>div{flex:1 1 320px}
figure{margin:.5em 0}
figcaption{font-size:.85em;color:#555;max-width:640px}
img.fig{max-width:100%;height:auto;border:1px solid #ddd;background:#fff}
img.strip{height:110px;width:auto;image-rendering:pixelated}
.verdict-holds{color:#1a7f37;font-weight:bold}
.verdict-fails{color:#c62828;font-weight:bold}
.note{color:#666;font-size:.9em}
"""

BASE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{% block title %}{% endblock %}</title>
<style>{{ css }}</style></head>
<body>
<header>{% block header %}{% endblock %}</header>
<main>{% block main %}{% endblock %}</main>
</body></html>
"""

#: the index pages' member switcher: one member's section shown at a time (by URL hash)
MEMBER_NAV = """<script>
(function () {
  var sections = document.querySelectorAll("section.member");
  var links = document.querySelectorAll("nav.seeds a");
  function show(id) {
    if (!document.getElementById(id)) { id = sections[0].id; }
    sections.forEach(function (s) { s.hidden = s.id !== id; });
    links.forEach(function (a) { a.classList.toggle("on", a.getAttribute("href") === "#" + id); });
  }
  links.forEach(function (a) {
    a.addEventListener("click", function () { show(a.getAttribute("href").slice(1)); });
  });
  window.addEventListener("hashchange", function () { show(location.hash.slice(1)); });
  show(location.hash.slice(1));
})();
</script>
"""

INDEX = (
    """{% extends "base" %}
{% block title %}atlas: {{ run_name }}{% endblock %}
{% block header %}
<h1>Neuron atlas: {{ run_name }}</h1>
<nav class="crumbs"><a href="run.html">run page</a> (data, training, accuracy)</nav>
{% endblock %}
{% block main %}
<nav class="seeds" id="seeds">member:
{% for m in members %}<a href="#member{{ m.member }}">member {{ m.member }} ({{ m.label }}){% if m.diverged %} diverged{% endif %}</a>
{% endfor %}</nav>
{% if planar %}<p class="note">Each thumbnail is a neuron's value over the input domain (red
positive, blue negative, white zero; each with its own scale). Click one for its page.</p>
{% else %}<p class="note">The inputs are not a 2-D box, so there are no maps. Click a neuron
for its page.</p>{% endif %}
{% for m in members %}
<section class="member" id="member{{ m.member }}">
<h2>member {{ m.member }} ({{ m.label }}){% if m.accuracy %}: {{ m.accuracy }}{% endif %}</h2>
{% if m.diverged %}<p class="note verdict-fails">{{ m.diverged }}</p>{% endif %}
{% for layer in m.layers %}
<h3><code>{{ layer.name }}</code></h3>
<div class="grid">
{% for n in layer.neurons %}<a class="cell" href="{{ n.href }}">{% if n.thumb %}<img src="{{ n.thumb }}" alt="map of {{ n.address }}" width="96" height="96">{% endif %}<code>{{ n.address }}</code>{% if n.firing is not none %}<br>P(on)={{ "%.2f"|format(n.firing) }}{% endif %}</a>
{% endfor %}</div>
{% endfor %}
</section>
{% endfor %}
"""
    + MEMBER_NAV
    + """{% endblock %}
"""
)

NEURON = """{% extends "base" %}
{% block title %}{{ address }} (member {{ member }}): {{ run_name }}{% endblock %}
{% block header %}
<nav class="crumbs"><a href="../index.html#member{{ member }}">atlas</a> ›
member {{ member }} ({{ label }}) › <a href="../run.html">run page</a>
{% if prev %} · <a href="{{ prev.href }}">← <code>{{ prev.address }}</code></a>{% endif %}
{% if next %} · <a href="{{ next.href }}"><code>{{ next.address }}</code> →</a>{% endif %}</nav>
<h1><code id="address">{{ address }}</code></h1>
<div>{{ run_name }} · member {{ member }} ({{ label }})</div>
{% endblock %}
{% block main %}
<div class="cols">
<div>
{% if map_img %}<figure><img class="fig" src="{{ map_img }}" alt="map of {{ address }} (values on a grid; exact region boundaries, zero set and argmax drawn over it)">
<figcaption>{{ map_caption }}</figcaption></figure>
{% else %}<p class="note">No map: the input domain is not a 2-D box.</p>{% endif %}
</div>
<div>
<h2>{% if not stats or stats[0][1] == "exact" %}Exact statistics{% else %}Statistics ({{ stats[0][1] }}){% endif %}</h2>
{% if stats %}<table>
{% for k, v in stats %}<tr><th>{{ k }}</th><td class="num">{{ v }}</td></tr>
{% endfor %}</table>
{% else %}<p class="note">No exact analysis applies to this network and distribution.</p>{% endif %}
{% if match %}<h2>Matching handwritten neuron</h2>
<table>{% for k, v in match %}<tr><th>{{ k }}</th><td>{{ v }}</td></tr>{% endfor %}</table>
{% endif %}
</div>
</div>
{% if claims %}<h2>Claims</h2>
<table><tr><th>claim</th><th>verdict</th><th>tier</th><th>counterexample</th></tr>
{% for c in claims %}<tr><td>{{ c.statement }}</td>
<td class="{{ 'verdict-holds' if c.holds else 'verdict-fails' }}">{{ c.verdict }}</td>
<td>{{ c.tier }}</td><td>{{ c.counterexample }}</td></tr>
{% endfor %}</table>{% endif %}
<h2>Weights</h2>
<div class="cols">
<div><h3>incoming (bias {{ bias }})</h3>
<table><tr><th>from</th><th>weight</th></tr>
{% for w in incoming %}<tr><td>{% if w.href %}<a href="{{ w.href }}"><code>{{ w.address }}</code></a>{% else %}<code>{{ w.address }}</code>{% endif %}</td>
<td class="num" style="background:{{ w.color }}">{{ w.text }}</td></tr>
{% endfor %}</table></div>
<div><h3>outgoing</h3>
<table><tr><th>to</th><th>weight</th></tr>
{% for w in outgoing %}<tr><td>{% if w.href %}<a href="{{ w.href }}"><code>{{ w.address }}</code></a>{% else %}<code>{{ w.address }}</code>{% endif %}</td>
<td class="num" style="background:{{ w.color }}">{{ w.text }}</td></tr>
{% endfor %}</table></div>
</div>
{% if dynamics_img %}<h2>During training</h2>
<figure><img class="fig strip" src="{{ dynamics_img }}" alt="map of {{ address }} at each checkpoint">
<figcaption>{{ dynamics_caption }}</figcaption></figure>{% endif %}
{% if feature_viz %}<h2>Feature visualization</h2>
<table><tr><th>start</th><th>end</th><th>value / score</th></tr>
{% for r in feature_viz %}<tr><td>{{ r.start }}</td><td>{{ r.end }}</td><td class="num">{{ r.score }}</td></tr>
{% endfor %}</table>{% if feature_viz_note %}<p class="note">{{ feature_viz_note }}</p>{% endif %}{% endif %}
{% if examples %}<h2>Top dataset examples</h2>
<table><tr><th>rank</th><th>input</th><th>activation / score</th></tr>
{% for r in examples %}<tr><td>{{ loop.index }}</td><td>{{ r.x }}</td><td class="num">{{ r.score }}</td></tr>
{% endfor %}</table>{% if examples_note %}<p class="note">{{ examples_note }}</p>{% endif %}{% endif %}
{% for t in tuning %}<h2>Tuning curve{% if t.title %}: {{ t.title }}{% endif %}</h2>
<figure><img class="fig" src="{{ t.src }}" alt="tuning curve of {{ address }}"></figure>
{% endfor %}
{% for s in extra %}<h2>{{ s.title }}</h2>
{% if s.src %}<figure><img class="fig" src="{{ s.src }}" alt="{{ s.title }}"></figure>{% else %}<div>{{ s.body }}</div>{% endif %}
{% endfor %}
{% endblock %}
"""

RUN = """{% extends "base" %}
{% block title %}run: {{ run_name }}{% endblock %}
{% block header %}
<nav class="crumbs"><a href="index.html">atlas</a> › run page</nav>
<h1>Run: {{ run_name }}</h1>
{% endblock %}
{% block main %}
<table>{% for k, v in facts %}<tr><th>{{ k }}</th><td>{{ v }}</td></tr>{% endfor %}</table>
<h2>Accuracy</h2>
{% for d in diverged %}<p class="note verdict-fails">{{ d }}</p>{% endfor %}
<table><tr>{% for h in acc_header %}<th>{{ h }}</th>{% endfor %}</tr>
{% for row in acc_rows %}<tr>{% for v in row %}<td class="num">{{ v }}</td>{% endfor %}</tr>{% endfor %}
</table>
<p class="note">{{ acc_note }}</p>
{% if data_img %}<h2>Data and decision boundaries</h2>
<figure><img class="fig" src="{{ data_img }}" alt="data and decision boundaries">
<figcaption>{{ data_caption }} Samples by class; black: each network's decision boundary
(exact segments where an exact analysis applies); dashed magenta: the Bayes-optimal
boundary.</figcaption></figure>{% endif %}
{% if curves_img %}<h2>Training curves</h2>
<figure><img class="fig" src="{{ curves_img }}" alt="training curves"></figure>{% endif %}
{% if circuits %}<h2>Circuits</h2>
{% for c in circuits %}<figure><img class="fig" src="{{ c.src }}" alt="circuit of member {{ c.member }}">
<figcaption>member {{ c.member }} ({{ c.label }}): red positive, blue negative weights; width ∝ |w|.</figcaption></figure>
{% endfor %}{% endif %}
{% if methods %}<h2>Methods compared with the exact answer</h2>
<table><tr>{% for h in methods.header %}<th>{{ h }}</th>{% endfor %}</tr>
{% for row in methods.rows %}<tr>{% for v in row %}<td>{{ v }}</td>{% endfor %}</tr>{% endfor %}
</table>{% endif %}
{% endblock %}
"""

# --------------------------------------------------------------------------- feature atlas
# Runs of toy models of superposition: a page per feature ("input:i") instead of per neuron.

FEATURE_INDEX = (
    """{% extends "base" %}
{% block title %}atlas: {{ run_name }}{% endblock %}
{% block header %}
<h1>Feature atlas: {{ run_name }}</h1>
<nav class="crumbs"><a href="run.html">run page</a> (training, loss, dimensionality against density)</nav>
{% endblock %}
{% block main %}
<nav class="seeds" id="seeds">member:
{% for m in members %}<a href="#member{{ m.member }}">member {{ m.member }} ({{ m.label }})</a>
{% endfor %}</nav>
<p class="note">A toy model of superposition embeds n features (<code>input:i</code>) in m
hidden dimensions: feature i is column i of W. Every number here is an exact function of the
saved weights (float64). A cell is dark when the feature is represented (‖W_i‖ &gt;
{{ threshold }}); click it for the feature's page.</p>
{% for m in members %}
<section class="member" id="member{{ m.member }}">
<h2>member {{ m.member }} ({{ m.label }})</h2>
<p>{{ m.summary }}</p>
<div class="grid">
{% for f in m.features %}<a class="cell{% if f.represented %} on{% endif %}" href="{{ f.href }}"><code>{{ f.address }}</code><br>‖W‖={{ f.norm }}<br>D={{ f.dim }}<br><span class="note">{{ f.geometry }}</span></a>
{% endfor %}</div>
<figure><img class="fig" src="{{ m.figure }}" alt="interference and feature norms of member {{ m.member }}">
<figcaption>Left: WᵀW (red positive, blue negative) with the output bias b in the last
column. Middle: ‖W_i‖ coloured by how much of its dimension feature i shares
(Σ_{j≠i} (Ŵ_i·W_j)²).{% if m.embedding %} Right: the embedding in the m = 2 hidden plane,
with the polygon of represented features.{% endif %}</figcaption></figure>
</section>
{% endfor %}
<style>.cell.on{background:#263238;color:#fff}.cell.on .note{color:#cfd8dc}
.cell.on code{background:#37474f;color:#fff}</style>
"""
    + MEMBER_NAV
    + """{% endblock %}
"""
)

FEATURE = """{% extends "base" %}
{% block title %}{{ address }} (member {{ member }}): {{ run_name }}{% endblock %}
{% block header %}
<nav class="crumbs"><a href="../index.html#member{{ member }}">atlas</a> ›
member {{ member }} ({{ label }}) › <a href="../run.html">run page</a>
{% if prev %} · <a href="{{ prev.href }}">← <code>{{ prev.address }}</code></a>{% endif %}
{% if next %} · <a href="{{ next.href }}"><code>{{ next.address }}</code> →</a>{% endif %}</nav>
<h1><code id="address">{{ address }}</code>: {{ verdict }}</h1>
<div>{{ run_name }} · member {{ member }} ({{ label }})</div>
{% endblock %}
{% block main %}
<div class="cols">
<div>
<h2>Exact statistics</h2>
<table>{% for k, v in stats %}<tr><th>{{ k }}</th><td class="num">{{ v }}</td></tr>
{% endfor %}</table>
<p class="note">Exact functions of the saved weights, in float64.</p>
<h2>Embedding W_i</h2>
<table><tr><th>hidden dimension</th><th>weight</th></tr>
{% for w in embedding %}<tr><td><code>{{ w.address }}</code></td><td class="num" style="background:{{ w.color }}">{{ w.text }}</td></tr>
{% endfor %}</table>
</div>
<div>
<h2>Shares its dimensions with</h2>
<p class="note">Ŵ_i·W_j: how much feature j moves this feature's output direction (the
interference terms of D_i), largest first; the bar is |Ŵ_i·W_j| relative to ‖W_i‖.</p>
<table><tr><th>feature</th><th>Ŵ_i·W_j</th><th>cos</th><th></th></tr>
{% for r in shares %}<tr><td><a href="{{ r.href }}"><code>{{ r.address }}</code></a></td>
<td class="num" style="background:{{ r.color }}">{{ r.text }}</td><td class="num">{{ r.cos }}</td>
<td><div style="background:#90a4ae;height:.8em;width:{{ r.bar }}px"></div></td></tr>
{% endfor %}</table>
</div>
</div>
{% if claims %}<h2>Claims</h2>
<table><tr><th>claim</th><th>verdict</th><th>tier</th></tr>
{% for c in claims %}<tr><td>{{ c.statement }}</td>
<td class="{{ 'verdict-holds' if c.holds else 'verdict-fails' }}">{{ c.verdict }}</td>
<td>{{ c.tier }}</td></tr>
{% endfor %}</table>{% endif %}
{% endblock %}
"""

FEATURE_RUN = """{% extends "base" %}
{% block title %}run: {{ run_name }}{% endblock %}
{% block header %}
<nav class="crumbs"><a href="index.html">atlas</a> › run page</nav>
<h1>Run: {{ run_name }}</h1>
{% endblock %}
{% block main %}
<table>{% for k, v in facts %}<tr><th>{{ k }}</th><td>{{ v }}</td></tr>{% endfor %}</table>
<h2>Members</h2>
{% for d in diverged %}<p class="note verdict-fails">{{ d }}</p>{% endfor %}
<table><tr>{% for h in header %}<th>{{ h }}</th>{% endfor %}</tr>
{% for row in rows %}<tr>{% for v in row %}<td class="num">{{ v }}</td>{% endfor %}</tr>{% endfor %}
</table>
<p class="note">{{ note }}</p>
{% if dim_img %}<h2>Feature dimensionality against density</h2>
<figure><img class="fig" src="{{ dim_img }}" alt="D_i against feature density">
<figcaption>Red: D_i of every represented feature of every member; black: each member's
D* = m/‖W‖_F². Grey lines: the fractions of the paper's structures (1 dedicated dimension,
3/4 tetrahedron, 2/3 triangle, 1/2 antipodal pair, 2/5 pentagon, 3/8 square
antiprism).</figcaption></figure>{% endif %}
{% if curves_img %}<h2>Training curves</h2>
<figure><img class="fig" src="{{ curves_img }}" alt="training curves"></figure>{% endif %}
{% endblock %}
"""
