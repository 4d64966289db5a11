"""Settings as data: defaults, one place of validation with messages that name the field, exact JSON."""

from __future__ import annotations

import json
import time

import pytest

from dreamscope import settings as S
from dreamscope.errors import DreamscopeError, SettingsError

NON_DEFAULT = {
    "dream": dict(
        layer=["stage3.1=0.5", "stage5.2"],
        channels=[3, 17],
        octaves=3,
        octave_scale=1.3,
        steps=7,
        step_size=0.02,
        jitter=8,
        max_size=640,
        tile=256,
        seed=2**63 - 1,
        weights="w.pth",
    ),
    "visualize": dict(
        kind="channels", target="stage4.2", grid=8, size=(96, 200), steps=50, learning_rate=0.1, param="pixels", robust=False
    ),
    "zoom": dict(frames=48, zoom=0.97, rotate=-1.5, fps=12.5, layers="stage3.1, stage4.2", every=6, tile=None),
    "morph": dict(classes="banana,starfish,lemon", frames=10, size=128, steps=20, warmup=100, fps=30),
    "video": dict(blend=0.5, frame_steps=3, channels="strongest:5"),
    "live": dict(layer="stage3.1,stage4.2=0.5", channels="3,17", step_size=0.05, steps=2, size=480, blend=0.7, jitter=4),
    "probe": dict(layers="stage2.1,stage4.2", channels=0, max_size=None, vis_size=96, vis_steps=64),
    "classify": dict(top=10, model="efficientnet-lite2"),
    "exemplars": dict(units="stage4.2:17,stage5.2:3", count=5, side=96, vis_size=64, vis_steps=16, seed=7),
    "atlas": dict(
        layer="stage4.2",
        grid=12,
        positions=4,
        side=96,
        min_count=2,
        compare="snorkel, scuba diver",
        keep=0.1,
        icon_size=64,
        icon_steps=50,
        neighbours=8,
        exemplars_per_cell=3,
    ),
    "patch": dict(from_class="snorkel", to_class="scuba diver", size=0.25, place="corner", views=20, side=160),
    "microscope": dict(
        layers="stage3.1, stage4.2",
        size=96,
        steps=64,
        learning_rate=0.1,
        samples=0,
        diversity=2.5,
        block=8,
        top=3,
        exemplar_folder="/photos",
        exemplar_count=4,
        side=160,
    ),
}
NON_DEFAULT["explain"] = dict(
    layer="stage4.2",
    groups=4,
    targets="tabby, stage6.0:3",
    attribution="gradient",
    integrated_steps=8,
    lower_layer="none",
    microscope="/site",
    size=160,
    cell_size=48,
    channel_size=64,
    top_channels=2,
    steps=32,
)
REQUIRED = {
    "visualize": {"target": "banana"},
    "morph": {"classes": "a,b"},
    "exemplars": {"units": "stage4.2:17"},
    "patch": {"from_class": "snorkel", "to_class": "scuba diver"},
}


@pytest.mark.parametrize("recipe", list(S.RECIPES))
def test_every_recipes_settings_round_trip_through_json_exactly(recipe):
    cls = S.RECIPES[recipe]
    for settings in (cls(**REQUIRED.get(recipe, {})), cls(**NON_DEFAULT[recipe])):
        text = json.dumps(settings.to_json())
        again = S.Settings.from_json(json.loads(text))  # the recipe named inside picks the class
        assert type(again) is cls and again == settings and json.dumps(again.to_json()) == text


def test_canonical_forms():
    dream = S.DreamSettings(layer=["stage3.1=0.5", "stage5.2=1"], channels=[3, 3, 17], tile="off")
    assert (dream.layer, dream.channels, dream.tile) == ("stage3.1=0.5,stage5.2", "3,17", None)
    assert S.DreamSettings(channels="Strongest:5").channels == "strongest:5"
    assert S.VisualizeSettings(target="banana", steps=4.0).steps == 4  # a whole number from a JSON form
    assert S.ZoomSettings(layers=" a , b ").layers == "a,b"


@pytest.mark.parametrize(
    "cls, changes, field, says",
    [
        (S.DreamSettings, dict(octaves=0), "octaves", "whole number from 1 to 50, got 0"),
        (S.DreamSettings, dict(octaves=10**18), "octaves", "from 1 to 50"),  # refused, not a hang
        (S.DreamSettings, dict(seed=2**64), "seed", "from 0 to 2**63-1"),
        (S.DreamSettings, dict(seed=-1), "seed", "from 0"),
        (S.DreamSettings, dict(steps=True), "steps", "whole number"),
        (S.DreamSettings, dict(step_size=float("nan")), "step_size", "above 0 and at most 1, got nan"),
        (S.DreamSettings, dict(octave_scale=0.5), "octave_scale", "from 1 to 4"),
        (S.DreamSettings, dict(tile=10), "tile", "'auto', none"),
        (S.DreamSettings, dict(layer="a=x"), "layer", "NAME=WEIGHT"),
        (S.DreamSettings, dict(channels="loudest:3"), "channels", "strongest:10"),
        (S.ZoomSettings, dict(fps=1e-300), "fps", "from 0.1 to 240"),
        (S.ZoomSettings, dict(zoom=5), "zoom", "from 0.5 to 2"),
        (S.ZoomSettings, dict(layer="a", layers="b,c"), "layers", "not both"),
        (S.ZoomSettings, dict(every=3), "every", "goes with layers"),
        (S.VisualizeSettings, dict(target="stage4.2", kind="channels", grid=100), "grid", "from 1 to 64, got 100"),
        (S.VisualizeSettings, dict(target="banana", grid=8), "grid", "channel sheet"),
        (S.VisualizeSettings, dict(target="stage4.2", kind="channels", samples=3), "samples", "one picture per channel"),
        (S.VisualizeSettings, dict(target="stage4.2", kind="channel"), "target", "LAYER:INDEX"),
        (S.VisualizeSettings, dict(), "target", "is required"),
        (S.VisualizeSettings, dict(target="banana", size=10), "size", "from 64 to 2048"),
        (S.VisualizeSettings, dict(target="banana", param="wavelet"), "param", "fft, maco, pixels"),
        (S.MorphSettings, dict(classes="banana"), "classes", "at least two classes"),
        (S.VideoSettings, dict(blend=1.0), "blend", "below 1"),
        (S.ProbeSettings, dict(channels=65), "channels", "from 0 to 64"),
    ],
)
def test_bad_values_are_refused_with_the_field_named(cls, changes, field, says):
    started = time.perf_counter()
    with pytest.raises(SettingsError) as caught:
        cls(**changes)
    assert caught.value.field == field and str(caught.value).startswith(field) and says in str(caught.value), str(caught.value)
    assert time.perf_counter() - started < 1.0


def test_front_ends_word_fields_their_own_way():
    with pytest.raises(SettingsError) as caught:
        S.ZoomSettings(every=3)
    flags = caught.value.worded(lambda field: "--" + field.replace("_", "-"))
    assert flags == "--every goes with --layers (a layer cycle)"


def test_a_setting_that_does_not_apply_is_refused_not_ignored():
    with pytest.raises(SettingsError, match="octaves is not a setting of morph"):
        S.MorphSettings.build(None, {"classes": "a,b", "octaves": 3})
    with pytest.raises(SettingsError, match="did you mean octaves"):
        S.DreamSettings.build(None, {"octavs": 3})
    with pytest.raises(SettingsError, match="is not a setting of dream"):
        S.Settings.from_json({"recipe": "dream", "size": 224})
    with pytest.raises(SettingsError, match="recipe must be one of"):
        S.Settings.from_json({"recipe": "paint"})
    with pytest.raises(DreamscopeError, match="JSON object"):
        S.Settings.from_json(["dream"])


def test_replace_checks_again_and_changed_lists_what_differs():
    settings = S.DreamSettings(steps=20)
    assert settings.replace(octaves=2).changed() == {"steps": 20, "octaves": 2}
    with pytest.raises(SettingsError, match="steps"):
        settings.replace(steps=0)
    with pytest.raises(AttributeError):
        settings.steps = 5  # frozen: a job's settings cannot change under it


def test_a_record_without_a_later_field_means_what_ran_before_it_existed(model):
    from dreamscope.io import provenance

    made = provenance.make(S.VideoSettings(blend=0.8), model)
    data = made.to_json()
    assert provenance.Record.from_json(data).settings.carry == "detail"  # today's records say what they carry
    del data["settings"]["carry"]
    assert provenance.Record.from_json(data).settings.carry == "pixels"  # a video made before carrying detail
    assert S.VideoSettings.from_json(data["settings"]).carry == "detail"  # a new job without it gets today's default


def test_a_visualize_record_without_decay_draws_with_lucids_spectrum(model):
    from dreamscope.io import provenance

    data = provenance.make(S.VisualizeSettings(target="banana"), model).to_json()
    assert provenance.Record.from_json(data).settings.decay == 1.25
    del data["settings"]["decay"]
    assert provenance.Record.from_json(data).settings.decay == 1.0  # the README's pictures still redo


def test_a_visualize_record_without_view_drew_through_padded_views(model):
    from dreamscope.io import provenance

    data = provenance.make(S.VisualizeSettings(target="banana"), model).to_json()
    assert data["settings"]["view"] == "picture"
    del data["settings"]["view"]
    assert provenance.Record.from_json(data).settings.view == "padded"
    with pytest.raises(SettingsError, match="view"):
        S.VisualizeSettings(target="banana", view="cropped")


def test_one_visualized_picture_sees_two_crops_a_step_and_older_records_one_whole_view(model):
    from dreamscope.io import provenance

    one = S.VisualizeSettings(target="banana")
    assert (one.view_count, one.crop_fraction) == (2, 0.6)
    samples = S.VisualizeSettings(target="banana", samples=4)
    assert (samples.view_count, samples.crop_fraction, samples.stop_confidence) == (2, 0.6, 0.0)  # no stop for samples
    for whole in (
        S.VisualizeSettings(kind="channels", target="stage4.2"),
        S.VisualizeSettings(kind="channel", target="stage4.2:1", samples=2),
    ):
        assert (whole.view_count, whole.crop_fraction) == (1, 1.0)  # sheets and a unit's samples: not measured
    assert S.VisualizeSettings(target="banana", robust=False).view_count == 1
    data = provenance.make(one, model).to_json()
    assert (data["settings"]["views"], data["settings"]["crop"]) == (2, 0.6)  # the record keeps what ran
    for name in ("views", "crop"):
        del data["settings"][name]
    before = provenance.Record.from_json(data).settings
    assert (before.view_count, before.crop_fraction) == (1, 1.0)  # drawn before views and crops: redone so


@pytest.mark.parametrize(
    "field, resolved, default, otherwise, asked",
    [  # the stop: no class probability to watch, or asked to run every step
        ("confidence", "stop_confidence", 0.99, 0.0, dict(robust=False)),
        ("confidence", "stop_confidence", 0.99, 0.0, dict(confidence=0)),
        # the skip gradient: measured for one class picture only
        ("skip_gradient", "branch_gradient", 0.5, 1.0, dict(accentuate=True)),
        ("skip_gradient", "branch_gradient", 0.5, 0.7, dict(skip_gradient=0.7, kind="channel", target="stage4.2:3")),
    ],
)
def test_one_class_picture_resolves_its_own_defaults_and_older_records_ran_without(
    model, field, resolved, default, otherwise, asked
):
    from dreamscope.io import provenance

    one = S.VisualizeSettings(target="banana")
    assert getattr(one, resolved) == default
    for other in (
        S.VisualizeSettings(target="banana", samples=2),
        S.VisualizeSettings(kind="channels", target="stage4.2"),
        S.VisualizeSettings(kind="channel", target="stage4.2:3"),
    ):
        assert getattr(other, resolved) == S.VisualizeSettings.BEFORE[field]
    assert getattr(S.VisualizeSettings(**{"target": "banana", **asked}), resolved) == otherwise
    data = provenance.make(one, model).to_json()
    assert data["settings"][field] == default  # the record keeps what ran
    del data["settings"][field]
    assert getattr(provenance.Record.from_json(data).settings, resolved) == S.VisualizeSettings.BEFORE[field]


def test_a_record_keeps_each_resolved_default_so_a_later_default_cannot_change_its_redo(model, monkeypatch):
    from dreamscope.io import provenance

    made = {
        "one picture": S.VisualizeSettings(target="banana"),
        "samples": S.VisualizeSettings(target="banana", samples=3),
        "sheet": S.VisualizeSettings(kind="channels", target="stage4.2"),
        "no robustness": S.VisualizeSettings(target="banana", robust=False),
        "accentuated": S.VisualizeSettings(target="banana", accentuate=True),
    }
    resolved = lambda s: (s.view_count, s.crop_fraction, s.stop_confidence, s.parameterization, s.branch_gradient)
    ran = {name: resolved(s) for name, s in made.items()}
    texts = {name: provenance.make(s, model).to_text() for name, s in made.items()}
    assert provenance.Record.from_text(texts["accentuated"]).settings.param == "maco"  # the photo's spectrum, kept
    # the day the defaults change: every picture through crops, stopping at 0.5, on pixels
    monkeypatch.setattr(S.VisualizeSettings, "through_crops", property(lambda self: self.robust and not self.accentuate))
    stop = property(lambda self: self.confidence if self.confidence is not None else 0.5)
    monkeypatch.setattr(S.VisualizeSettings, "stop_confidence", stop)
    monkeypatch.setattr(S.VisualizeSettings, "parameterization", property(lambda self: self.param or "pixels"))
    monkeypatch.setattr(S.VisualizeSettings, "branch_gradient", property(lambda self: self.skip_gradient or 0.25))
    assert S.VisualizeSettings(kind="channels", target="stage4.2").crop_fraction == 0.6  # the new default shows
    for name, text in texts.items():
        again = provenance.Record.from_text(text).settings
        assert resolved(again) == ran[name], name
    # and a setting that resolves to the whole picture without robustness reads back
    assert provenance.Record.from_text(texts["no robustness"]).settings.crop == 1.0


@pytest.mark.parametrize(
    "fields, message",
    [
        (dict(confidence=1.5), "confidence must be a number from 0 to 1"),
        (dict(confidence=0.9, samples=2), "confidence watches the network's probability for the class of one"),
        (dict(confidence=0.9, kind="neuron", target="stage4.2:3"), "confidence watches"),
        (dict(skip_gradient=0), "skip_gradient must be a number above 0 and at most 1"),
        (dict(crop=1.5), "crop must be a number from 0.2 to 1"),
        (dict(crop=0.5, robust=False), "crop crops the robust views: it needs robust on"),
        (dict(crop=0.2, size=64), "crop leaves views under 32 px at size 64"),
        (dict(views=2, robust=False), "views averages random robust views of the pictures: it needs robust on"),
        (dict(views=2, accentuate=True), "views averages random robust views"),
    ],
)
def test_bad_views_crops_and_confidences_are_refused_naming_the_field(fields, message):
    with pytest.raises(SettingsError, match=message):
        S.VisualizeSettings(**{"target": "banana", **fields})
