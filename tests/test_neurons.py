import pytest
from hypothesis import given
from hypothesis import strategies as st

from toylab import NeuronId, ToylabError
from toylab.neurons import neuron_ids, resolve

WIDTHS = {"input": 2, "hidden_0.pre": 4, "hidden_0": 4, "output": 2}


@given(
    layer=st.sampled_from(["input", "output"]) | st.integers(0, 50).map(lambda k: f"hidden_{k}"),
    unit=st.integers(0, 10_000),
    pre=st.booleans(),
)
def test_format_parse_round_trip(layer, unit, pre):
    nid = NeuronId(layer, unit, pre)
    assert NeuronId.parse(str(nid)) == nid
    assert str(NeuronId.parse(str(nid))) == str(nid)


def test_canonical_forms():
    assert str(NeuronId.parse("hidden_0:3")) == "hidden_0:3"
    assert NeuronId.parse("hidden_0.pre:3").pre
    assert NeuronId.parse("output:1").key == "output"


@pytest.mark.parametrize(
    "bad",
    [
        "hidden_0",
        "hidden_0:",
        "hidden_0:x",
        "hidden0:1",
        "hidden_01:1",
        "hiden_0:1",
        ":3",
        3,
        "hidden_0:-1",
    ],  # fmt: skip
)
def test_parse_rejects_bad_addresses(bad):
    with pytest.raises(ToylabError):
        NeuronId.parse(bad)


def test_resolve_did_you_mean_and_range():
    with pytest.raises(ToylabError, match="Did you mean 'hidden_0'"):
        resolve("hiden_0:1", WIDTHS)
    with pytest.raises(ToylabError, match=r"has 4 units \(0\.\.3\), got unit 4"):
        resolve("hidden_0:4", WIDTHS)
    with pytest.raises(ToylabError, match="hidden_0.pre"):
        resolve("hidden_1:0", WIDTHS)
    assert resolve("hidden_0.pre:3", WIDTHS) == NeuronId("hidden_0", 3, True)


def test_neuron_ids_lists_every_unit():
    ids = neuron_ids(WIDTHS)
    assert [str(i) for i in ids] == [f"hidden_0:{u}" for u in range(4)] + ["output:0", "output:1"]
