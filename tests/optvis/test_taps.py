import threading
import time

import pytest
import torch
from torch import nn

from dreamscope.optvis import taps


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


def test_one_dispatch_hook_per_module_however_many_captures():
    net = tiny()
    for _ in range(3):
        taps.capture(net, ["2"], torch.zeros(1))
    assert [len(m._forward_hooks) for m in net] == [0, 0, 1, 0]  # never one per call (Lucent's leak)
    net(torch.zeros(1))  # outside a capture the hook does nothing: the network runs to the end
    assert [m.calls for m in net] == [4, 4, 4, 1]

    class Boom(nn.Module):
        def forward(self, x):
            raise ValueError("boom")

    net = nn.Sequential(Counting(), Boom(), Counting())
    with pytest.raises(ValueError):
        taps.capture(net, ["2"], torch.zeros(1))
    assert float(taps.capture(nn.Sequential(Counting()), ["0"], torch.zeros(1))["0"]) == 1  # no capture left active


class Slow(nn.Module):
    """Adds its input and sleeps, so two threads' forward passes interleave inside it."""

    def forward(self, x):
        time.sleep(0.01)
        return x + 1


def test_threads_sharing_a_network_each_see_their_own_activations():
    net = nn.Sequential(*[Slow() for _ in range(6)])
    results, errors = {}, []

    def work(start: float):
        try:
            for _ in range(5):
                out = taps.capture(net, ["3", "1"], torch.full((1,), start))
                results.setdefault(start, []).append((float(out["1"]), float(out["3"])))
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(float(k),)) for k in (0, 100, 200)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    for start, seen in results.items():
        assert seen == [(start + 2, start + 4)] * 5


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


def test_a_replaced_output_is_what_the_later_modules_see_in_this_capture_only():
    net = tiny()
    out = taps.capture(net, ["0", "3"], torch.zeros(1), replace={"1": lambda output: output * 10})
    assert float(out["0"]) == 1 and float(out["3"]) == 22  # (1 + 1) * 10, then + 1 twice
    assert float(taps.capture(net, ["3"], torch.zeros(1))["3"]) == 4  # the next capture runs the network as it is
    with pytest.raises(KeyError, match="no module named '9'"):
        taps.capture(net, ["3"], torch.zeros(1), replace={"9": lambda output: output})
