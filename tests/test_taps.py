import pytest
import torch
from torch import nn

from dreamscope import taps


class Counting(nn.Module):
    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return x + 1


def tiny():
    return nn.Sequential(Counting(), Counting(), Counting(), Counting())


def test_returns_requested_outputs_and_stops_after_the_deepest():
    net = tiny()
    out = taps.capture(net, ["1", "0"], torch.zeros(1))
    assert float(out["0"]) == 1 and float(out["1"]) == 2
    assert [m.calls for m in net] == [1, 1, 0, 0]  # no work past layer 1


def test_hooks_are_always_removed():
    net = tiny()
    taps.capture(net, ["2"], torch.zeros(1))
    assert all(len(m._forward_hooks) == 0 for m in net)

    class Boom(nn.Module):
        def forward(self, x):
            raise ValueError("boom")

    net = nn.Sequential(Counting(), Boom(), Counting())
    with pytest.raises(ValueError):
        taps.capture(net, ["2"], torch.zeros(1))
    assert all(len(m._forward_hooks) == 0 for m in net)


def test_unknown_module_and_module_that_never_runs():
    with pytest.raises(KeyError):
        taps.capture(tiny(), ["9"], torch.zeros(1))

    class Skips(nn.Module):
        def __init__(self):
            super().__init__()
            self.used, self.unused = Counting(), Counting()

        def forward(self, x):
            return self.used(x)

    with pytest.raises(RuntimeError, match="never ran"):
        taps.capture(Skips(), ["unused"], torch.zeros(1))


def test_real_model_forward_stops_at_the_layer():
    import dreamscope as ds

    model = ds.load_model()
    calls = []
    handle = model.net._conv_head.register_forward_hook(lambda *a: calls.append(1))
    try:
        taps.capture(model.net, [model.layer("stage5.2").module], torch.rand(1, 3, 64, 64))
    finally:
        handle.remove()
    assert calls == []  # the head never ran
