"""Adapters that run peer feature-visualization (three) and DeepDream (two) packages on a dreamscope model.

Each `*_class(loaded_model, index, steps, size=224, seed=0)` grows a picture of ImageNet class `index` from noise
with that package's own defaults and returns it as an RGB `PIL.Image` (size x size); the same seed gives the same
picture (torch, NumPy and Python's `random` are all seeded: lucent draws its jitter from NumPy). `PEERS` maps
each package's PyPI name to its adapter; `available()` gives each package's version, or None where it cannot be
imported. The peers are imported inside the functions, so this module imports without them.

A second group, for a per-step speed benchmark of DeepDream on a photo: `DREAM_PEERS` maps `dreamlens` and
`torch-dreams` to `*_dreamer(loaded_model, layer_module_path, size)`, which return an object whose `.step()` runs
one of that package's own dream steps (see "Dream-step adapters" below); `available("dream")` gives their versions.

Installing (a SEPARATE venv, so .venv never gets torchvision, kornia & co.; .venv-peers/ is git-ignored)
-----------------------------------------------------------------------------------------------------------
From the repository root (`install_hint()` returns the same text)::

    python3 -m venv .venv-peers
    .venv-peers/bin/pip install torch==2.13.0        # the CPU build: any other torch spec pulls GBs of CUDA
    .venv-peers/bin/pip install -e ".[lite,demo]"    # demo: scikit-image, for bench_dream.py's photos
    .venv-peers/bin/pip install --no-deps torchvision==0.28.0 kornia==0.4.1 \\
        torch-lucent==0.1.8 horama==0.3.0 faccent==1.0.3
    .venv-peers/bin/pip install -r benchmarks/requirements-peers.txt
    .venv-peers/bin/pip install --no-deps dreamlens==0.1.1 torch-dreams==4.0.0
    .venv-peers/bin/python benchmarks/peers.py --check          # imports all five, prints the versions

Why --no-deps: the three class peers and torch-dreams declare torchvision (which would replace the CPU torch), and
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
- dreamlens 0.1.1 needs nothing more: it declares numpy, pillow, torch (all already there; --no-deps only
  keeps pip from touching torch). It imports torchvision lazily, only in its "reference" parameterization's
  transforms (not used here), and umap-learn only for atlases (extra "atlas").
- torch-dreams 4.0.0 declares torchvision, opencv-python, numpy, tqdm, mkl. torchvision is imported by nearly
  every module (see below). cv2 is imported at module level (custom_image_param.py, masked_image_param.py, both
  imported by torch_dreams/__init__): dreamscope's own dependency opencv-python-headless already provides it, and
  installing opencv-python too would put a second cv2 package over the same files. tqdm and numpy also come with
  dreamscope. mkl (a large binary) is never imported. So nothing extra to install.

torchvision: yes, truly required at import by all three. PyPI only has CUDA builds of torchvision; 0.28.0 is the
release for torch 2.13.0 (it pins torch==2.13.0; this machine's pip finds it in its local mirror). Its compiled
ops (torchvision/_C.so) link libtorch_cuda / libc10_cuda, so they do not load with the CPU torch, and then
`import torchvision` fails with "operator torchvision::nms does not exist" (its _meta_registrations register
fakes for nms/qnms unconditionally). `_import_torchvision()` below (dreamscope's own import) works around that: on exactly this error it
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

Dream-step adapters (DREAM_PEERS; one step on a photo, objective: the mean square of one module's output)
-----------------------------------------------------------------------------------------------------------
`dreamlens_dreamer(loaded_model, layer_module_path, size=224, picture=None, seed=0, mode="synthesize")` and
`torch_dreams_dreamer(loaded_model, layer_module_path, size=224, picture=None, seed=0)` return a `_DreamStepper`:
`.step()` one dream step; `.run(n)` n steps in one call of the package; `.picture()` the current picture,
(1, 3, size, size) in [0, 1]; `.pixels` the expected pixels the network sees per forward/backward pass
(`dream_pixels(name, size)`: compare with dreamscope at equal pixels); `.no_grad_forwards` extra forwards without
gradient per step; `.seen` the (h, w) of every picture the network got in the last step; `.settings`.
`layer_module_path` is a module of `loaded_model.net`, e.g. `model.layer("stage5.2").module` ("_blocks.10" in
efficientnet-lite0). picture: a PIL picture or a [0, 1] tensor, resized to size; None: `torch.rand` from seed (as
bench_dream.py's step benchmark). The network is `RGBNet(loaded_model)`: [0, 1] RGB -> `net(to_input(x))`, with the
packages' own ImageNet normalization off (dreamlens: normalize=False; torch-dreams: no set_custom_normalization,
since its CustomImageParam already hands the network the picture itself in [0, 1]).

Each `.step()` calls the package's public entry point with one iteration (`FeatureVisualizer.synthesize`/`amplify`
with iters/steps=1, `Dreamer.render` with iters=1), passing back the picture parameter it returned: both packages
deep-copy the parameter on entry and keep the optimizer on it, so the optimizer state carries over and n
`.step()`s give bit for bit the picture of one `.run(n)` (checked). The per-call extra (deepcopy of the parameter
and its AdamW state, registering the hook) is under 1 ms at 224 px.

What both do, per step (read from their source): the WHOLE network runs to the logits (a forward hook on the
layer only reads the activation; nothing stops early, unlike dreamscope's taps). Neither freezes the model's
parameters (only .eval()): a trainable model would also get weight gradients every step, accumulated, never
zeroed; dreamscope's LoadedModel comes frozen, so here they don't. Update: AdamW on the picture parameter after
clipping the gradient's norm; neither normalizes the gradient as DeepDream does.
- dreamlens 0.1.1, mode "synthesize" (default): `synthesize([layer], image_parameter=PixelCanvas(photo),
  custom_func=-mean(act^2), iters=1, ...)` with amplify's defaults (AmplifyConfig): AdamW lr 3e-4, weight decay
  0.1, gradient norm clipped to 0.1, on the picture's logits (picture = sigmoid(param), as amplify starts from the
  photo). Transforms each step (build_transforms): random scale from 32 values in 0.5-1.2 (bilinear), random
  rotation -15..15 whole degrees and random translation up to 0.1 in grid units (5% of the side) (two
  grid_samples, zero fill), then crop_or_pad_to(size, size): the network always sees exactly size x size pixels,
  zero-padded when scaled down, centre-cropped when scaled up. One forward/backward per step.
  mode "amplify": `amplify(photo, [layer], config=AmplifyConfig(steps=1), image_parameter=...)` unchanged, i.e. its
  own objective (FeatureAmplificationObjective: -(dot/|target|) * dot, dot = <act, target>, target = the layer's
  output on the photo under the same transform), NOT the mean square: a second, no-grad forward per step on the
  transformed photo (paired_default_transforms: scale U(0.5, 1.2), one rotation+translation grid_sample,
  crop_or_pad_to size), so 2 forwards of size^2 pixels per step. Its real per-step cost, for reference.
- torch-dreams 4.0.0: `Dreamer(model, quiet=True).render([layer], image_parameter=CustomImageParam(photo),
  custom_func=-mean(act^2), iters=1, lr=3e-4, weight_decay=0.1, grad_clip=0.1)` (CustomImageParam's documented
  settings for photos; render's defaults are lr 9e-3, no decay, clip 1). The parameter is the photo's rfft2 in
  lucid's decorrelated colour space divided by a 1/|f|^1.5 scale; each step: irfft2, colour matrix, clamp, and the
  picture clamped to [0, 1]. AdamW on that complex spectrum. Transforms: torchvision RandomAffine(degrees=15,
  nearest-neighbour, zero fill, translate 0) then random_resize: height and width scaled independently by
  U(0.5, 1.2) (bilinear), no crop: the network sees the whole picture at floor(fh*size) x floor(fw*size), on
  average ~0.72 size^2 pixels (0.25-1.44 size^2): `dream_pixels`. One forward/backward per step.
Side effects: torch-dreams runs warnings.filterwarnings("ignore") at import; `_import` restores the filters.

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
import dataclasses
import importlib
import importlib.metadata
import importlib.util
import io
import os
import random
import sys
import tempfile
import warnings
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

INSTALL = """\
python3 -m venv .venv-peers
.venv-peers/bin/pip install torch==2.13.0
.venv-peers/bin/pip install -e ".[lite,demo]"
.venv-peers/bin/pip install --no-deps torchvision==0.28.0 kornia==0.4.1 torch-lucent==0.1.8 horama==0.3.0 faccent==1.0.3
.venv-peers/bin/pip install -r benchmarks/requirements-peers.txt
.venv-peers/bin/pip install --no-deps dreamlens==0.1.1 torch-dreams==4.0.0"""

# PyPI name -> (import name, the modules the adapter uses)
_PACKAGES = {
    "torch-lucent": (
        "lucent",
        ("lucent.optvis.render", "lucent.optvis.objectives", "lucent.optvis.param", "lucent.optvis.transform"),
    ),
    "horama": ("horama", ("horama", "horama.maco_fv")),
    "faccent": ("faccent", ("faccent.render", "faccent.param", "faccent.objectives", "faccent.transform")),
    "dreamlens": ("dreamlens", ("dreamlens", "dreamlens.feature_visualizer", "dreamlens.image_parameters")),
    "torch-dreams": ("torch_dreams", ("torch_dreams", "torch_dreams.dreamer", "torch_dreams.custom_image_param")),
}


def install_hint() -> str:
    """The commands that make .venv-peers (run from the repository root)."""
    return INSTALL


def _import_torchvision():
    """torchvision, through dreamscope's own import (models/libraries.py), which declares the two operators a
    CUDA-built wheel's meta registrations need on the CPU torch (see the module docstring)."""
    from dreamscope.models.libraries import import_torchvision

    return import_torchvision()


def _import(pypi_name: str):
    _import_torchvision()
    # catch_warnings restores the warning filters afterwards: torch-dreams' image_transforms.py runs
    # warnings.filterwarnings("ignore") at import, which would silence every warning of the process.
    with warnings.catch_warnings():
        for module in _PACKAGES[pypi_name][1]:
            importlib.import_module(module)
        return importlib.import_module(_PACKAGES[pypi_name][0])


def available(group: str = "class") -> dict[str, str | None]:
    """PyPI name -> installed version, or None where the package (or what it imports) cannot be imported.

    group: "class" (the PEERS, the default: quality_visualize.py offers exactly these as makers), "dream" (the
    DREAM_PEERS) or "all"."""
    names = {"class": list(PEERS), "dream": list(DREAM_PEERS), "all": [*PEERS, *DREAM_PEERS]}[group]
    found: dict[str, str | None] = {}
    for name in names:
        try:
            _import(name)
            found[name] = importlib.metadata.version(name)
        except Exception:
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


_HOOK_TABLES = (
    "_forward_hooks",
    "_forward_pre_hooks",
    "_backward_hooks",
    "_backward_pre_hooks",
    "_forward_hooks_with_kwargs",
    "_forward_hooks_always_called",
    "_forward_pre_hooks_with_kwargs",
)


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
        raise NotImplementedError(
            "roi_align without torchvision's compiled ops: only non-empty RoIs whose adaptive sampling grid is square"
        )
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


def horama_class(
    loaded_model, index: int, steps: int, size: int = 224, seed: int = 0, magnitude: torch.Tensor | None = None
) -> Image.Image:
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
            raise ValueError(
                "horama downloads its magnitude spectrum at run time, and there is no network: pass "
                "magnitude= (a (3, H, W // 2 + 1) tensor), or install faccent, whose "
                "clean_decorrelated.npy is then used"
            )
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
        patched = {
            "MACO_SPECTRUM_FILENAME": path,
            "download_url": no_download,
            "tqdm": lambda iterable, **kw: tqdm(iterable, disable=True, **kw),
        }
        patches = [(maco_fv, name, value) for name, value in patched.items()]
        if not torchvision.extension._has_ops():
            patches.append((common, "roi_align", _roi_align_eager))
        before = [(module, name, getattr(module, name)) for module, name, _ in patches]
        _seed(seed)
        try:
            for module, name, value in patches:
                setattr(module, name, value)
            with _hooks_kept(model):
                image, _alpha = maco_fv.maco(
                    objective,
                    total_steps=int(steps),
                    image_size=size,
                    model_input_size=loaded_model.spec.resolution,
                    values_range=(0.0, 1.0),
                    device="cpu",
                )
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


# ==============================================================================================================
# ONE DREAM STEP of the DeepDream peers (dreamlens, torch-dreams) on a photo, for the per-step speed benchmark.
# Each adapter returns a _DreamStepper; the objective is dreamscope's default dream objective, the mean square of
# one module's activation. See "Dream-step adapters" in the module docstring.
# ==============================================================================================================


class RGBNet(nn.Module):
    """[0, 1] RGB pictures (NCHW, any size) -> net(to_input(x)): the whole network, to its logits, as both dream peers
    run it (their forward hooks only read the layer; nothing stops the pass there). `seen` collects the (height,
    width) of every picture given to it, so an adapter can tell how many pixels the network really saw."""

    def __init__(self, loaded_model):
        super().__init__()
        self.net = loaded_model.net  # dreamscope's: eval mode, parameters frozen (neither peer freezes them itself)
        self._to_input = loaded_model.to_input
        self.seen: list[tuple[int, int]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append((int(x.shape[-2]), int(x.shape[-1])))
        return self.net(self._to_input(x))


def _mean_square(layer_outputs):
    """dreamscope's default dream objective as a loss (both peers minimise what custom_func returns)."""
    return -layer_outputs[0].pow(2).mean()


def _dream_photo(picture, size: int, seed: int) -> torch.Tensor:
    """The photo to dream on as (1, 3, size, size) float32 in [0, 1]: a PIL picture or a tensor (resized to size if
    needed); None: uniform noise from `seed`, the picture bench_dream.py's step benchmark uses."""
    if picture is None:
        return torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(seed))
    if isinstance(picture, Image.Image):
        picture = picture.convert("RGB").resize((size, size), Image.LANCZOS)
        return torch.from_numpy(np.asarray(picture, dtype=np.float32) / 255.0).permute(2, 0, 1)[None].contiguous()
    x = torch.as_tensor(picture).detach().float().cpu()
    x = x[None] if x.dim() == 3 else x
    if tuple(x.shape[-2:]) != (size, size):
        x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return x.clamp(0.0, 1.0).contiguous()


def dream_pixels(pypi_name: str, size: int) -> float:
    """Expected number of pixels the network sees per forward/backward pass in one dream step of `pypi_name` on a
    size x size photo (compare dreamscope, which sees size x size, at equal pixels with it)."""
    if pypi_name == "dreamlens":
        return float(size * size)  # scaled 0.5-1.2x, then crop_or_pad_to(size, size): always exactly size x size
    if pypi_name == "torch-dreams":
        # random_resize: F.interpolate(scale_factor=(fh, fw)), fh and fw independent U(0.5, 1.2), each side
        # floor(size * f); the sides are independent, so the mean area is the mean side squared (~0.72 size^2)
        side = float(np.floor(size * np.linspace(0.5, 1.2, 100_001)).mean())
        return side * side
    raise KeyError(f"not a dream peer: {pypi_name!r} (known: {', '.join(DREAM_PEERS)})")


class _DreamStepper:
    """What the dream adapters return.

    step(): one of the package's own dream steps (its public entry point with iters/steps=1; the picture parameter
    comes back from it with its optimizer and that optimizer's state, so consecutive steps continue one dream).
    run(n): n steps in one call of the package (its own loop: the per-call setup, a deepcopy of the picture parameter
    with its optimizer and registering the hook, is then paid once). picture(): the current picture,
    (1, 3, size, size) in [0, 1]. pixels: expected pixels the network sees per forward/backward pass
    (`dream_pixels`). no_grad_forwards: extra forward passes without gradient per step (dreamlens' amplify mode: 1,
    of as many pixels). seen: (height, width) of every picture the network got in the last step()/run().
    settings: what is passed to the package."""

    def __init__(self, model: RGBNet, layer: nn.Module, size: int, pixels: float, no_grad_forwards: int, settings: dict):
        self.model, self.layer, self.size = model, layer, size
        self.pixels, self.no_grad_forwards, self.settings = pixels, no_grad_forwards, settings

    @property
    def seen(self) -> list[tuple[int, int]]:
        return list(self.model.seen)

    def step(self) -> None:
        self.run(1)

    def run(self, steps: int) -> None:
        self.model.seen.clear()
        with _hooks_kept(self.layer):  # torch-dreams removes its hook only when render() ends normally
            self._run(int(steps))

    def _run(self, steps: int) -> None:
        raise NotImplementedError

    def picture(self) -> torch.Tensor:
        raise NotImplementedError


class _DreamlensStepper(_DreamStepper):
    def __init__(self, loaded_model, layer_module_path: str, size: int, picture, seed: int, mode: str):
        _import("dreamlens")
        from dreamlens import AmplifyConfig, FeatureVisualizer, PixelCanvas

        if mode not in ("synthesize", "amplify"):
            raise ValueError(f"mode must be 'synthesize' or 'amplify', got {mode!r}")
        model = RGBNet(loaded_model)
        layer = model.net.get_submodule(layer_module_path)
        # amplify's own defaults (lr 3e-4, weight decay 0.1, gradient norm clip 0.1, rotate 15, scale 0.5-1.2,
        # translate 0.1) for both modes: they are dreamlens' settings for dreaming on a photo
        self._config = AmplifyConfig()
        transform = self._config.transform
        settings = dict(
            lr=self._config.lr,
            weight_decay=self._config.weight_decay,
            grad_clip=self._config.grad_clip,
            rotate_degrees=transform.rotate_degrees,
            scale_min=transform.scale_min,
            scale_max=transform.scale_max,
            translate_x=transform.translate_x,
            translate_y=transform.translate_y,
        )
        super().__init__(model, layer, size, dream_pixels("dreamlens", size), int(mode == "amplify"), {"mode": mode, **settings})
        self._mode = mode
        # normalize=False: RGBNet applies the model's own to_input (dreamlens would add ImageNet's normalization)
        self._visualizer = FeatureVisualizer(model, quiet=True, device="cpu", normalize=False)
        self._photo = _dream_photo(picture, size, seed)
        self._canvas = PixelCanvas(self._photo, device="cpu")  # what amplify starts from: the photo, in logit space
        _seed(seed)

    def _run(self, steps: int) -> None:
        if self._mode == "amplify":
            # dreamlens' own amplify, unchanged (paired targets, its own FeatureAmplificationObjective): not the
            # mean square, but its real per-step cost
            result = self._visualizer.amplify(
                self._photo, [self.layer], config=dataclasses.replace(self._config, steps=steps), image_parameter=self._canvas
            )
            self._canvas = result.image
            return
        # synthesize: dreamlens' loop for any layer objective (synthesize_from_image is it with a PixelCanvas)
        settings = {k: v for k, v in self.settings.items() if k != "mode"}
        self._canvas = self._visualizer.synthesize(
            [self.layer],
            image_parameter=self._canvas,
            width=self.size,
            height=self.size,
            iters=steps,
            custom_func=_mean_square,
            **settings,
        )

    def picture(self) -> torch.Tensor:
        return self._canvas.as_nchw()


class _TorchDreamsStepper(_DreamStepper):
    def __init__(self, loaded_model, layer_module_path: str, size: int, picture, seed: int):
        _import("torch-dreams")
        from torch_dreams import Dreamer
        from torch_dreams.custom_image_param import CustomImageParam

        model = RGBNet(loaded_model)
        layer = model.net.get_submodule(layer_module_path)
        # CustomImageParam's documented settings for a photo (its docstring and README: lr 3e-4, grad_clip 0.1,
        # weight_decay 0.1); the transforms are render()'s defaults (rotate 15, scale 0.5-1.2, translate 0)
        settings = dict(lr=3e-4, weight_decay=0.1, grad_clip=0.1)
        super().__init__(model, layer, size, dream_pixels("torch-dreams", size), 0, settings)
        # No set_custom_normalization: CustomImageParam.forward gives the picture itself in [0, 1] (it stores the
        # photo ImageNet-denormalized and normalizes it back), and RGBNet applies to_input; torch-dreams'
        # custom normalization would first un-normalize with ImageNet's statistics, which suits AutoImageParam only.
        self._dreamer = Dreamer(model, quiet=True, device="cpu")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # chw_rgb_to_fft_param calls torch.tensor() on a tensor
            self._param = CustomImageParam(image=_dream_photo(picture, size, seed), device="cpu")
        _seed(seed)  # RandomAffine draws from torch, random_resize from Python's random

    def _run(self, steps: int) -> None:
        self._param = self._dreamer.render(
            [self.layer], image_parameter=self._param, iters=steps, custom_func=_mean_square, **self.settings
        )

    def picture(self) -> torch.Tensor:
        return self._param.to_nchw_tensor()


def dreamlens_dreamer(
    loaded_model, layer_module_path: str, size: int = 224, picture=None, seed: int = 0, mode: str = "synthesize"
) -> _DreamStepper:
    """dreamlens' dream on a size x size photo; objective: the mean square of module `layer_module_path` of
    loaded_model.net.

    mode "synthesize" (default): `FeatureVisualizer.synthesize` with custom_func = the mean square, on a PixelCanvas
    of the photo, with amplify's default settings. mode "amplify": `FeatureVisualizer.amplify` as is, with its own
    objective and a second (no-grad) forward pass per step. picture: PIL or [0, 1] tensor; None: seeded noise."""
    return _DreamlensStepper(loaded_model, layer_module_path, size, picture, seed, mode)


def torch_dreams_dreamer(loaded_model, layer_module_path: str, size: int = 224, picture=None, seed: int = 0) -> _DreamStepper:
    """torch-dreams' `Dreamer.render` on a CustomImageParam of a size x size photo, custom_func = the mean square of
    module `layer_module_path` of loaded_model.net. picture: PIL or [0, 1] tensor; None: seeded noise."""
    return _TorchDreamsStepper(loaded_model, layer_module_path, size, picture, seed)


DREAM_PEERS = {"dreamlens": dreamlens_dreamer, "torch-dreams": torch_dreams_dreamer}

if __name__ == "__main__":
    if "--check" in sys.argv[1:]:
        versions = available("all")
        for name, version in versions.items():
            print(f"{name}: {version or 'NOT importable'}")
        if not all(versions.values()):
            print("install with:\n" + install_hint())
            raise SystemExit(1)
    else:
        print(__doc__)
