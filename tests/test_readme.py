import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def quick_start_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quick start", 1)[1]
    block = re.search(r"```\n(.*?)```", section, re.S)
    assert block, "README's Quick start has no code block"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_quick_start_has_exactly_two_commands():
    cmds = quick_start_commands()
    assert len(cmds) == 2
    assert "toylab demo" in cmds[0]
    assert "pytest" in cmds[1] and "ruff" in cmds[1] and "mypy" in cmds[1]


def test_ci_runs_exactly_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert quick_start_commands()[1] in ci


def test_api_tour_runs():
    text = (ROOT / "README.md").read_text()
    code = re.search(r"## A short tour of the API\n\n```python\n(.*?)```", text, re.S).group(1)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    res = namespace["res"]
    assert res.tier == "exact" and 0.5 < res.accuracy <= res.bayes_accuracy + 1e-12


def test_superposition_tour_runs():
    """The README's superposition block: one sweep program, the pentagon's exact numbers."""
    text = (ROOT / "README.md").read_text()
    code = re.search(r"## The superposition lab\n.*?```python\n(.*?)```", text, re.S).group(1)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    m = namespace["m"]
    assert [s.name for s in m.structures] == ["pentagon"]
    assert abs(float(m.sum_dimensionality) - 2.0) < 1e-12  # a tight frame: Σ D_i = m exactly
    assert namespace["r"].num_members == 6


def test_universality_tour_runs():
    """The README's universality and dynamics block runs and its numbers are exact where
    it says so."""
    text = (ROOT / "README.md").read_text()
    block = r"## Universality, what neurons model, and training dynamics\n.*?```python\n(.*?)```"
    code = re.search(block, text, re.S).group(1)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert namespace["match"].tier == "exact" and namespace["cka"].tier == "exact"
    assert abs(float(namespace["cka"].values[0]) - 1.0) < 1e-9  # the reference against itself
    assert namespace["path"].accuracy_tier == "exact"


def test_curves_tour_runs():
    """The README's curve-detector block: certified numbers that bracket what they claim."""
    text = (ROOT / "README.md").read_text()
    code = re.search(r"## Curve detectors, certified\n.*?```python\n(.*?)```", text, re.S).group(1)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    tun, best, det = namespace["tun"], namespace["best"], namespace["det"]
    assert tun.tier == "certified" and tun.converged
    assert best.lower <= best.upper and best.value == best.lower  # attained at a rendered image
    assert list(det.counts) == [1]  # the handwritten detector passes the certified rule
