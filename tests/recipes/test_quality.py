"""The held-out judge of class pictures (visualize --score, the quality benchmark)."""

import pytest
import torch
from PIL import Image
from skimage import data

import dreamscope as ds
from dreamscope.errors import DreamscopeError
from dreamscope.io import images
from dreamscope.recipes import quality
from dreamscope.recipes.classify import class_probabilities


def test_views_are_the_picture_its_mirror_and_the_centre_crop():
    x = torch.arange(2 * 8 * 8, dtype=torch.float32).reshape(1, 2, 8, 8)
    views = quality.views(x)
    assert torch.equal(views["picture"], x) and torch.equal(views["mirror"], x.flip(-1))
    assert views["crop"].shape == x.shape
    # the crop keeps the middle 6 of 8 pixels a side: its corners come from inside the picture
    assert float(views["crop"][0, 0, 0, 0]) > float(x[0, 0, 0, 0]) and float(views["crop"][0, 0, -1, -1]) < float(x[0, 0, -1, -1])


def test_the_judge_is_another_network():
    assert quality.judge_for("efficientnet-lite0").name == "efficientnet-lite2"
    assert quality.judge_for("efficientnet-lite2").name == "efficientnet-lite0"


def test_a_model_with_its_own_classes_has_no_judge():
    from toy_models import wrapped_factory

    with pytest.raises(DreamscopeError, match="ImageNet"):
        quality.judge_for(wrapped_factory())


def test_score_of_a_photo_names_its_class_on_every_view():
    photo = Image.fromarray(data.coffee()).resize((224, 149))
    judge = quality.judge_for("efficientnet-lite0")
    index = ds.resolve_class("espresso")
    result = quality.score(photo, index, judge)
    assert list(result.views) == ["picture", "mirror", "crop"] and result.recognized == 3, result.summary()
    with torch.no_grad():
        expected = class_probabilities(judge, images.to_tensor(photo).flip(-1))[0, index]
    assert result.views["mirror"].probability == pytest.approx(float(expected), rel=1e-5)
    assert result.colourfulness > 15 and "espresso on 3 of 3 views" in result.summary()
    grey = quality.score(Image.new("RGB", (224, 224), "grey"), index, judge)
    assert grey.recognized == 0 and grey.colourfulness == 0.0


def test_plausibility_a_photo_is_nearest_the_photos_of_its_own_class_and_noise_is_not():
    """The judge's features of one sample photo per class ship with dreamscope (docs/make_references.py): a real cat
    photo is nearest the cats' photos, far from the banana's; noise is near nothing in particular."""
    cat = Image.fromarray(data.chelsea())
    for maker in ("efficientnet-lite0", "efficientnet-lite2"):  # each judge has its own reference features
        judge = quality.judge_for(maker)
        tabby = quality.score(cat, ds.resolve_class("tabby"), judge).plausibility
        banana = quality.score(cat, ds.resolve_class("banana"), judge).plausibility
        assert tabby.rank <= 5 and tabby.similarity > 0.5 > banana.similarity and banana.rank > 50, (tabby, banana)
        assert abs(tabby.others - banana.others) < 0.01  # the others' mean hardly depends on which class is left out
    noise = Image.fromarray((torch.rand(224, 224, 3, generator=torch.Generator().manual_seed(0)) * 255).byte().numpy())
    lost = quality.score(noise, ds.resolve_class("tabby"), judge).plausibility
    assert lost.rank > 100 and lost.similarity < 0.3
    assert "nearest of 1000" in quality.score(cat, ds.resolve_class("tabby"), judge).summary()
