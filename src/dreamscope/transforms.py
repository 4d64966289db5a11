"""Random image transforms for robustness. All randomness comes from a torch.Generator passed in, so a seed
reproduces a picture exactly."""

from __future__ import annotations

import torch


def random_shift(generator: torch.Generator, jitter: int) -> tuple[int, int]:
    """A (dy, dx) offset, each uniform in [-jitter, jitter]."""
    if jitter <= 0:
        return 0, 0
    dy, dx = torch.randint(-jitter, jitter + 1, (2,), generator=generator).tolist()
    return dy, dx


def roll(x: torch.Tensor, shift: tuple[int, int]) -> torch.Tensor:
    """Circular shift of an NCHW tensor; roll(roll(x, s), (-dy, -dx)) == x."""
    dy, dx = shift
    return torch.roll(x, shifts=(dy, dx), dims=(-2, -1)) if (dy or dx) else x
