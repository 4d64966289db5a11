"""GoogLeNet with Caffe's layer names: structure, every weights format users have, and every way a file can be wrong.

No real weights exist on this machine: synthetic files of the real shapes, written in the real formats, go
through the same code users run (load_model / --weights).
"""

from __future__ import annotations

import math
import shutil

import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

import caffe_writer
import dreamscope as ds
import synthetic_weights as synthetic
from conftest import chelsea, error_line, run_good_and_mistakes
from dreamscope.errors import DreamscopeError
from dreamscope.io import images
from dreamscope.models import get_spec
from dreamscope.models.weights import FileWeights
from dreamscope.optvis import render, taps

CHANNELS = {  # from the issue and Caffe's deploy.prototxt
    "conv1/7x7_s2": 64,
    "conv2/3x3_reduce": 64,
    "conv2/3x3": 192,
    "inception_3a/output": 256,
    "inception_3b/output": 480,
    "inception_4a/output": 512,
    "inception_4c/output": 512,
    "inception_4d/output": 528,
    "inception_4e/output": 832,
    "inception_5a/output": 832,
    "inception_5b/output": 1024,
    "inception_4c/pool_proj": 64,
}


@pytest.fixture(autouse=True)
def no_installed_weights(tmp_path, monkeypatch):
    """Every test starts with an empty cache folder and no weights variables."""
    monkeypatch.setenv("DREAMSCOPE_CACHE", str(tmp_path / "cache"))
    for name in ("googlenet", "googlenet-places365"):
        monkeypatch.delenv(FileWeights(name, ("x",), "").env, raising=False)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The same synthetic GoogLeNet in five files: two Caffe formats and three state-dict layouts."""
    folder = tmp_path_factory.mktemp("googlenet")
    net = synthetic.reference()
    paths = {
        "caffemodel": synthetic.write_caffemodel(folder / "bvlc_googlenet.caffemodel", net),
        "caffemodel-pre-2015": synthetic.write_caffemodel(folder / "old.caffemodel", net, legacy=True),
    }
    for layout in ("ours", "caffe", "neural-dream"):
        paths[layout] = folder / f"{layout}.pth"
        torch.save(synthetic.state_dict(net, layout), paths[layout])
    save_file(synthetic.state_dict(net, "ours"), str(folder / "ours.safetensors"))
    paths["safetensors"] = folder / "ours.safetensors"
    paths["no-classifier"] = folder / "bvlc_googlenet_no_classifier.pth"  # neural-dream's files stop at pool5
    torch.save(synthetic.state_dict(net, "neural-dream", classifier=False), paths["no-classifier"])
    return net, paths


def caffe_size(size: int, kernel: int, stride: int, pad: int, pooling: bool) -> int:
    """Caffe's output size: convolutions round down, pooling rounds up."""
    rounding = math.ceil if pooling else math.floor
    return rounding((size + 2 * pad - kernel) / stride) + 1


def expected_sizes(size: int) -> dict[int, int]:
    """Spatial size at each stride, following Caffe's layers one by one."""
    conv1 = caffe_size(size, 7, 2, 3, False)
    pool1 = caffe_size(conv1, 3, 2, 0, True)
    pool2 = caffe_size(pool1, 3, 2, 0, True)
    pool3 = caffe_size(pool2, 3, 2, 0, True)
    return {2: conv1, 4: pool1, 8: pool2, 16: pool3, 32: caffe_size(pool3, 3, 2, 0, True)}


def test_layers_are_known_without_weights():
    listing = ds.list_layers("googlenet")
    assert listing.default_layer == "inception_4c/output"
    assert {name: listing.layers[name].channels for name in CHANNELS} == CHANNELS
    assert len(listing.layers) == 7 + 9 * 8 + 2  # stem, 8 per inception block, pool3 and pool4
    assert list(listing.layers)[:4] == ["conv1/7x7_s2", "pool1/3x3_s2", "pool1/norm1", "conv2/3x3_reduce"]
    strides = [info.stride for info in listing.layers.values()]
    assert strides == sorted(strides) and strides[-1] == 32
    assert set(listing.not_dreamable) == {"pool5/7x7_s1", "loss3/classifier"}
    with pytest.raises(DreamscopeError, match="no weights|needs weights"):
        ds.load_model("googlenet", "cpu")


def test_caffe_preprocessing_is_bgr_0_255_minus_mean():
    red = torch.zeros(1, 3, 2, 2)
    red[:, 0] = 1.0
    x = get_spec("googlenet").to_input(red)
    assert torch.allclose(x[0, :, 0, 0], torch.tensor([-104.0, -116.0, 255.0 - 122.0]))


@pytest.mark.parametrize("kind", ["caffemodel", "caffemodel-pre-2015", "ours", "caffe", "neural-dream", "safetensors"])
def test_every_format_loads_the_same_weights(files, kind):
    reference, paths = files
    model = ds.load_model("googlenet", "cpu", weights=paths[kind])
    loaded, expected = model.net.state_dict(), reference.state_dict()
    assert loaded.keys() == expected.keys()
    for key in expected:
        assert torch.equal(loaded[key], expected[key]), key
    assert model.spec.logits_module == "loss3.classifier"


@pytest.mark.parametrize("height, width", [(224, 224), (193, 257)])
def test_forward_shapes_match_caffe_at_every_layer(files, height, width):
    model = ds.load_model("googlenet", "cpu", weights=files[1]["caffemodel"])
    x = torch.rand(1, 3, height, width)
    with torch.no_grad():
        outputs = taps.capture(model.net, [info.module for info in model.layers.values()], model.to_input(x))
    rows, cols = expected_sizes(height), expected_sizes(width)
    for info in model.layers.values():
        assert tuple(outputs[info.module].shape) == (1, info.channels, rows[info.stride], cols[info.stride]), info.name
    if (height, width) == (224, 224):
        assert rows[32] == 7  # pool5's 7x7 window covers the whole map, as in Caffe


def test_class_scores_match_the_reference_and_need_a_classifier(files):
    reference, paths = files
    x = torch.rand(2, 3, 224, 224)
    model = ds.load_model("googlenet", "cpu", weights=paths["caffemodel"])
    with torch.no_grad():
        assert torch.allclose(model.net(model.to_input(x)), reference(model.to_input(x)), atol=1e-4)
    headless = ds.load_model("googlenet", "cpu", weights=paths["no-classifier"])
    assert headless.spec.logits_module is None
    for no_classes in (lambda: headless.layer("logits"), lambda: headless.resolve_class(0)):
        with pytest.raises(DreamscopeError, match="no class scores"):
            no_classes()
    with pytest.raises(DreamscopeError, match="no classifier"):  # before the network runs, or from loss3/classifier's stand-in
        ds.classify(chelsea(), model=headless)
    photo = torch.rand(1, 3, 64, 64)
    with torch.no_grad():  # dreaming needs no classifier: same activations as the full file
        assert torch.equal(
            render.activations(headless, ["inception_4c/output"], photo)["inception_4c/output"],
            render.activations(model, ["inception_4c/output"], photo)["inception_4c/output"],
        )


def test_places365_loads_and_takes_its_classes_by_index(tmp_path):
    torch.save(synthetic.state_dict(synthetic.reference(365), "ours"), tmp_path / "googlenet_places365.pth")
    model = ds.load_model("googlenet-places365", "cpu", weights=tmp_path / "googlenet_places365.pth")
    assert model.net(model.to_input(torch.rand(1, 3, 224, 224))).shape == (1, 365)
    assert model.spec.default_layer == "inception_4c/output"
    assert model.layer("logits").channels == 365 and model.resolve_class("364") == 364
    assert (model.class_label(3), model.class_names()) == ("Places365 #3", None)
    with pytest.raises(
        DreamscopeError,
        match="^model googlenet-places365 scores 365 Places365 classes, not ImageNet's; give a class index from 0 to 364$",
    ):
        model.resolve_class("banana")
    with pytest.raises(DreamscopeError, match="class 365 does not exist in model googlenet-places365, which has classes 0-364"):
        model.resolve_class(365)
    top = ds.classify(chelsea((64, 64)), model=model, top=1000)  # no ImageNet names for its 365 classes
    assert len(top) == 365 and top[0].label.startswith("Places365 #")


def test_shape_mismatch_names_the_layer_and_both_shapes(files, tmp_path):
    reference, paths = files
    with pytest.raises(DreamscopeError) as caught:  # ImageNet weights for the Places365 network
        ds.load_model("googlenet-places365", "cpu", weights=paths["caffemodel"])
    message = str(caught.value)
    assert "\n" not in message
    assert "layer loss3/classifier weight is 1000x1024 in the file but googlenet-places365 needs 365x1024" in message
    state = synthetic.state_dict(reference, "neural-dream")
    state["inception_4c_3x3.weight"] = torch.zeros(320, 160, 3, 3)
    torch.save(state, tmp_path / "other.pth")
    with pytest.raises(
        DreamscopeError, match=r"layer inception_4c/3x3 weight is 320x160x3x3 in the file but googlenet needs 256x128x3x3"
    ):
        ds.load_model("googlenet", "cpu", weights=tmp_path / "other.pth")


def test_another_networks_file_is_refused(tmp_path):
    vgg = {"conv1_1": [torch.zeros(64, 3, 3, 3), torch.zeros(64)], "conv1_2": [torch.zeros(64, 64, 3, 3), torch.zeros(64)]}
    caffe_writer.write_caffemodel(tmp_path / "vgg16.caffemodel", vgg)
    with pytest.raises(DreamscopeError, match=r"has layers GoogLeNet has not \(conv1_1, conv1_2\); is it a GoogLeNet file"):
        ds.load_model("googlenet", "cpu", weights=tmp_path / "vgg16.caffemodel")
    torch.save({"features.0.weight": torch.zeros(64, 3, 3, 3)}, tmp_path / "vgg16.pth")
    with pytest.raises(DreamscopeError, match=r"unknown entries features\.0\.weight; is it a GoogLeNet state dict"):
        ds.load_model("googlenet", "cpu", weights=tmp_path / "vgg16.pth")


def test_nan_in_a_caffemodel_is_refused(files, tmp_path):
    layers = synthetic.caffe_layers(files[0])
    layers["inception_4c/3x3"][1][7] = float("nan")
    path = caffe_writer.write_caffemodel(tmp_path / "w.caffemodel", layers)
    with pytest.raises(
        DreamscopeError,
        match=r"^weights in .*w\.caffemodel hold NaN or infinite values \(first in key "
        r"inception_4c\.3x3\.bias\); the file is damaged: download or convert it again$",
    ):
        ds.load_model("googlenet", "cpu", weights=path)


def test_a_malicious_pickle_is_refused_without_running(tmp_path):
    proof = synthetic.write_evil_pickle(tmp_path / "proof.pth", tmp_path / "proof-marker")
    torch.load(proof, weights_only=False)  # the file really runs code when unpickled without protection
    assert (tmp_path / "proof-marker").exists()
    marker = tmp_path / "marker"
    for name in ("bvlc_googlenet.pth", "bvlc_googlenet.bin"):  # by suffix and by content
        evil = synthetic.write_evil_pickle(tmp_path / name, marker)
        with pytest.raises(DreamscopeError, match="cannot read weights"):
            ds.load_model("googlenet", "cpu", weights=evil)
    assert not marker.exists()


@pytest.mark.parametrize("damage", ["truncated", "text", "empty", "broken-zip", "broken-pickle"])
def test_a_corrupt_file_is_a_clean_error(files, tmp_path, damage):
    data = files[1]["caffemodel"].read_bytes()
    path = tmp_path / ("w.pth" if damage.startswith("broken") else "w.caffemodel")
    path.write_bytes(
        {
            "truncated": data[: len(data) // 2],
            "text": b"name: 'GoogleNet'\nlayer {}\n",
            "empty": b"",
            "broken-zip": b"PK\x03\x04 not really a zip",
            "broken-pickle": b"\x80\x02}q\x00(X\x05\x00",
        }[damage]
    )
    with pytest.raises(DreamscopeError, match="damaged|no layer weights") as caught:
        ds.load_model("googlenet", "cpu", weights=path)
    assert "refuses to unpickle" not in str(caught.value)  # damage is not mistaken for an attack


def test_weights_are_found_in_the_cache_folder_or_a_variable(files, tmp_path, monkeypatch):
    spec = get_spec("googlenet")
    assert not spec.weights.present()
    with pytest.raises(DreamscopeError) as caught:
        ds.load_model("googlenet", "cpu")
    cache = tmp_path / "cache" / "weights"
    for way in (
        "--weights FILE",
        "DREAMSCOPE_GOOGLENET_WEIGHTS=FILE",
        f"bvlc_googlenet.caffemodel in {cache}",
        "dreamscope models --download googlenet",
    ):
        assert way in str(caught.value)
    monkeypatch.setenv("DREAMSCOPE_GOOGLENET_WEIGHTS", str(files[1]["neural-dream"]))
    assert spec.weights.path() == files[1]["neural-dream"]
    monkeypatch.delenv("DREAMSCOPE_GOOGLENET_WEIGHTS")
    cache.mkdir(parents=True)
    shutil.copy(files[1]["caffemodel"], cache / "bvlc_googlenet.caffemodel")
    assert spec.weights.present()
    assert "inception_4c/output" in ds.load_model("googlenet", "cpu").layers


def test_dreaming_raises_the_default_layer(files):
    model = ds.load_model("googlenet", "cpu", weights=files[1]["caffemodel"])
    photo = chelsea((96, 96))
    result = ds.dream(photo, model=model, octaves=1, steps=4, jitter=8)
    with torch.no_grad():
        before, after = (
            render.activations(model, ["inception_4c/output"], images.to_tensor(img))["inception_4c/output"].pow(2).mean()
            for img in (photo, result)
        )
    assert after > 1.2 * before
    # Caffe's rounding breaks the exact tiling: an explicit tile size is refused, "auto" runs untiled
    with pytest.raises(DreamscopeError, match="tiling is exact only for EfficientNet-Lite models"):
        ds.dream(photo, model=model, tile=128)


# The real command, as a user runs it: all runs start together; the mistakes, which stop before any work,
# share one interpreter (test_cli's driver) to save start-ups.
GOOD = {
    "layers": ("layers", "--model", "googlenet"),
    "dream": (
        "dream",
        "photo.png",
        "--model",
        "googlenet",
        "--weights",
        "{caffemodel}",
        "--octaves",
        "2",
        "--steps",
        "2",
        "-o",
        "out.png",
    ),
}
MISTAKES = {
    "no-weights": ("dream", "photo.png", "--model", "googlenet"),
    "mismatch": ("dream", "photo.png", "--model", "googlenet-places365", "--weights", "{caffemodel}"),
    "malicious": ("dream", "photo.png", "--model", "googlenet", "--weights", "evil.pth"),
    "corrupt": ("classify", "photo.png", "--model", "googlenet", "--weights", "broken.caffemodel"),
}


@pytest.fixture(scope="module")
def cli(files, tmp_path_factory, run_cli_many):
    root = tmp_path_factory.mktemp("googlenet-cli")
    chelsea().save(root / "photo.png")
    synthetic.write_evil_pickle(root / "evil.pth", root / "marker")
    data = files[1]["caffemodel"].read_bytes()
    (root / "broken.caffemodel").write_bytes(data[: len(data) // 3])

    def argv(args):
        return [arg.format(caffemodel=files[1]["caffemodel"]) for arg in args]

    env = {"DREAMSCOPE_CACHE": str(root / "cache"), "OMP_NUM_THREADS": "1"}
    results = run_good_and_mistakes(
        root, {k: argv(a) for k, a in GOOD.items()}, {k: argv(a) for k, a in MISTAKES.items()}, run_cli_many, env
    )
    return root, results


def test_cli_lists_layers_without_weights(cli):
    result = cli[1]["layers"]
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line.split()[1:] for line in result.stdout.splitlines() if line.strip()}
    assert rows["inception_4c/output"] == ["512", "16", "(default)"]
    assert rows["inception_5b/output"] == ["1024", "32"]
    assert "not dreamable:" in result.stdout and rows["loss3/classifier"][:2] == ["class", "scores,"]


def test_cli_without_weights_says_how_to_get_them(cli):
    line = error_line(cli[1]["no-weights"])
    assert cli[1]["no-weights"].returncode == 1
    for way in (
        "--weights FILE",
        "DREAMSCOPE_GOOGLENET_WEIGHTS",
        str(cli[0] / "cache" / "weights"),
        "dreamscope models --download googlenet",
    ):
        assert way in line


def test_cli_dreams_with_a_caffemodel(cli):
    result = cli[1]["dream"]
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == ["wrote out.png"]
    with Image.open(cli[0] / "out.png") as dreamed, Image.open(cli[0] / "photo.png") as original:
        assert dreamed.size == original.size and dreamed.tobytes() != original.tobytes()


@pytest.mark.parametrize(
    "case, needles",
    [
        ("mismatch", ["loss3/classifier", "1000x1024", "365x1024"]),
        ("malicious", ["cannot read weights from evil.pth", "refuses to unpickle"]),
        ("corrupt", ["broken.caffemodel", "damaged"]),
    ],
)
def test_cli_bad_weights_are_one_error_line(cli, case, needles):
    line = error_line(cli[1][case])
    assert cli[1][case].returncode == 1
    for needle in needles:
        assert needle in line
    assert not (cli[0] / "marker").exists()
    assert not (cli[0] / "photo_dream.png").exists()
