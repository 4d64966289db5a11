"""Adapters that run three peer feature-visualization packages on a dreamscope model, for benchmarks.

Each `*_class(loaded_model, index, steps, size=224, seed=0)` grows a picture of ImageNet class `index` from noise
with that package's own defaults and returns it as an RGB `PIL.Image` (size x size); the same seed gives the same
picture (torch, NumPy and Python's `random` are all seeded: lucent draws its jitter from NumPy). `PEERS` maps
each package's PyPI name to its adapter; `available()` gives each package's version, or None where it cannot be
imported. The peers are imported inside the functions, so this module imports without them.

Installing (a SEPARATE venv, so .venv never gets torchvision, kornia & co.; .venv-peers/ is git-ignored)
-----------------------------------------------------------------------------------------------------------
From the repository root (`install_hint()` returns the same text)::

    python3 -m venv .venv-peers
    .venv-peers/bin/pip install torch==2.13.0        # the CPU build: any other torch spec pulls GBs of CUDA
    .venv-peers/bin/pip install -e ".[lite]"
    .venv-peers/bin/pip install --no-deps torchvision==0.28.0 kornia==0.4.1 \\
        torch-lucent==0.1.8 horama==0.3.0 faccent==1.0.3
    .venv-peers/bin/pip install -r benchmarks/requirements-peers.txt
    .venv-peers/bin/python benchmarks/peers.py --check          # imports all three, prints the versions

Why --no-deps: all three declare torchvision (which would replace the CPU torch), and
- torch-lucent 0.1.8 also declares kornia<=0.4.1, pytest, pytest-mock, coverage, coveralls, scikit-learn,
  future: none is imported by the parts used here (render, objectives, param, transform). It needs torchvision
  (transform.py imports torchvision.transforms.Normalize at import), kornia 0.4.1 exactly (random_rotate calls
  kornia.get_rotation_matrix2d / kornia.warp_affine, which later kornias moved), IPython (render imports
  lucent.misc.io.showing -> IPython.display), decorator, tqdm, numpy, pillow.
- horama 0.3.0: torchvision is needed at import (common.py: torchvision.ops.roi_align, used for its crops;
  maco_fv.py: torchvision.datasets.utils.download_url), plus matplotlib (plots, imported by __init__), einops.
- faccent 1.0.3 also declares lucent==0.1.0 (an unrelated 2017 PyPI package: faccent never imports `lucent`),
  kaleido, pyarrow, nbformat (not imported). It needs torchvision, kornia (transform.py), einops, matplotlib,
  scipy, imageio and ipywidgets (faccent.utils imports all of them at module level), decorator.

torchvision: yes, truly required at import by all three. PyPI only has CUDA builds of torchvision; 0.28.0 is the
release for torch 2.13.0 (it pins torch==2.13.0; this machine's pip finds it in its local mirror). Its compiled
ops (torchvision/_C.so) link libtorch_cuda / libc10_cuda, so they do not load with the CPU torch, and then
`import torchvision` fails with "operator torchvision::nms does not exist" (its _meta_registrations register
fakes for nms/qnms unconditionally). `_import_torchvision()` below works around that: on exactly this error it
declares the two operator schemas (no kernels: nms and qnms stay unusable) in a `torchvision` torch.library
namespace and imports again. Nothing used here needs nms. Without the compiled ops, torchvision.ops.roi_align
(horama's crops) falls back by itself to its pure-PyTorch `_roi_align`, but in adaptive sampling mode (horama's:
sampling_ratio=-1) that version samples every input pixel in every output bin ([K, C, PH, PW, H, W]: it asks for
725 GB for horama's 6 crops) through torch.compile. So for horama's call only, `horama.common.roi_align` is
patched with `_roi_align_eager`: the same torchvision `_roi_align`, eager, given the per-RoI grid that the
kernels compute in adaptive mode (ceil(RoI side / output side)) as an exact sampling ratio; it matches the
adaptive reference to float64 rounding (values and gradients), but costs about 0.44 s of horama's ~1 s step on
one core (the C++ kernel would be far cheaper). A CPU build of torchvision (from PyTorch's own index, not
reachable here) would need neither workaround: both act only when the compiled ops are missing.

What each adapter runs (all on device "cpu")
-------------------------------------------
The network is `Logits(loaded_model)`: [0, 1] RGB -> `net(to_input(x))` -> an identity submodule named
`labels`, so the peers' hook-based objectives ("labels", index) read the logits, and every package sees pictures
in [0, 1] (their own ImageNet normalization is switched off or set to the identity range, because `to_input`
already normalizes for the model).

- torch-lucent: `render_vis(model, objectives.channel("labels", index), param_f=lambda:
  param.image(size) [fft spectrum with 1/f scale, decorrelated colour, sigmoid; batch 1, sd 0.01],
  optimizer=Adam(lr=0.05), transforms=transform.standard_transforms [pad 12 (constant 0.5), jitter 8,
  random scale 0.9-1.1, random rotate -10..10 deg, jitter 4], thresholds=(steps,), preprocess=False,
  show_image=False, progress=False)`. The objective: minus the mean logit. The model sees the ~248 px
  transformed picture as is (lucent only upsamples pictures under 224 px).
- horama: `maco(objective, total_steps=steps, image_size=size, model_input_size=resolution (224),
  values_range=(0, 1), device="cpu")`, all else its defaults: NAdam lr 1.0, 6 crops per step with box size
  (0.20, 0.25) (which horama turns into crops of 25-30% of the side: delta = rand * (0.25 - 0.20) + 0.25), centres
  0.5 + N(0, 0.15), roi_align to 2x the input size then bicubic down to 224, noise 0.05; the objective is the
  mean logit over the crops. values_range (0, 1) instead of horama's (-2.5, 2.5): horama feeds its sigmoid
  output straight to the model, expecting normalized inputs, while Logits takes [0, 1] and normalizes itself
  (ImageNet's normalization maps [0, 1] to about [-2.1, 2.6], so the two are close); the picture returned is
  then directly the one optimized. MAGNITUDE: horama's `init_maco_buffer` downloads its ImageNet magnitude
  spectrum (imagenet_decorrelated.npy) to ./spectrum_decorrelated.npy at run time, which fails offline and
  `maco` takes no magnitude argument. So `horama_class(..., magnitude=...)` writes the given tensor
  (shape (3, H, W // 2 + 1) in horama's decorrelated colour space: the colour matrix in horama.common; only its
  shape matters, horama standardizes the phase and the picture) to a temporary .npy and, for the call only,
  monkeypatches `horama.maco_fv.MACO_SPECTRUM_FILENAME` to that file and `horama.maco_fv.download_url` to
  raise; horama's own loader then loads and resizes it (F.interpolate to the spectrum shape) as usual. Nothing of
  horama is reimplemented. With magnitude=None the magnitude file that faccent 1.0.3 ships,
  faccent/clean_decorrelated.npy ((3, 512, 257), the same colour space: both packages use the same matrix), is
  used if faccent is installed; otherwise ValueError. horama's tqdm bar is silenced the same way (patched).
  CAVEAT: horama is built for image_size=1280 (its default) with crops of 25-30% of the side: at
  image_size=224 the model only ever sees ~56-67 px crops near the centre, zoomed about 3.5x, so the whole
  picture classifies poorly while its centre does (128 steps, banana: p=0.0006 on the whole picture, 0.99 on the
  centre 30% crop). The transparency map (maco's second output) is not used.
- faccent: `render.render_vis(model, objectives.channel("labels", index), parameterizer=param.fourier(
  img_size=(size, size), device="cpu") [its default: lucid-style fft, sd 0.01, decay 1, desaturation 5,
  decorrelated colour, sigmoid], transforms=None [-> the parameterizer's standard_transforms =
  transform.standard_box_transforms: a random square crop of 5-99% of the side, gaussian+uniform noise 0.02],
  optimizer=None [Adam lr 0.05], nb_transforms=16 (its default: 16 crops per step, one batch),
  out_thresholds=(steps,), inline_thresholds=(), progress=False, model_input_size=(224, 224),
  model_input_range=(0, 1), hook_layers=("labels",))`. Its loop records the picture at iteration `steps` before
  stepping, so it runs steps + 1 forward/backward passes for `steps` updates. Its messages (print) are
  swallowed.
  Accentuation from a picture (not wrapped here): pass `init_img=` a PIL picture or path and
  `parameterizer=param.fourier_phase(init_img=..., img_size=..., device=...)` (magnitude taken from the picture,
  a learnt per-frequency magnitude gate, standard_box_transforms), and to keep it close to the picture
  `accent_reg_layer=` a hooked layer name with `accent_reg_alpha=` (an l2 penalty on that layer's change from
  the seed picture, balanced by gradient ratio); `hook_layers` must then include that layer.

Side effects kept away from dreamscope: lucent registers forward hooks on every module of the model and never
removes them; faccent clears every module's forward/backward hooks (which would silently remove dreamscope's own
`taps` hooks on the cached model). Each adapter saves all hook tables of the network and restores them after the
call. NumPy's and Python's global RNGs are reseeded by every call.

Measured (2026-12, efficientnet-lite0, banana = class 954, 224 px, torch.set_num_threads(1) while another job
used the other core; the adapters leave the thread count alone): seconds per step at 128 steps and the maker's
p(banana) on the whole picture (`class_probabilities`; 0.0002 on uniform noise): torch-lucent 0.13 s, 1.000;
horama 0.96 s, 0.0006 (0.99 on the centre 30%: see its caveat); faccent 1.03 s, 1.000 (16 crops per step).
With 2 threads on a shared 2-core machine, one efficientnet-lite0 forward+backward took 3.8 s instead of 0.075 s
(OpenMP threads fighting the other job): time peers with 1 thread unless the machine is idle.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import importlib.util
import io
import os
import random
import sys
import tempfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

INSTALL = """\
python3 -m venv .venv-peers
.venv-peers/bin/pip install torch==2.13.0
.venv-peers/bin/pip install -e ".[lite]"
.venv-peers/bin/pip install --no-deps torchvision==0.28.0 kornia==0.4.1 torch-lucent==0.1.8 horama==0.3.0 faccent==1.0.3
.venv-peers/bin/pip install -r benchmarks/requirements-peers.txt"""

# PyPI name -> (import name, the modules the adapter uses)
_PACKAGES = {
    "torch-lucent": ("lucent", ("lucent.optvis.render", "lucent.optvis.objectives", "lucent.optvis.param",
                                "lucent.optvis.transform")),
    "horama": ("horama", ("horama", "horama.maco_fv")),
    "faccent": ("faccent", ("faccent.render", "faccent.param", "faccent.objectives", "faccent.transform")),
}

_torchvision_shim = None  # the torch.library.Library that declares nms/qnms (kept alive: it undefines on GC)


def install_hint() -> str:
    """The commands that make .venv-peers (run from the repository root)."""
    return INSTALL


def _import_torchvision():
    """Import torchvision; with a CUDA-built wheel on the CPU torch, declare the two operators its meta
    registrations need, then import again (see the module docstring)."""
    global _torchvision_shim
    try:
        import torchvision
        return torchvision
    except RuntimeError as error:
        if "torchvision::nms" not in str(error) or _torchvision_shim is not None:
            raise
    for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
        del sys.modules[name]
    shim = torch.library.Library("torchvision", "DEF")
    shim.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    shim.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _torchvision_shim = shim
    import torchvision
    return torchvision


def _import(pypi_name: str):
    _import_torchvision()
    for module in _PACKAGES[pypi_name][1]:
        importlib.import_module(module)
    return importlib.import_module(_PACKAGES[pypi_name][0])


def available() -> dict[str, str | None]:
    """PyPI name -> installed version, or None where the package (or what it imports) cannot be imported."""
    found: dict[str, str | None] = {}
    for name in _PACKAGES:
        try:
            _import(name)
            found[name] = importlib.metadata.version(name)
        except Exception:  # noqa: BLE001 - any failure means "not usable here"
            found[name] = None
    return found


class Logits(nn.Module):
    """[0, 1] RGB pictures (NCHW, any size) -> the model's logits. The last submodule, `labels` (an identity on
    the logits), is what lucent's and faccent's "labels" objectives read through their forward hooks."""

    def __init__(self, loaded_model):
        super().__init__()
        self.net = loaded_model.net
        self.net.eval()
        for p in self.net.parameters():
            p.requires_grad_(False)
        self.labels = nn.Identity()  # registered after net: the last module, as the peers' "labels" expects
        self._to_input = loaded_model.to_input

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.labels(self.net(self._to_input(x)))


_HOOK_TABLES = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks",
                "_forward_hooks_with_kwargs", "_forward_hooks_always_called", "_forward_pre_hooks_with_kwargs")


@contextlib.contextmanager
def _hooks_kept(module: nn.Module):
    """Restore every submodule's hook tables afterwards (lucent leaves hooks behind; faccent clears them)."""
    saved = [(m, {t: OrderedDict(getattr(m, t)) for t in _HOOK_TABLES if hasattr(m, t)}) for m in module.modules()]
    try:
        yield
    finally:
        for m, tables in saved:
            for t, content in tables.items():
                table = getattr(m, t)
                table.clear()
                table.update(content)


def _seed(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


def _picture(x: torch.Tensor) -> Image.Image:
    """(1, 3, H, W) or (3, H, W) in [0, 1] -> RGB PIL picture."""
    x = x.detach().cpu().float()
    if x.dim() == 4:
        x = x[0]
    array = (x.clamp(0, 1).permute(1, 2, 0).numpy() * 255.0 + 0.5).astype(np.uint8)
    return Image.fromarray(array, "RGB")


def lucent_class(loaded_model, index: int, steps: int, size: int = 224, seed: int = 0) -> Image.Image:
    """torch-lucent's render_vis, class logit `index`, its default param/transforms/optimizer at `size` px."""
    _import("torch-lucent")
    from lucent.optvis import objectives, param, render, transform

    model = Logits(loaded_model)
    _seed(seed)
    with _hooks_kept(model):
        images = render.render_vis(
            model,
            objectives.channel("labels", int(index)),
            param_f=lambda: param.image(size),
            optimizer=lambda params: torch.optim.Adam(params, lr=5e-2),
            transforms=transform.standard_transforms,
            thresholds=(int(steps),),
            preprocess=False,  # lucent would add torchvision's ImageNet normalization; Logits normalizes
            progress=False,
            show_image=False,
        )
    return _picture(torch.from_numpy(images[-1]).permute(0, 3, 1, 2))


def _roi_align_eager(input, boxes, output_size, spatial_scale=1.0, sampling_ratio=-1, aligned=False):
    """torchvision.ops.roi_align through torchvision's own pure-PyTorch version (`_roi_align`, eager), for when its
    compiled ops are missing (see the module docstring). That version, asked for adaptive sampling
    (sampling_ratio <= 0), allocates samples for every input pixel in every output bin ([K, C, PH, PW, H, W]:
    725 GB for horama's crops) and goes through torch.compile; so the per-RoI grid that torchvision's kernels use
    in adaptive mode, ceil(RoI side / output side), is computed here and passed as an exact sampling ratio, RoIs
    with the same grid together. Same arithmetic as the kernel; square grids only (horama's boxes are square)."""
    tv_roi_align = importlib.import_module("torchvision.ops.roi_align")  # the module, not the function
    from torch.nn.modules.utils import _pair

    reference = getattr(tv_roi_align._roi_align, "__wrapped__", tv_roi_align._roi_align)  # not the compiled one
    pooled_h, pooled_w = _pair(output_size)
    rois = boxes if isinstance(boxes, torch.Tensor) else tv_roi_align.convert_boxes_to_roi_format(boxes)
    if sampling_ratio > 0:
        return reference(input, rois, spatial_scale, pooled_h, pooled_w, sampling_ratio, aligned)
    height = (rois[:, 4] - rois[:, 2]) * spatial_scale
    width = (rois[:, 3] - rois[:, 1]) * spatial_scale
    if not aligned:
        height, width = height.clamp(min=1.0), width.clamp(min=1.0)
    grid_h = torch.ceil(height / pooled_h).long()
    grid_w = torch.ceil(width / pooled_w).long()
    if not torch.equal(grid_h, grid_w) or bool((grid_h < 1).any()):
        raise NotImplementedError("roi_align without torchvision's compiled ops: only non-empty RoIs whose "
                                  "adaptive sampling grid is square")
    pieces = []
    for grid in torch.unique(grid_h).tolist():
        which = (grid_h == grid).nonzero().flatten()
        pieces.append((which, reference(input, rois[which], spatial_scale, pooled_h, pooled_w, int(grid), aligned)))
    if len(pieces) == 1:
        return pieces[0][1]
    order = torch.cat([which for which, _ in pieces]).argsort()
    return torch.cat([values for _, values in pieces])[order]


def _faccent_magnitude() -> Path | None:
    try:
        spec = importlib.util.find_spec("faccent")
    except (ImportError, ValueError):
        return None
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "clean_decorrelated.npy"
    return path if path.is_file() else None


def horama_class(loaded_model, index: int, steps: int, size: int = 224, seed: int = 0,
                 magnitude: torch.Tensor | None = None) -> Image.Image:
    """horama's MaCo (`horama.maco`), class logit `index`, image_size=size, model input at the model's resolution.

    magnitude: (3, H, W // 2 + 1) magnitude spectrum in horama's decorrelated colour space (any H, W: horama
    resizes it); None: the one faccent ships, if faccent is installed."""
    torchvision = _import_torchvision()
    _import("horama")
    import horama.common as common
    import horama.maco_fv as maco_fv
    from tqdm import tqdm

    if magnitude is None:
        shipped = _faccent_magnitude()
        if shipped is None:
            raise ValueError("horama downloads its magnitude spectrum at run time, and there is no network: pass "
                             "magnitude= (a (3, H, W // 2 + 1) tensor), or install faccent, whose "
                             "clean_decorrelated.npy is then used")
        array = np.load(shipped).astype(np.float32)
    else:
        array = torch.as_tensor(magnitude).detach().cpu().float().numpy()
    if array.ndim != 3 or array.shape[0] != 3:
        raise ValueError(f"magnitude must have shape (3, H, W // 2 + 1), got {tuple(array.shape)}")

    def no_download(*_args, **_kwargs):
        raise RuntimeError("horama tried to download its spectrum; the adapter should have given it a file")

    model = Logits(loaded_model)
    index = int(index)

    def objective(crops: torch.Tensor) -> torch.Tensor:
        return model(crops)[:, index].mean()

    with tempfile.TemporaryDirectory(prefix="horama-") as folder:
        path = os.path.join(folder, "spectrum_decorrelated.npy")
        np.save(path, array)
        patched = {"MACO_SPECTRUM_FILENAME": path, "download_url": no_download,
                   "tqdm": lambda iterable, **kw: tqdm(iterable, disable=True, **kw)}
        patches = [(maco_fv, name, value) for name, value in patched.items()]
        if not torchvision.extension._has_ops():
            patches.append((common, "roi_align", _roi_align_eager))
        before = [(module, name, getattr(module, name)) for module, name, _ in patches]
        _seed(seed)
        try:
            for module, name, value in patches:
                setattr(module, name, value)
            with _hooks_kept(model):
                image, _alpha = maco_fv.maco(objective, total_steps=int(steps), image_size=size,
                                             model_input_size=loaded_model.spec.resolution,
                                             values_range=(0.0, 1.0), device="cpu")
        finally:
            for module, name, value in before:
                setattr(module, name, value)
    return _picture(image)


def faccent_class(loaded_model, index: int, steps: int, size: int = 224, seed: int = 0) -> Image.Image:
    """faccent's render_vis from noise, class logit `index`, its default parameterization (fourier) and transforms
    (standard_box_transforms, 16 per step) at `size` px."""
    _import("faccent")
    from faccent import objectives, param, render

    model = Logits(loaded_model)
    resolution = loaded_model.spec.resolution
    _seed(seed)
    with _hooks_kept(model), contextlib.redirect_stdout(io.StringIO()):
        parameterizer = param.fourier(img_size=(size, size), device=torch.device("cpu"))
        images, _alphas, _losses, _ = render.render_vis(
            model,
            objectives.channel("labels", int(index)),
            parameterizer=parameterizer,
            out_thresholds=(int(steps),),
            inline_thresholds=(),
            progress=False,
            model_input_size=(resolution, resolution),
            model_input_range=(0.0, 1.0),  # pictures stay in [0, 1]: Logits normalizes for the model
            img_size=(size, size),
            hook_layers=("labels",),
        )
    return _picture(images[-1])


PEERS = {"torch-lucent": lucent_class, "horama": horama_class, "faccent": faccent_class}


if __name__ == "__main__":
    if "--check" in sys.argv[1:]:
        versions = available()
        for name, version in versions.items():
            print(f"{name}: {version or 'NOT importable'}")
        if not all(versions.values()):
            print("install with:\n" + install_hint())
            raise SystemExit(1)
    else:
        print(__doc__)
