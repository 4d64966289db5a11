"""Your own PyTorch model: wrap_model in Python, `--model package.module:factory` (+ --weights) on the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image
from torch import nn

import dreamscope as ds
import synthetic_weights
import toy_models
from conftest import chelsea, error_line, run_good_and_mistakes
from dreamscope.errors import DreamscopeError
from dreamscope.io import images
from dreamscope.models import LayerInfo
from dreamscope.optvis import render

TESTS = Path(__file__).resolve().parents[1]  # the helpers (toy_models) live there


@pytest.fixture
def toy():
    return ds.wrap_model(toy_models.factory(), name="toy", device="cpu")


def test_layers_are_the_modules_dotted_names_with_channels(toy):
    assert {name: (info.channels, info.stride) for name, info in toy.layers.items()} == {
        "features.0": (8, 2),
        "features.1": (8, 2),
        "features.2": (16, 4),
        "features.3": (16, 4),
        "features": (16, 4),
    }
    assert toy.spec.default_layer == "features"  # the deepest at stride 16 or less
    assert toy.not_dreamable == {
        "pool": "its output is 1x1: one value per channel, no picture left to dream on",
        "flatten": "its output is 2-D (1x16), not a feature map (N, C, H, W) or a token sequence (N, T, C)",
        "classifier": "its output is 2-D (1x10), not a feature map (N, C, H, W) or a token sequence (N, T, C)",
    }
    with pytest.raises(DreamscopeError, match=r"no layer 'classifier' \(classifier is not dreamable: its output is 2-D"):
        toy.layer("classifier")
    assert toy.layer("logits") == LayerInfo("logits", "", 10, None)  # the network's own output


def test_own_classes_are_taken_by_index(toy):
    assert toy.resolve_class(3) == toy.resolve_class(" 3 ") == 3
    assert (toy.class_label(3), toy.class_names()) == ("class #3", None)
    for query, message in (
        ("banana", "model toy scores 10 classes of its own, not ImageNet's; give a class index from 0 to 9"),
        (12, "class 12 does not exist in model toy, which has classes 0-9"),
        (-1, "class -1 does not exist in model toy, which has classes 0-9"),
    ):
        with pytest.raises(DreamscopeError) as caught:
            toy.resolve_class(query)
        assert str(caught.value) == message


def test_a_shared_module_is_a_layer_per_call_and_an_unused_one_is_not_dreamable():
    model = ds.wrap_model(toy_models.SharedReLU(), device="cpu")
    assert list(model.layers) == ["conv1", "relu#1", "conv2", "relu#2"]
    assert model.not_dreamable["relu"] == "runs 2 times in one forward pass; each call is a layer: relu#1 to relu#2"
    assert model.not_dreamable["unused"] == "never runs in the forward pass"
    for no_classes in (lambda: model.layer("logits"), lambda: model.resolve_class(0)):  # its output is a feature map
        with pytest.raises(DreamscopeError, match="no class scores"):
            no_classes()


def test_preprocessing_mean_std_range_and_callable():
    rgb = torch.tensor([0.0, 0.5, 1.0]).view(1, 3, 1, 1)
    imagenet = ds.wrap_model(toy_models.factory(), mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), device="cpu")
    assert torch.allclose(
        imagenet.to_input(rgb).flatten(), torch.tensor([-0.485 / 0.229, (0.5 - 0.456) / 0.224, (1 - 0.406) / 0.225])
    )
    caffe_style = ds.wrap_model(toy_models.factory(), input_range=(0, 255), bgr=True, mean=(104, 117, 123), device="cpu")
    assert torch.allclose(caffe_style.to_input(rgb).flatten(), torch.tensor([255.0 - 104, 127.5 - 117, -123.0]))
    calls = []
    own = ds.wrap_model(toy_models.factory(), preprocess=lambda x: calls.append(x.shape) or x * 2 - 1, device="cpu")
    # the trial pass went through it, and the look at whether the network takes other sizes (it does)
    assert calls == [(1, 3, 224, 224), (1, 3, 160, 224)]
    assert torch.equal(own.to_input(rgb).flatten(), torch.tensor([-1.0, 0.0, 1.0]))


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: ds.wrap_model("not a module"), "needs a torch.nn.Module, got str"),
        (lambda: ds.wrap_model(toy_models.factory(), preprocess=abs, mean=(0, 0, 0)), "either preprocess or mean"),
        (lambda: ds.wrap_model(toy_models.factory(), mean=(0.5, 0.5)), "one value per colour channel"),
        (lambda: ds.wrap_model(toy_models.factory(), default_layer="feature"), "did you mean features"),
        (lambda: ds.wrap_model(nn.Conv2d(1, 4, 3), device="cpu"), "failed on a 224x224 RGB trial picture"),
        (
            lambda: ds.wrap_model(nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 2)), device="cpu"),
            "has no layer whose output is a feature map",
        ),
    ],
)
def test_bad_wrapping_is_a_clear_error(call, message):
    with pytest.raises(DreamscopeError, match=message):
        call()


def test_every_recipe_takes_a_wrapped_model(toy):
    photo = chelsea((64, 48))
    dreamed = ds.dream(photo, model=toy, layer="features.2", octaves=2, steps=10)
    with torch.no_grad():
        before, after = (
            render.activations(toy, ["features.2"], images.to_tensor(img))["features.2"].pow(2).mean() for img in (photo, dreamed)
        )
    assert after > 1.25 * before
    # Plain pixels: this tiny network's receptive field is too small for the 1/f prior to move fast.
    events = list(ds.visualize_iter(ds.channel("features.2", 5), model=toy, size=64, steps=20, param="pixels", robust=False))
    assert events[-1].loss > events[0].loss + 0.05


def test_a_factory_module_with_weights_loads_like_the_cli(tmp_path):
    torch.manual_seed(1)
    trained = toy_models.ToyNet()
    torch.save(trained.state_dict(), tmp_path / "toy.pth")
    model = ds.load_model("toy_models:factory", "cpu", weights=tmp_path / "toy.pth")
    for key, value in trained.state_dict().items():
        assert torch.equal(model.net.state_dict()[key], value)
    assert model.name == "toy_models:factory" and "features.2" in model.layers
    assert model.weights_path == (tmp_path / "toy.pth").resolve()


def test_a_factorys_own_wrapped_model_is_not_changed(monkeypatch):
    built = toy_models.wrapped_factory()
    monkeypatch.setattr(toy_models, "built_once", lambda: built, raising=False)
    model = ds.load_model("toy_models:built_once", "cpu")
    assert model is not built and (model.name, built.name) == ("toy_models:built_once", "toy")
    assert model.net is built.net and model.layers == built.layers


def test_nan_weights_are_refused_for_a_factory_and_a_wrapped_module(tmp_path):
    state = toy_models.factory().state_dict()
    state["features.2.bias"][1] = float("inf")
    torch.save(state, tmp_path / "toy.pth")
    with pytest.raises(
        DreamscopeError,
        match=r"weights in .*toy\.pth hold NaN or infinite values \(first in key features\.2\.bias\); "
        "the file is damaged",
    ):
        ds.load_model("toy_models:factory", "cpu", weights=tmp_path / "toy.pth")
    broken = toy_models.factory()
    with torch.no_grad():
        broken.classifier.weight[0, 0] = float("nan")
    with pytest.raises(DreamscopeError) as caught:
        ds.wrap_model(broken, name="toy", device="cpu")
    assert str(caught.value) == (
        "the parameters of model toy hold NaN or infinite values (first in parameter classifier.weight); "
        "load or train its weights again"
    )


GOOD = {
    "layers": ("layers", "--model", "toy_models:wrapped_factory", "--json"),
    "dream": (
        "dream",
        "photo.png",
        "--model",
        "toy_models:factory",
        "--weights",
        "toy.pth",
        "--layer",
        "features.2",
        "--octaves",
        "2",
        "--steps",
        "3",
        "-o",
        "out.png",
    ),
}
# Mistakes stop before any work: they share one interpreter (test_cli's driver) to save start-ups.
MISTAKES = {
    "shape-mismatch": ("dream", "photo.png", "--model", "toy_models:factory", "--weights", "wide.pth"),
    "raises": ("dream", "photo.png", "--model", "toy_models:raising_factory"),
    "not-a-module": ("dream", "photo.png", "--model", "toy_models:not_a_module"),
    "missing-module": ("layers", "--model", "no_such_models:factory"),
    "missing-factory": ("layers", "--model", "toy_models:factroy"),
    "malicious": ("dream", "photo.png", "--model", "toy_models:factory", "--weights", "evil.pth"),
    "corrupt": ("dream", "photo.png", "--model", "toy_models:factory", "--weights", "broken.pth"),
}
NEEDLES = {
    "shape-mismatch": [
        "weights in wide.pth do not fit toy_models:factory",
        "features.0.weight is 16x3x3x3 in the file",
        "needs 8x3x3x3",
    ],
    "raises": ["the factory toy_models:raising_factory raised RuntimeError: checkpoint server unreachable"],
    "not-a-module": ["returned a dict", "must return a torch.nn.Module"],
    "missing-module": ["cannot import no_such_models", "PYTHONPATH"],
    "missing-factory": ["toy_models has no 'factroy'", "did you mean factory"],
    "malicious": ["cannot read weights from evil.pth", "refuses to unpickle"],
    "corrupt": ["cannot read weights from broken.pth", "damaged"],
}


@pytest.fixture(scope="module")
def cli(tmp_path_factory, run_cli_many):
    root = tmp_path_factory.mktemp("custom-cli")
    chelsea().save(root / "photo.png")
    torch.save(toy_models.factory().state_dict(), root / "toy.pth")
    torch.save(toy_models.wide_factory().state_dict(), root / "wide.pth")
    synthetic_weights.write_evil_pickle(root / "evil.pth", root / "marker")
    (root / "broken.pth").write_bytes((root / "toy.pth").read_bytes()[:300])
    env = {"PYTHONPATH": str(TESTS), "OMP_NUM_THREADS": "1"}
    results = run_good_and_mistakes(root, GOOD, MISTAKES, run_cli_many, env)
    return root, results


def test_cli_lists_a_factory_models_layers_and_why_others_are_not(cli):
    result = cli[1]["layers"]
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    dreamable = {row["name"]: row["channels"] for row in rows if row.get("dreamable", True)}
    assert dreamable == {"features.0": 8, "features.1": 8, "features.2": 16, "features.3": 16, "features": 16}
    refused = {row["name"]: row["reason"] for row in rows if row.get("dreamable") is False}
    assert set(refused) == {"pool", "flatten", "classifier"} and "2-D" in refused["classifier"]


def test_cli_dreams_with_a_factory_model_and_its_weights(cli):
    result = cli[1]["dream"]
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == ["wrote out.png"]
    with Image.open(cli[0] / "out.png") as dreamed, Image.open(cli[0] / "photo.png") as original:
        assert dreamed.size == original.size and dreamed.tobytes() != original.tobytes()


@pytest.mark.parametrize("case", MISTAKES)
def test_cli_bad_models_are_one_error_line(cli, case):
    line = error_line(cli[1][case])
    assert cli[1][case].returncode == 1
    for needle in NEEDLES[case]:
        assert needle in line, line
    assert not (cli[0] / "marker").exists() and not (cli[0] / "photo_dream.png").exists()
