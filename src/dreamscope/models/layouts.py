"""How a layer's output is laid out, and its (N, C, H, W) view: what every objective, the probe, the atlas and the
explain page see, whatever the network.

The trial pass (`custom.probe_layers`) recognises, for a square trial picture of `size` px:

- "nchw": a feature map (N, C, H, W), the convolutional networks' own;
- "nhwc": channels last (N, H, W, C), as Swin's and ConvNeXt's stages keep it;
- "tokens": a token sequence (N, T, C) with T = extra + H * W for the picture's patch grid: a vision transformer's
  blocks and their MLPs, with `extra` tokens first (a class token, register tokens) that the grid leaves out;
- "cls": the class token of a token layer, as (N, C, 1, 1): its own layer, `BLOCK:cls`;

and, for a module that returns a tuple, list or dict, the element that is such a feature map (`pick`). Attention
maps (N, heads, T, T) are not features: their "spatial" size does not divide the picture, so they are refused.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..errors import DreamscopeError

MAX_EXTRA_TOKENS = 16  # a class token and register tokens (DINOv2 and ViT-reg use 4; none uses more than 8)
CLS = "cls"  # the suffix of a class-token layer: "blocks.6:cls"


@dataclass(frozen=True)
class Layout:
    kind: str = "nchw"
    extra: int = 0  # tokens before the patch grid ("tokens", "cls")
    pick: int | str | None = None  # the element of a tuple / list (index) or dict (key) that is the feature map
    class_token: bool = False  # "tokens": the first extra token is a class token (the layer has a BLOCK:cls twin)
    registers: int = 0  # "tokens": how many of the extra tokens are register tokens

    def describe(self) -> str:
        """How `dreamscope layers` shows it: "" for a plain (N, C, H, W) map."""
        words = {"nchw": "", "nhwc": "channels last", "cls": "class token"}.get(self.kind)
        if self.kind == "tokens":
            before = ["class token"] if self.class_token else []
            if self.registers:
                before.append(f"{self.registers} register{'s' * (self.registers > 1)}")
            others = self.extra - len(before[:1] if self.class_token else []) - self.registers
            if others > 0:
                before.append(f"{others} extra")
            words = "tokens" + (f": {', '.join(before)} + grid" if before else "")
        if self.pick is not None:
            where = f"[{self.pick!r}]" if isinstance(self.pick, str) else f"[{self.pick}]"
            words = f"output{where}" + (f", {words}" if words else "")
        return words

    def element(self, output):
        """The tensor this layout reads from a module's output."""
        return output if self.pick is None else output[self.pick]

    def view(self, output, size: tuple[int, int], stride: int | None) -> torch.Tensor:
        """The (N, C, H, W) view of a module's output for an input picture of `size` (h, w)."""
        x = self.element(output)
        if self.kind == "nchw":
            return x
        if self.kind == "nhwc":
            return x.permute(0, 3, 1, 2)
        if self.kind == "cls":
            return x[:, 0, :, None, None]
        rows, cols = grid(x.shape[1] - self.extra, size, stride)
        return x[:, self.extra :, :].transpose(1, 2).reshape(x.shape[0], x.shape[2], rows, cols)

    def unview(self, new: torch.Tensor, output, size: tuple[int, int], stride: int | None):
        """`new`, an (N, C, H, W) activation, back in the module's own layout (its extra tokens kept from `output`),
        for a tap that replaces what the rest of the network sees."""
        x = self.element(output)
        if self.kind == "nchw":
            value = new
        elif self.kind == "nhwc":
            value = new.permute(0, 2, 3, 1)
        elif self.kind == "cls":
            value = torch.cat([new[:, :, 0, 0][:, None, :].to(x.dtype), x[:, 1:, :].expand(new.shape[0], -1, -1)], 1)
        else:
            tokens = new.flatten(2).transpose(1, 2)
            value = torch.cat([x[:, : self.extra, :].expand(new.shape[0], -1, -1).to(tokens.dtype), tokens], 1)
        if self.pick is None:
            return value
        if isinstance(output, dict):
            return {**output, self.pick: value}
        items = list(output)
        items[self.pick] = value
        return type(output)(items) if isinstance(output, tuple) else items


NCHW = Layout()


def grid(count: int, size: tuple[int, int], stride: int | None) -> tuple[int, int]:
    """(rows, cols) of `count` patch tokens for a picture of `size` (h, w): the picture's shape in patches."""
    height, width = size
    stride = stride or 1
    sides = [
        (h, w)
        for h in (height // stride, round(height / stride), math.ceil(height / stride))
        for w in (width // stride, round(width / stride), math.ceil(width / stride))
    ]  # how its padding rounds
    for rows, cols in sides:
        if rows >= 1 and rows * cols == count:
            return rows, cols
    raise DreamscopeError(
        f"a layer's {count} tokens do not make a grid of a {width}x{height} picture at stride {stride} (the network "
        f"pads or crops it inside); give a picture whose sides are multiples of {stride * 8}, or use another layer"
    )


def _stride(size: int, length: int) -> int | None:
    """The stride that maps a picture side of `size` to `length` positions; None when none does (then it is no
    picture's grid: an attention map, a sequence of something else)."""
    if length < 1:
        return None
    ratio = size / length
    whole = round(ratio)
    # within 6%: a convolution's rounding (Caffe's 224 -> 113, Inception's 299 -> 35) but not a window's 49 tokens
    return whole if whole >= 1 and abs(ratio - whole) <= 0.06 * whole else None


def classify(output, size: int) -> tuple[Layout, int, int] | str:
    """(layout, channels, stride) of a module's output on a square `size` px trial picture, or why it is not a
    feature map."""
    if isinstance(output, (tuple, list, dict)):
        items = output.items() if isinstance(output, dict) else enumerate(output)
        for key, item in items:
            if isinstance(item, torch.Tensor):
                found = _tensor(item, size)
                if not isinstance(found, str):
                    layout, channels, stride = found
                    return Layout(layout.kind, layout.extra, key), channels, stride
        kind = type(output).__name__
        return f"its output is a {kind} with no feature map in it"
    if not isinstance(output, torch.Tensor):
        return f"its output is a {type(output).__name__}, not a tensor"
    return _tensor(output, size)


def _tensor(x: torch.Tensor, size: int) -> tuple[Layout, int, int] | str:
    shape = tuple(x.shape)
    text = "x".join(map(str, shape))
    if x.dim() >= 3 and shape[0] != 1:  # the trial pass is one picture
        return f"its output ({text}) has {shape[0]} rows for one picture: windows or heads of it, not a map of it"
    if x.dim() == 4:
        if shape[2] == shape[3]:
            if shape[2] == 1:
                return "its output is 1x1: one value per channel, no picture left to dream on"
            stride = _stride(size, shape[3])
            if stride is None:
                return f"its output ({text}) is not a map of the picture: an attention map or the like"
            return NCHW, shape[1], stride
        if shape[1] == shape[2] and _stride(size, shape[2]) is not None:
            if shape[1] == 1:
                return "its output is 1x1: one value per channel, no picture left to dream on"
            return Layout("nhwc"), shape[3], _stride(size, shape[2])
        return f"its output ({text}) is not a map of the square trial picture (heads of attention or the like)"
    if x.dim() == 3:
        tokens = shape[1]
        for stride in (4, 8, 14, 16, 32, 64):
            side = size // stride
            if size % stride == 0 and side > 1 and 0 <= tokens - side * side <= MAX_EXTRA_TOKENS:
                return Layout("tokens", tokens - side * side), shape[2], stride
        return f"its output is 3-D ({text}) but not the picture's {size} px in patches (a token sequence)"
    return f"its output is {x.dim()}-D ({text}), not a feature map (N, C, H, W) or a token sequence (N, T, C)"
