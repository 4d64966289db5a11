"""Composable transforms: each says what it is, draws from the generator passed in, in the order composed."""

from __future__ import annotations

import pytest
import torch

from dreamscope.optvis import transforms as T


def test_the_standard_transforms_are_a_composition_that_describes_itself():
    standard = T.standard_transforms()
    assert standard == T.compose(T.Pad(12), T.Jitter(8), T.ScaleRotate((0.9, 1.6), 10.0), T.Jitter(4))
    assert repr(standard).startswith("Compose(steps=(Pad(width=12, value=0.5), Jitter(pixels=8), ScaleRotate(")
    assert T.robustness == standard  # what morph and the microscope use
    assert T.standard_transforms(pad=4, jitter=2).steps[-1] == T.Jitter(1)  # an icon's, scaled down
    assert T.standard_transforms(view="picture").steps[2] == T.ScaleRotate((0.9, 1.6), 10.0, trim=12)


def test_views_at_the_pictures_size_see_what_padded_views_see_on_fewer_pixels():
    x = torch.rand(2, 3, 40, 56, generator=torch.Generator().manual_seed(0))
    padded = T.standard_transforms(pad=6, jitter=3, view="padded")(x, torch.Generator().manual_seed(3))
    own = T.standard_transforms(pad=6, jitter=3, view="picture")(x, torch.Generator().manual_seed(3))
    assert padded.shape == (2, 3, 52, 68) and own.shape == x.shape  # each side trimmed by the pad, not only squares
    # With no zoom, turn or shift, the picture-sized view is the padded canvas resampled: the same field of view
    still = dict(pad=6, jitter=0, scale=(1.0, 1.0), rotate=0.0)
    canvas = T.Pad(6)(x, None)
    own = T.standard_transforms(**still, view="picture")(x, torch.Generator().manual_seed(0))
    resampled = torch.nn.functional.interpolate(canvas, size=x.shape[-2:], mode="bilinear", align_corners=False)
    assert torch.allclose(own, resampled, atol=1e-5)
    assert torch.allclose(T.standard_transforms(**still)(x, torch.Generator().manual_seed(0)), canvas, atol=1e-5)
    with pytest.raises(ValueError, match="view must be one of"):
        T.standard_transforms(view="cropped")


def test_composed_transforms_draw_in_order_from_one_generator():
    x = torch.arange(2 * 3 * 16 * 16, dtype=torch.float32).view(2, 3, 16, 16)
    twice = T.compose(T.Jitter(3), T.Jitter(3))(x, torch.Generator().manual_seed(5))
    generator = torch.Generator().manual_seed(5)
    by_hand = T.roll(T.roll(x, T.random_shift(generator, 3)), T.random_shift(generator, 3))
    assert torch.equal(twice, by_hand)


def test_a_transform_of_ones_own_composes_and_the_result_is_seeded():
    def flip(x, generator):  # any callable (x, generator) is a transform
        return x.flip(-1) if float(torch.rand(1, generator=generator)) < 0.5 else x

    chain = T.compose(T.Pad(2), flip, T.ScaleRotate((1.0, 1.2), 5.0))
    x = torch.rand(1, 3, 20, 20, generator=torch.Generator().manual_seed(0))
    a, b = (chain(x, torch.Generator().manual_seed(7)) for _ in range(2))
    assert a.shape == (1, 3, 24, 24) and torch.equal(a, b)
    assert not torch.equal(a, chain(x, torch.Generator().manual_seed(8)))


def test_views_are_new_draws_of_one_transform_in_turn():
    x = torch.rand(1, 3, 20, 20, generator=torch.Generator().manual_seed(0))
    standard = T.standard_transforms(pad=2, jitter=2, view="picture")
    views = T.Views(standard, 3)(x, torch.Generator().manual_seed(4))
    generator = torch.Generator().manual_seed(4)
    assert torch.equal(views, torch.cat([standard(x, generator) for _ in range(3)]))
    assert views.shape == (3, 3, 20, 20) and not torch.equal(views[0], views[1])


def test_a_crop_is_a_window_at_the_pictures_scale_placed_at_random_inside_it():
    ramp = torch.arange(48, dtype=torch.float32).expand(1, 3, 48, 48)  # each pixel holds its column
    crop = T.ScaleRotate((1.0, 1.0), 0.0, crop=0.5)
    lefts = []
    for seed in range(40):
        window = crop(ramp, torch.Generator().manual_seed(seed))
        assert window.shape == (1, 3, 24, 24)
        steps = window[0, 0].diff(dim=-1)
        assert torch.allclose(steps, torch.ones_like(steps), atol=1e-4)  # one column a pixel: no zoom in or out
        assert float(window.min()) >= -1e-4 and float(window.max()) <= 47 + 1e-4  # inside: nothing mirrored in
        lefts.append(float(window[0, 0, 0, 0]))
    assert min(lefts) < 5 and max(lefts) > 19  # anywhere from the left edge to the right


def test_a_crop_keeps_the_sides_divisibility_up_to_8_px():
    assert [T.cropped(side, 0.6) for side in (224, 64, 100, 512)] == [136, 40, 60, 304]  # 224 - 88, 64 - 24, ...
    assert T.cropped(224, 1.0) == 224 and T.cropped(64, 0.01) == 8
    x = torch.rand(1, 3, 60, 100)
    assert T.ScaleRotate((1.0, 1.2), 5.0, crop=0.7)(x, torch.Generator().manual_seed(0)).shape == (1, 3, 44, 68)


def test_a_whole_view_draws_what_it_drew_before_crops_existed():
    x = torch.rand(1, 3, 24, 24, generator=torch.Generator().manual_seed(0))
    generator = torch.Generator().manual_seed(3)
    T.ScaleRotate((0.9, 1.6), 10.0)(x, generator)
    two_draws = torch.Generator().manual_seed(3)
    torch.rand(2, generator=two_draws)  # the zoom and the turn; a crop adds its placement
    assert torch.equal(torch.rand(3, generator=generator), torch.rand(3, generator=two_draws))
    assert T.standard_transforms(view="picture", crop=0.6)(x, generator).shape == (1, 3, 16, 16)
    with pytest.raises(ValueError, match="crop"):
        T.standard_transforms(crop=0.0)
