import pytest
import torch

from dreamscope import objectives as O
from dreamscope.errors import DreamscopeError


def acts():
    torch.manual_seed(0)
    return {"a": torch.randn(1, 4, 5, 5), "b": torch.randn(1, 3, 2, 2)}


def test_algebra_composes_like_numbers():
    a, b = O.layer_l2("a"), O.layer_l2("b", [0, 2])
    x = acts()
    va, vb = float(a(x)), float(b(x))
    assert float((a + 2 * b)(x)) == pytest.approx(va + 2 * vb)
    assert float((a - b)(x)) == pytest.approx(va - vb)
    assert float((-a)(x)) == pytest.approx(-va)
    assert float((a / 4)(x)) == pytest.approx(va / 4)
    assert float(sum([a, b])(x)) == pytest.approx(va + vb)
    assert float((1 - a)(x)) == pytest.approx(1 - va)
    assert (a + b).layers == ("a", "b")
    assert "l2(b[0,2])" in repr(b)


def test_l2_of_selected_channels():
    x = acts()
    assert float(O.layer_l2("a", [1])(x)) == pytest.approx(float(x["a"][:, 1].pow(2).mean()))


def test_guided_objective_pulls_toward_best_matching_guide_feature():
    guide = torch.zeros(1, 2, 1, 2)
    guide[0, :, 0, 0] = torch.tensor([1.0, 0.0])
    guide[0, :, 0, 1] = torch.tensor([0.0, 1.0])
    objective = O.guided("a", guide)
    x = torch.tensor([[[[2.0, 0.1]], [[0.5, 3.0]]]], requires_grad=True)  # positions match guide 0, then 1
    objective({"a": x}).backward()
    assert torch.allclose(x.grad[0, :, 0, 0], torch.tensor([0.5, 0.0]))  # mean over 2 positions
    assert torch.allclose(x.grad[0, :, 0, 1], torch.tensor([0.0, 0.5]))


@pytest.mark.parametrize("spec, expected", [
    ("3,17", [3, 17]), ("3, 3 ,5", [3, 5]), (None, None), ("", None), ([1, 2], [1, 2]),
    ("strongest:10", O.ChannelRanking(True, 10)), ("Weakest:2", O.ChannelRanking(False, 2)),
])
def test_parse_channels(spec, expected):
    assert O.parse_channels(spec) == expected


@pytest.mark.parametrize("spec", ["foo", "strongest:0", "loudest:3", "-1", "1,x"])
def test_parse_channels_rejects(spec):
    with pytest.raises(DreamscopeError, match="channel"):
        O.parse_channels(spec)


def test_rank_channels():
    x = torch.zeros(1, 4, 2, 2)
    x[:, 2] = 3.0
    x[:, 0] = -2.0  # strength is magnitude, like the L2 objective
    x[:, 3] = 1.0
    assert O.rank_channels(x, O.ChannelRanking(True, 2)) == [2, 0]
    assert O.rank_channels(x, O.ChannelRanking(False, 1)) == [1]


def test_parse_layer_weights():
    assert O.parse_layer_weights("s") == [("s", 1.0)]
    assert O.parse_layer_weights(["a=1,b=0.5", "c"]) == [("a", 1.0), ("b", 0.5), ("c", 1.0)]
    for bad in ["a=x", "a=nan", ""]:
        with pytest.raises(DreamscopeError):
            O.parse_layer_weights(bad)
