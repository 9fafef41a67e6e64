"""The workshop notebooks run top to bottom, at small sizes, in a fresh kernel.

Notebooks live in ``notebooks/NN_name.py`` (jupytext "py:percent", the source of truth in
git; ``.ipynb`` files are generated locally and never tracked). Each one starts with a
cell tagged ``parameters`` that sets its sizes and a ``SMALL`` dict of test sizes; here we
inject ``globals().update(SMALL)`` right after that cell and execute the notebook with
nbclient in a temporary directory (so run directories land there), with matplotlib's Agg
backend. Any exception in any cell fails the test.
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jupytext
import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py"))
IDS = [p.name for p in NOTEBOOKS]


def _parameters_index(nb: nbformat.NotebookNode) -> int:
    found = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    assert len(found) == 1, f"need exactly one cell tagged 'parameters', found {len(found)}"
    return found[0]


def test_notebooks_are_found():
    assert len(NOTEBOOKS) >= 2, f"no numbered notebooks found in {ROOT / 'notebooks'}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_structure(path: Path):
    nb = jupytext.read(path)
    i = _parameters_index(nb)
    params = nb.cells[i]
    assert params.cell_type == "code"
    assert all(c.cell_type == "markdown" for c in nb.cells[:i]), (
        "parameters must be the first code cell"
    )
    # SMALL is a dict literal whose keys are variables set in the parameters cell itself.
    tree = ast.parse(params.source)
    assigned = {t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets
                if isinstance(t, ast.Name)}  # fmt: skip
    small = [node.value for node in tree.body if isinstance(node, ast.Assign)
             and any(isinstance(t, ast.Name) and t.id == "SMALL" for t in node.targets)]  # fmt: skip
    assert len(small) == 1 and isinstance(small[0], ast.Dict), "need one SMALL = {...} dict"
    keys = [ast.literal_eval(k) for k in small[0].keys]
    assert keys, "SMALL must override at least one size"
    unknown = set(keys) - (assigned - {"SMALL"})
    assert not unknown, f"SMALL overrides {sorted(unknown)}, which the parameters cell never sets"
    # It ends with an Exercises section of 2-4 numbered exercises.
    last = nb.cells[-1]
    assert last.cell_type == "markdown" and re.search(r"^#+\s*Exercises", last.source, re.M), (
        "the last cell must be a markdown '## Exercises' section"
    )
    num = len(re.findall(r"^\d+\.\s", last.source, re.M))
    assert 2 <= num <= 4, f"need 2-4 numbered exercises, found {num}"


def test_no_notebook_outputs_in_git():
    """Only jupytext sources are tracked; generated ``.ipynb`` files (with outputs) are not."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    out = subprocess.run(["git", "ls-files", "notebooks"], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout.split()  # fmt: skip
    tracked = [f for f in out if f.endswith(".ipynb")]
    assert not tracked, f"generated notebooks are tracked in git: {tracked}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_runs(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    monkeypatch.chdir(tmp_path)
    nb = jupytext.read(path)
    i = _parameters_index(nb)
    override = nbformat.v4.new_code_cell(
        "import sys\n"
        f"assert sys.prefix == {sys.prefix!r}, sys.prefix  # the kernel runs this environment\n"
        "globals().update(SMALL)",
        metadata={"tags": ["injected-parameters"]},
    )
    nb.cells.insert(i + 1, override)
    client = NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
