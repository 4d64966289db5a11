"""A network's number format: float32, or a bfloat16 twin that dreams as well, chosen by `precision`."""

import dataclasses

import pytest
import torch
from PIL import Image

import dreamscope as ds
import toy_models
from conftest import chelsea
from dreamscope.errors import DreamscopeError
from dreamscope.io import images
from dreamscope.models import precision
from dreamscope.optvis import objectives, render, taps
from dreamscope.recipes.classify import class_probabilities
from dreamscope.work import redo


@pytest.fixture(scope="module")
def twin(model):
    return precision.at(model, "bf16")


def test_auto_chooses_bf16_only_for_registered_models_on_cpus_with_amx(model, monkeypatch):
    assert precision.resolve("fp32", model) == "fp32" and precision.resolve("bf16", model) == "bf16"
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: True)
    assert precision.resolve("auto", model) == "bf16"
    own = ds.wrap_model(toy_models.ToyNet())  # not measured: a user's model stays float32
    assert precision.resolve("auto", own) == "fp32" and precision.resolve("bf16", own) == "bf16"
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: False)
    assert precision.resolve("auto", model) == "fp32"
    assert precision.at(model, "auto") is model
    with pytest.raises(DreamscopeError, match="unknown precision 'fp16'; use one of auto, fp32, bf16"):
        precision.resolve("fp16", model)
    with pytest.raises(DreamscopeError, match="precision must be one of"):
        ds.DreamSettings(precision="half")


def test_the_twin_is_made_once_and_leaves_the_model_as_it_was(model, twin):
    assert precision.at(model, "bf16") is twin and twin.dtype == torch.bfloat16 and model.dtype == torch.float32
    assert all(p.dtype == torch.float32 for p in model.net.parameters())
    convs = [m for m in twin.net.modules() if isinstance(m, torch.nn.Conv2d)]
    strided_depthwise = [m for m in convs if m.groups == m.in_channels > 1 and m.stride != (1, 1)]
    assert len(strided_depthwise) == 4  # the four stride-2 stages: float32, bfloat16 is slow there
    assert all(m.weight.dtype == torch.float32 for m in strided_depthwise)
    assert all(m.weight.dtype == torch.bfloat16 for m in convs if m not in strided_depthwise)
    x = images.to_tensor(chelsea((96, 64)), "cpu")
    assert twin.to_input(x).dtype == torch.bfloat16 and twin.to_input(x).is_contiguous(memory_format=torch.channels_last)
    acts = render.activations(twin, ["stage4.2", "logits"], x)
    assert all(a.dtype == torch.float32 for a in acts.values())  # objectives always see float32
    # A twin made after a layer was read carries the original's tap hook there: the dispatch still runs once.
    render.activations(model, ["stage4.2"], x)
    late = precision.at(dataclasses.replace(model), "bf16")
    render.activations(late, ["stage4.2"], x)
    for net in (model.net, twin.net, late.net):
        block = net.get_submodule(model.layer("stage4.2").module)
        assert list(block._forward_hooks.values()).count(taps._dispatch) == 1


def test_bf16_gradients_differ_from_fp32_less_than_one_pixel_of_jitter_does(model, twin):
    x = images.to_tensor(chelsea((160, 120)), "cpu")
    for layer in ("stage3.1", model.spec.default_layer, "head"):
        objective = objectives.layer_l2(layer)
        value, exact = render.objective_gradient(model, objective, x)
        value16, rounded = render.objective_gradient(twin, objective, x)
        _, shifted = render.objective_gradient(model, objective, torch.roll(x, (1, 1), (-2, -1)))
        shifted = torch.roll(shifted, (-1, -1), (-2, -1))
        error = (rounded - exact).norm() / exact.norm()  # measured 0.40-0.49
        assert rounded.dtype == torch.float32
        assert error < 0.6 * (shifted - exact).norm() / exact.norm()  # a dream's jitter moves up to 32 px a step
        assert torch.nn.functional.cosine_similarity(rounded.flatten(), exact.flatten(), dim=0) > 0.75  # 0.86-0.92
        assert value16 == pytest.approx(value, rel=0.02)  # within 0.5%


def test_a_bf16_dream_amplifies_as_much_and_its_record_says_so(model, tmp_path):
    photo = chelsea((160, 120))
    objective = objectives.layer_l2(model.spec.default_layer)

    def amplified(picture):
        with torch.no_grad():
            return float(objective(render.activations(model, objective.layers, images.to_tensor(picture, "cpu"))))

    settings = dict(octaves=2, steps=5, seed=1)
    single = ds.dream(photo, model=model, precision="fp32", **settings)
    half = ds.dream(photo, model=model, precision="bf16", **settings)
    start = amplified(photo)
    # seeds 0-3: 1.4-1.7x the photo's, bf16 within 6% of fp32
    assert amplified(half) > 1.3 * start and amplified(half) == pytest.approx(amplified(single), rel=0.15)
    assert ds.Record.from_text(half.info["dreamscope"]).precision == "bf16"
    assert ds.Record.from_text(single.info["dreamscope"]).precision == "fp32"


def test_redo_computes_as_the_original_did_whatever_this_cpu_would_choose(model, tmp_path, monkeypatch):
    chelsea((96, 64)).save(tmp_path / "photo.png")
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: True)
    picture = ds.dream(Image.open(tmp_path / "photo.png"), model=model, layer="stage3.1", octaves=1, steps=2)
    record = ds.Record.from_text(picture.info["dreamscope"]).with_files({"input": tmp_path / "photo.png"}, tmp_path / "out.png")
    picture.info["dreamscope"] = record.to_text()
    ds.save(picture, tmp_path / "out.png")
    assert record.settings.precision == "auto" and record.precision == "bf16"
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: False)  # this CPU would choose fp32 now
    again = redo.redo(tmp_path / "out.png").result()
    assert ds.read_record(again).precision == "bf16" and ds.read_record(again).settings.precision == "auto"
    assert redo.compare(tmp_path / "out.png", again) == "identical"
    assert precision.resolve("auto", model) == "fp32"  # only the redo chose as the original did


def test_pictures_stay_float32_whatever_the_network_computes_in(model, twin):
    x = torch.rand(1, 3, 64, 96)
    events = list(
        render.ascend(
            twin,
            objectives.layer_l2("stage3.1"),
            x,
            steps=2,
            step_size=0.02,
            jitter=4,
            generator=torch.Generator().manual_seed(0),
        )
    )
    assert all(event.picture.dtype == torch.float32 for event in events)
    assert not torch.equal(events[-1].picture, x)


def test_a_record_without_precision_reads_as_before(model):
    record = ds.Record.from_text(ds.dream(chelsea((96, 64)), model=model, octaves=1, steps=1).info["dreamscope"])
    old = record.to_json()
    del old["precision"]  # written by dreamscope before precision existed
    assert ds.Record.from_json(old).precision is None
    assert dataclasses.replace(record, precision=None).to_json()["precision"] is None


def test_a_bf16_class_picture_is_recognized_and_its_record_says_so(model):
    judge = ds.load_model("efficientnet-lite2")  # another network than the one that drew
    # One class: without bfloat16 hardware (AVX2 only) this picture takes about a minute, not five seconds.
    (picture,) = ds.visualize("goldfish", model=model, size=160, steps=120, precision="bf16")
    record = ds.Record.from_text(picture.info["dreamscope"])
    assert record.precision == "bf16" and record.settings.precision == "bf16"
    with torch.no_grad():
        probabilities = class_probabilities(judge, images.to_tensor(picture))[0]
    # seeds 0-2 here, and starfish too: 0.92-0.99
    assert int(probabilities.argmax()) == ds.resolve_class("goldfish") and float(probabilities.max()) > 0.5
    (single,) = ds.visualize("goldfish", model=model, size=64, steps=1, precision="fp32")
    assert ds.Record.from_text(single.info["dreamscope"]).precision == "fp32"


def test_everything_that_draws_draws_at_the_precision_asked(model, monkeypatch):
    """Each recipe built on feature visualization hands its pictures' optimization the twin, and says so."""
    from dreamscope.recipes import microscope, morph

    seen = []
    real = render.optimize
    monkeypatch.setattr(render, "optimize", lambda net, *a, **k: seen.append(net.dtype) or real(net, *a, **k))
    settings = ds.MicroscopeSettings(size=64, steps=2, samples=0, precision="bf16")
    drawn = microscope.render_channels(model, "stage3.1", [0, 1], settings)
    assert seen == [torch.bfloat16] and drawn.pictures.dtype == torch.float32 and drawn.pictures.std() > 0
    seen.clear()
    ds.visualize("banana", model=model, size=64, steps=1, precision="bf16")
    morph.morph_iter(classes="banana,lemon", model=model, size=64, frames=2, steps=1, warmup=1, precision="bf16").result()
    assert seen and set(seen) == {torch.bfloat16}
    for settings_class in (ds.AtlasSettings, ds.ExemplarsSettings, ds.ExplainSettings, ds.MorphSettings, ds.VisualizeSettings):
        assert {f.name: f.default for f in dataclasses.fields(settings_class)}["precision"] == "auto"
    assert "precision" in ds.AtlasSettings.LAYOUT_ONLY  # the icons' precision: a collection does not depend on it
