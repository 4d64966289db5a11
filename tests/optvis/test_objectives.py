import pytest
import torch

from dreamscope.errors import DreamscopeError
from dreamscope.optvis import objectives as O


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


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("3,17", [3, 17]),
        ("3, 3 ,5", [3, 5]),
        (None, None),
        ("", None),
        ([1, 2], [1, 2]),
        ("strongest:10", O.ChannelRanking(True, 10)),
        ("Weakest:2", O.ChannelRanking(False, 2)),
    ],
)
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


def test_objectives_describe_themselves_and_declare_how_they_reduce():
    composed = O.layer_l2("a") - 0.5 * O.channel("b", 1) + 2 * O.direction("a", [1, 0, 0, 0])
    assert composed.description == "l2(a) - 0.5 * channel(b:1) + 2 * direction(a)"
    assert composed.reduction == "mean"  # every term a mean over its layer's positions: tiles add up exactly
    for whole in (
        O.class_logit("banana"),
        O.neuron("a", 0),
        O.diversity("a"),
        O.total_variation(),
        O.Objective(lambda a: a["a"].max(), ["a"], "max(a)"),
    ):
        assert (composed + whole).reduction == "whole", whole
    with pytest.raises(ValueError, match="exactly one"):
        O.Objective(lambda a: a["a"].mean() + a["b"].mean(), ["a", "b"], "two", "mean")


def test_tile_values_add_up_to_the_whole_at_every_stride():
    x = acts()  # "a" is 5x5, "b" 2x2: two strides
    objective = O.layer_l2("a") + 3 * O.layer_l2("b", [0]) + 1.5
    halves = [
        ({"a": x["a"][..., :, :3], "b": x["b"][..., :, :1]}, {"a": 15 / 25, "b": 2 / 4}),
        ({"a": x["a"][..., :, 3:], "b": x["b"][..., :, 1:]}, {"a": 10 / 25, "b": 2 / 4}),
    ]
    total = sum(float(objective.tile_value(core, shares)) for core, shares in halves) + objective.constant
    assert total == pytest.approx(float(objective(x)), rel=1e-6)
    with pytest.raises(DreamscopeError, match="whole picture"):
        (objective + O.neuron("a", 0)).tile_value(*halves[0])


def test_an_objective_can_target_one_sample_of_a_batch():
    batch = {"a": torch.stack([torch.full((4, 2, 2), float(k)) for k in range(3)])}
    assert float(O.channel("a", 1, sample=2)(batch)) == 2.0
    assert float(O.layer_l2("a", sample=1)(batch)) == 1.0
    sheet = O.channel_sheet("a", [0, 3])  # picture 0 maximizes channel 0, picture 1 channel 3
    assert float(sheet(batch)) == 0.0 + 1.0 and sheet.description == "channel(a:0)@0 + channel(a:3)@1"


def test_grouped_diversity_compares_only_pictures_of_the_same_group():
    """A batch of two channels' samples: each group's term is the plain diversity of its pictures, and no gradient
    crosses from one group to the other."""
    torch.manual_seed(1)
    act = torch.randn(5, 4, 3, 3, requires_grad=True)
    grouped = O.diversity("a", groups=[[1, 2], [3, 4]])
    value = grouped({"a": act})
    expected = O.diversity("a")({"a": act[1:3]}) + O.diversity("a")({"a": act[3:5]})
    assert float(value) == pytest.approx(float(expected))
    assert "2 groups" in repr(grouped)
    first_group = O.diversity("a", groups=[[1, 2]])({"a": act})
    (gradient,) = torch.autograd.grad(first_group, act)
    assert gradient[[0, 3, 4]].abs().max() == 0 and gradient[[1, 2]].abs().max() > 0


def test_an_objective_of_ones_own_from_the_factory_decorator():
    """One function of the activation: the decorator adds the layer it reads, the sample, the description, the
    declared reduction and the check, as for the library's own."""
    from dreamscope.optvis.objectives import objective

    @objective(
        lambda layer, index: f"edge({layer}:{index})", "mean", check=lambda layer, index: O._channels_in_range(layer, [index])
    )
    def edge(layer: str, index: int):
        return lambda act: act[:, index].abs().mean()

    made = edge("stage3.1", 2, sample=1)
    assert made.description == "edge(stage3.1:2)@1" and made.layers == ("stage3.1",) and made.reduction == "mean"
    act = torch.zeros(3, 4, 5, 5)
    act[1, 2] = -2.0
    act[0, 2] = 9.0  # another sample: not read
    assert float(made({"stage3.1": act})) == 2.0
    assert float(edge("stage3.1", 2)({"stage3.1": act})) == pytest.approx(11 / 3)  # the whole batch: (9 + 2) / 3
