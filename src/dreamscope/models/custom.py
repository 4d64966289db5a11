"""Your own PyTorch model, dreamable like the built-in ones.

`wrap_model(module, ...)` returns a `LoadedModel` that every recipe accepts as `model=`. Its layers are the
module's own dotted names (`features.3`, `layer3.1.conv2`), found by one trial forward pass: every module
whose output is a 4-D feature map (N, C, H, W) is dreamable, with its channel count and stride; the others are
listed with the reason they are not. On the command line, `--model package.module:factory` imports a callable
that returns an `nn.Module` (or the result of `wrap_model`, to give its preprocessing), and `--weights FILE`
(Python: `load_model(..., weights=FILE)`) loads a state dict into it.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import torch
from torch import nn

from ..errors import DreamscopeError, suggest
from . import layouts
from .devices import resolve_device
from .spec import LayerInfo, LoadedModel, ModelSpec
from .weights import OwnWeights, assign, check_finite, load_state_dict_file

TRIAL_SEED = 0


def make_input_transform(
    mean: Sequence[float] | None, std: Sequence[float] | None, input_range: tuple[float, float], bgr: bool
) -> Callable[[torch.Tensor], torch.Tensor]:
    """RGB in [0, 1] -> input_range (low..high), optionally BGR, then (x - mean) / std in those units."""
    low, high = (float(v) for v in input_range)
    if not high > low:
        raise DreamscopeError(f"input_range must be (low, high) with high > low, got {input_range}")
    stats = []
    for name, values, default in (("mean", mean, 0.0), ("std", std, 1.0)):
        values = [default] * 3 if values is None else [float(v) for v in values]
        if len(values) != 3:
            raise DreamscopeError(f"{name} must have one value per colour channel (3), got {len(values)}")
        stats.append(values)
    if any(s == 0 for s in stats[1]):
        raise DreamscopeError(f"std must not be zero, got {std}")
    mean_rgb, std_rgb = stats

    def transform(rgb: torch.Tensor) -> torch.Tensor:
        x = low + (high - low) * rgb
        if bgr:
            x = x.flip(1)
        m = torch.tensor(mean_rgb, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        s = torch.tensor(std_rgb, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        return (x - m) / s

    return transform


def _outputs(net: nn.Module, x: torch.Tensor) -> tuple[object, dict[str, list], list[tuple[str, int]]]:
    """One forward pass: for every submodule, the output of each of its calls; and the calls in the order they
    finished, (path, call number from 1)."""
    seen: dict[str, list] = {}
    order: list[tuple[str, int]] = []

    def make_hook(path):
        def hook(_module, _inputs, output):
            seen.setdefault(path, []).append(_detached(output))
            order.append((path, len(seen[path])))

        return hook

    handles = [module.register_forward_hook(make_hook(path)) for path, module in net.named_modules() if path]
    try:
        with torch.no_grad():
            result = net(x)
    finally:
        for handle in handles:
            handle.remove()
    return result, seen, order


def _detached(output):
    """A copy of what a call gave (a later in-place operation must not change what the trial pass saw)."""
    if isinstance(output, torch.Tensor):
        return output.detach().clone()
    if isinstance(output, (tuple, list)):
        return type(output)(_detached(item) for item in output) if isinstance(output, tuple) else [_detached(i) for i in output]
    if isinstance(output, dict):
        return {key: _detached(item) for key, item in output.items()}
    return output


def has_class_token(net: nn.Module) -> bool:
    """Whether the network keeps a class token (timm's `cls_token`, torchvision's `class_token`): then a token
    layer's first extra token is it."""
    return any(isinstance(getattr(net, name, None), torch.Tensor) for name in ("cls_token", "class_token"))


def register_tokens(net: nn.Module) -> int:
    """How many register tokens the network keeps (timm's `reg_token`, (1, R, C)), 0 without."""
    tokens = getattr(net, "reg_token", None)
    return int(tokens.shape[1]) if isinstance(tokens, torch.Tensor) and tokens.dim() == 3 else 0


def probe_layers(net: nn.Module, x: torch.Tensor) -> tuple[object, dict[str, LayerInfo], dict[str, str]]:
    """(the network's output, dreamable layers shallow to deep, not-dreamable layers with the reason).

    A module called several times in one pass (one ReLU shared by a block's convolutions) gives a layer per call,
    `path#1`, `path#2`, ...; its plain path is listed as not dreamable, naming them."""
    result, seen, order = _outputs(net, x)
    size = x.shape[-1]
    class_token, registers = has_class_token(net), register_tokens(net)
    layers: dict[str, LayerInfo] = {}
    refused: dict[str, str] = {}
    for path, outputs in seen.items():
        if len(outputs) > 1:
            refused[path] = (
                f"runs {len(outputs)} times in one forward pass; each call is a layer: {path}#1 to {path}#{len(outputs)}"
            )
    for path, call in order:  # shallow to deep, each call where it happened
        outputs = seen[path]
        name = path if len(outputs) == 1 else f"{path}#{call}"
        found = layouts.classify(outputs[call - 1], size)
        if isinstance(found, str):
            refused[name] = found
            continue
        layout, channels, stride = found
        if layout.kind == "tokens" and layout.extra:
            has_class = class_token and layout.extra >= 1
            layout = dataclasses.replace(layout, class_token=has_class, registers=min(registers, layout.extra - int(has_class)))
        layers[name] = LayerInfo(name, name, int(channels), int(stride), layout)
    for path, _ in net.named_modules():
        if path and path not in seen:
            refused[path] = "never runs in the forward pass"
    return result, layers, refused


def wrap_model(
    module: nn.Module,
    *,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    input_range: tuple[float, float] = (0.0, 1.0),
    bgr: bool = False,
    preprocess: Callable[[torch.Tensor], torch.Tensor] | None = None,
    name: str | None = None,
    default_layer: str | None = None,
    resolution: int = 224,
    device: str | torch.device | None = None,
) -> LoadedModel:
    """Make any image network dreamable: returns a LoadedModel for `model=` in every recipe.

    Preprocessing, from the RGB picture in [0, 1]: scale to `input_range`, reverse to BGR if `bgr`, then
    subtract `mean` and divide by `std` (in input_range units), e.g. torchvision's
    `mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)`, or a Caffe model's
    `input_range=(0, 255), bgr=True, mean=(104, 117, 123)`. Or give `preprocess`, any differentiable callable.
    The module is put in eval mode with frozen parameters; parameters holding NaN or infinity are refused.
    `default_layer`: by default the deepest layer whose stride is at most 16. The class scores are the network's
    output when that is (N, classes).
    """
    if not isinstance(module, nn.Module):
        raise DreamscopeError(f"wrap_model needs a torch.nn.Module, got {type(module).__name__}")
    if isinstance(module, torch.jit.ScriptModule):
        raise DreamscopeError(
            f"model {name or 'given'} is a TorchScript module, whose layers cannot be tapped (scripted code runs no "
            "Python hooks); wrap the Python module it was scripted from"
        )
    if type(module).__name__ == "OptimizedModule" and hasattr(module, "_orig_mod"):
        raise DreamscopeError(
            f"model {name or 'given'} was made by torch.compile, whose compiled graph skips the hooks that read "
            "layers; wrap the module before compiling it (its ._orig_mod)"
        )
    if preprocess is not None and (mean is not None or std is not None or bgr or tuple(input_range) != (0.0, 1.0)):
        raise DreamscopeError("give either preprocess or mean/std/input_range/bgr, not both")
    if preprocess is not None and not callable(preprocess):
        raise DreamscopeError(f"preprocess must be callable, got {type(preprocess).__name__}")
    if not isinstance(resolution, int) or resolution < 16:
        raise DreamscopeError(f"resolution must be a whole number of pixels, at least 16, got {resolution}")
    to_input = preprocess or make_input_transform(mean, std, input_range, bgr)
    name = name or type(module).__name__
    check_finite(
        module.state_dict().items(), f"the parameters of model {name}", "load or train its weights again", kind="parameter"
    )
    device = resolve_device(device)
    net = module.to(device).eval().requires_grad_(False)
    trial = torch.rand(1, 3, resolution, resolution, generator=torch.Generator().manual_seed(TRIAL_SEED)).to(device)
    try:
        output, layers, refused = probe_layers(net, to_input(trial))
    except DreamscopeError:
        raise
    except Exception as exc:
        raise DreamscopeError(
            f"model {name} failed on a {resolution}x{resolution} RGB trial picture ({exc.__class__.__name__}: {_first_line(exc)}); "
            "does it take 3-channel pictures? set resolution= or preprocess= to suit it"
        ) from None
    if not layers:
        raise DreamscopeError(
            f"model {name} has no layer whose output is a feature map (N, C, H, W or channels last) or a token "
            "sequence of the picture's patches, so nothing to dream on"
        )
    if not _takes_other_sizes(net, to_input, resolution, device):
        # A network that only takes its own size (a transformer with fixed position embeddings, Swin's windows)
        # sees every picture resized to it; the layers' strides are in its own pixels.
        to_input = _resized_to(resolution, to_input)
    if default_layer is None:
        default_layer = choose_default_layer(layers, net)
    elif default_layer not in layers:
        raise DreamscopeError(
            f"default_layer '{default_layer}' is not a dreamable layer of {name}{suggest(default_layer, layers)}"
        )
    classifier = isinstance(output, torch.Tensor) and output.dim() == 2
    spec = ModelSpec(
        name=name,
        description=f"your model ({type(module).__name__})",
        build=lambda: net,
        weights=OwnWeights(),
        resolution=resolution,
        default_layer=default_layer,
        to_input=to_input,
        logits_module="" if classifier else None,  # "": the whole network's output
        num_classes=int(output.shape[1]) if classifier else 0,
        classes=None,  # its own classes: by index
    )
    return LoadedModel(spec=spec, net=net, layers=layers, device=device, not_dreamable=refused)


def _takes_other_sizes(net: nn.Module, to_input, resolution: int, device) -> bool:
    """Whether the network runs on a picture of another shape (3/4 of its height, a multiple of 32)."""
    height = max(32, resolution * 3 // 4 // 32 * 32)
    trial = torch.rand(1, 3, height, resolution, generator=torch.Generator().manual_seed(TRIAL_SEED)).to(device)
    try:
        with torch.no_grad():
            net(to_input(trial))
    except Exception:
        return False
    return True


def _resized_to(resolution: int, to_input):
    def transform(rgb: torch.Tensor) -> torch.Tensor:
        if tuple(rgb.shape[-2:]) != (resolution, resolution):
            rgb = torch.nn.functional.interpolate(rgb, size=(resolution, resolution), mode="bilinear", align_corners=False)
        return to_input(rgb)

    return transform


def is_block(module: nn.Module) -> bool:
    """A block or a stage: at least two parts with weights of their own (not a norm with its activation inside)."""
    return sum(1 for child in module.children() if any(True for _ in child.parameters())) >= 2


def block_chain(layers: Mapping[str, LayerInfo]) -> list[str]:
    """A transformer's blocks, shallow to deep (`blocks.0` ... `blocks.11`, `encoder.layers.encoder_layer_0` ...):
    the longest run of token layers numbered under one parent; [] for a network without (four or more) of them."""
    blocks: dict[str, list[str]] = {}
    for info in layers.values():
        parent, _, last = info.name.rpartition(".")
        if info.layout.kind == "tokens" and last.rsplit("_", 1)[-1].isdigit() and "#" not in last:
            blocks.setdefault(parent, []).append(info.name)
    chain = max(blocks.values(), key=len, default=[])
    return chain if len(chain) >= 4 else []


def choose_default_layer(layers: dict[str, LayerInfo], net: nn.Module | None = None) -> str:
    """The deepest map at a stride of at most 16, a block's output where the network has blocks (a module with
    modules inside, not one convolution or norm of it); for a transformer (its blocks' tokens), the middle block,
    whose features are neither edges nor the classifier's."""
    chain = block_chain(layers)
    if chain:
        return chain[(len(chain) - 1) // 2]
    shallow_enough = [info.name for info in layers.values() if info.stride <= 16]
    if net is not None:
        modules = dict(net.named_modules())
        blocks = [name for name in shallow_enough if name in modules and is_block(modules[name])]
        shallow_enough = blocks or shallow_enough
    return shallow_enough[-1] if shallow_enough else next(iter(layers))


def _import(module_name: str):
    """Import as `python -m` would from the current folder, without leaving the folder on sys.path."""
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name.split(".")[0] or os.getcwd() in sys.path:
            raise
    sys.path.insert(0, os.getcwd())
    try:
        return importlib.import_module(module_name)
    finally:
        sys.path.remove(os.getcwd())


def load_factory(spec_text: str, device: torch.device, weights: str | Path | None = None) -> LoadedModel:
    """`package.module:factory` -> the LoadedModel its factory builds, with a state dict from `weights` loaded.

    What the factory returns is new and not yet shared, so its network is filled and moved in place; the
    LoadedModel returned is a new one, named as the user typed it."""
    module_name, _, attribute = spec_text.partition(":")
    if not module_name or not attribute or ":" in attribute:
        raise DreamscopeError(f"bad model '{spec_text}'; name your own model as package.module:factory")
    try:
        source = _import(module_name)
    except ModuleNotFoundError as exc:
        raise DreamscopeError(
            f"cannot import {module_name} for model {spec_text} (no module named {exc.name!r}); run from the folder "
            "that holds it or add that folder to PYTHONPATH"
        ) from None
    except Exception as exc:
        raise DreamscopeError(
            f"importing {module_name} for model {spec_text} failed: {exc.__class__.__name__}: {_first_line(exc)}"
        ) from None
    factory = source
    for part in attribute.split("."):
        if not hasattr(factory, part):
            names = [n for n in dir(factory) if not n.startswith("_")]
            raise DreamscopeError(
                f"{module_name} has no '{attribute}'{suggest(part, names)}; name a function that returns the model"
            )
        factory = getattr(factory, part)
    if not callable(factory):
        raise DreamscopeError(
            f"{spec_text} is not callable (it is {type(factory).__name__}); name a function that returns the model"
        )
    try:
        built = factory()
    except Exception as exc:
        raise DreamscopeError(f"the factory {spec_text} raised {exc.__class__.__name__}: {_first_line(exc)}") from None
    if isinstance(built, LoadedModel):
        model = built
    elif isinstance(built, nn.Module):
        model = None
    else:
        raise DreamscopeError(
            f"the factory {spec_text} returned a {type(built).__name__}; it must return a torch.nn.Module "
            "(or dreamscope.wrap_model(module, ...) to give its preprocessing)"
        )
    net = model.net if model else built
    if weights is not None:
        assign(net, load_state_dict_file(weights), weights, spec_text)
    if model is None:
        model = wrap_model(net, name=spec_text, device=device)
    else:
        net.to(device)
        model = dataclasses.replace(model, spec=dataclasses.replace(model.spec, name=spec_text), device=device)
    return model if weights is None else dataclasses.replace(model, weights_path=weights)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [""])[0]
