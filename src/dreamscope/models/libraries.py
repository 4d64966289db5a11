"""Networks by name from the libraries people have: `timm:NAME` and `torchvision:NAME`.

Each is built by its library, with the library's own preprocessing (timm's `pretrained_cfg` mean, std and input
size; torchvision's weights' transforms) and class names, then wrapped like any model of the user's (`wrap_model`:
the trial pass finds its layers, token sequences and channels-last maps included). Pretrained weights come from the
library's own cache on this machine and are never fetched while dreaming: when they are not there, one line says
where they go and how to fetch them (`dreamscope models --download timm:NAME`). `weights=FILE` loads a local state
dict instead, into the library's architecture.

Neither library is a dependency: installed from the package index, timm pulls torchvision, and torchvision a torch
of its own choosing (a CUDA build, gigabytes), which would replace the user's. Install them without their
dependencies, a torchvision built for the torch you have (README, "Today's models"). A torchvision wheel built
for CUDA imports on a CPU torch only once its two compiled detection operators are declared (`import_torchvision`).
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import torch
from torch import nn

from ..errors import DreamscopeError, suggest
from .custom import wrap_model
from .devices import resolve_device
from .spec import LoadedModel
from .weights import assign, load_state_dict_file

LIBRARIES = ("timm", "torchvision")
INSTALL = "pip install --no-deps timm torchvision==VERSION (the torchvision built for your torch; README: Today's models)"
_shim = None  # the torch.library.Library declaring torchvision's nms/qnms: kept alive (it undefines them when freed)


def is_library_name(name: str) -> bool:
    return name.split(":", 1)[0] in LIBRARIES and ":" in name


def versions() -> dict[str, str | None]:
    """Each library's version where it imports here, else None (`dreamscope models` says which)."""
    found = {}
    for library in LIBRARIES:
        try:
            found[library] = getattr(_import(library), "__version__", "?")
        except Exception:
            found[library] = None
    return found


def _import(library: str):
    """The library's module; timm imports torchvision, so torchvision comes first (through its shim)."""
    torchvision = import_torchvision()
    return torchvision if library == "torchvision" else importlib.import_module(library)


def import_torchvision():
    """torchvision; a wheel built for CUDA on the CPU torch fails on import ("operator torchvision::nms does not
    exist": its meta registrations need the compiled operators), so their schemas are declared first, without
    kernels: detection's nms stays unusable, and nothing here needs it."""
    global _shim
    try:
        import torchvision

        return torchvision
    except RuntimeError as error:
        if "torchvision::nms" not in str(error) or _shim is not None:
            raise
    import sys

    for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
        del sys.modules[name]
    shim = torch.library.Library("torchvision", "DEF")
    shim.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    shim.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _shim = shim
    import torchvision

    return torchvision


def _library(library: str, name: str | None = None):
    try:
        return _import(library)
    except ImportError:
        raise DreamscopeError(f"model {name or library + ':NAME'} needs {library}, which is not installed; {INSTALL}") from None


def load_library_model(name: str, device=None, weights: str | Path | None = None, pretrained: bool = True) -> LoadedModel:
    """`timm:NAME` or `torchvision:NAME`: the architecture with the library's pretrained weights from its cache (or
    `weights`, a local state dict; or random weights with `pretrained=False`), wrapped with its preprocessing."""
    library, _, arch = name.partition(":")
    if not arch:
        raise DreamscopeError(f"name the network after {library}:, e.g. {library}:resnet50")
    build = _timm if library == "timm" else _torchvision
    net, config = build(arch, pretrained and weights is None)
    if weights is not None:
        assign(net, load_state_dict_file(weights), weights, name)
    model = wrap_model(
        net,
        mean=config["mean"],
        std=config["std"],
        resolution=config["resolution"],
        name=name,
        device=resolve_device(device),
    )
    import dataclasses

    spec = dataclasses.replace(
        model.spec,
        description=f"{library} {arch}" + (", pretrained" if pretrained and weights is None else ""),
        classes="ImageNet" if config["imagenet"] and model.spec.num_classes == 1000 else None,
    )
    return dataclasses.replace(model, spec=spec, weights_path=Path(weights) if weights is not None else None)


def _timm(arch: str, pretrained: bool) -> tuple[nn.Module, dict]:
    timm = _library("timm", f"timm:{arch}")
    if arch not in timm.list_models() and arch.split(".")[0] not in timm.list_models():
        raise DreamscopeError(f"timm has no model {arch!r}{suggest(arch, timm.list_models())}; list them with timm.list_models()")
    # Transformers are built to take pictures of any shape where timm can (a ViT's position embeddings resampled and
    # the picture padded to whole patches; Swin's windows padded), not only their training size: else they would
    # see every picture resized to it. A family that takes neither option is built as it is.
    for options in (dict(dynamic_img_size=True, dynamic_img_pad=True), dict(strict_img_size=False), {}):
        try:
            net = _create_timm(timm, arch, pretrained, options)
            break
        except TypeError:
            continue
    cfg = net.pretrained_cfg
    return net, {
        "mean": tuple(cfg.get("mean", (0.485, 0.456, 0.406))),
        "std": tuple(cfg.get("std", (0.229, 0.224, 0.225))),
        "resolution": int(cfg.get("input_size", (3, 224, 224))[-1]),
        "imagenet": cfg.get("num_classes", 1000) == 1000 and "in22k" not in str(cfg.get("tag", "")),
    }


def _create_timm(timm, arch: str, pretrained: bool, options: dict) -> nn.Module:
    if not pretrained:
        return timm.create_model(arch, pretrained=False, **options)
    saved = os.environ.get("HF_HUB_OFFLINE")
    os.environ["HF_HUB_OFFLINE"] = "1"  # the cache only: nothing is fetched while dreaming
    try:
        return timm.create_model(arch, pretrained=True, **options)
    except TypeError:
        raise
    except Exception:
        raise DreamscopeError(
            f"the pretrained weights of timm:{arch} are not in the cache ({_hf_cache()}); fetch them once with: "
            f"dreamscope models --download timm:{arch} (or give --weights FILE)"
        ) from None
    finally:
        if saved is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = saved


def _hf_cache() -> str:
    try:
        from huggingface_hub import constants

        return constants.HF_HUB_CACHE
    except ImportError:
        return os.path.join(torch.hub.get_dir(), "checkpoints")


def _torchvision(arch: str, pretrained: bool) -> tuple[nn.Module, dict]:
    torchvision = _library("torchvision", f"torchvision:{arch}")
    models = torchvision.models
    names = models.list_models(module=models)
    if arch not in names:
        raise DreamscopeError(f"torchvision has no classification model {arch!r}{suggest(arch, names)}")
    chosen = models.get_model_weights(arch).DEFAULT
    if pretrained:
        cached = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(chosen.url)
        if not cached.is_file():
            raise DreamscopeError(
                f"the pretrained weights of torchvision:{arch} are not in the cache ({cached}); fetch them once with: "
                f"dreamscope models --download torchvision:{arch} (or give --weights FILE)"
            )
    net = models.get_model(arch, weights=chosen if pretrained else None)
    transforms = chosen.transforms()
    return net, {
        "mean": tuple(transforms.mean),
        "std": tuple(transforms.std),
        "resolution": int(transforms.crop_size[0]),
        "imagenet": len(chosen.meta.get("categories", [])) == 1000,
    }


def download(name: str) -> Path:
    """Fetch a library model's pretrained weights into the library's cache (`dreamscope models --download`)."""
    library, _, arch = name.partition(":")
    if library == "torchvision":
        models = _library("torchvision").models
        chosen = models.get_model_weights(arch).DEFAULT
        chosen.get_state_dict(progress=False)
        return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(chosen.url)
    _library("timm").create_model(arch, pretrained=True)
    return Path(_hf_cache())
