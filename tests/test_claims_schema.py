"""One schema: constructors, claim files and their documentation use the same names."""

import inspect
import re

import toylab.claims as claims
from toylab.claims import files
from toylab.claims._kinds import KINDS


def test_constructors_take_the_schema_parameters():
    for name, kind in KINDS.items():
        if name in ("function", "analysis"):
            continue  # Claim.from_function / from_analysis
        params = inspect.signature(getattr(claims, name)).parameters
        assert [p for p in params if p not in ("neuron", "statement")] == list(kind.names), name


def test_the_claim_file_table_documents_every_file_kind():
    block = files.__doc__.split("====\n", 1)[1].rsplit("\n====", 1)[0]  # the rst table
    table = dict(re.findall(r"^``(\w+)``\s+(.+)$", block, re.M))
    assert sorted(table) == sorted(files.FILE_KINDS)
    for name in files.FILE_KINDS:
        keys = re.findall(r"``(\w+)\??``", table[name])
        assert sorted(keys) == sorted(KINDS[name].names), name
    assert sorted(files.FILE_KINDS) == sorted(k for k, v in KINDS.items() if v.in_files)
