"""The recipes: one `Recipe` record each, read by everyone who lists recipes, in the spirit of `models/catalogue.py`.

A record holds a recipe's settings class, its inputs by role, its output (kind, default name, how it is written),
the function that runs it, the check that refuses a job before any work, whether `batch` runs it over a folder,
and the words each front end shows for it. Jobs (`jobs.py`), batch (`batch.py`), the command line (its commands,
flags and `command_line`), the studio (its form and checks) and the README's option tables all read it, so a new
recipe is one module in recipes/ and one `register(Recipe(...))` (CONTRIBUTING.md shows one).

Torch-free on purpose, like the settings: the functions are named as "module:function" and imported when a job
runs, so the command line builds its parser from here before torch loads.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .. import settings as S
from ..errors import DreamscopeError, SettingsError, suggest

VIDEO_OUTPUTS = ".mp4, .mov, .mkv, .webm, .gif, or a folder of PNG frames (a name ending in /)"


@dataclass(frozen=True)
class Input:
    """One input of a recipe, by role. `kind` says what it is: "picture", "video", "folder" (of pictures),
    "pictures" (files or folders, several), "patch" or "patches" (one or several pictures or atlas cells) or
    "collections" (.npz files, several). `param` is the keyword the recipe's run function takes it as (default:
    the role)."""

    role: str
    kind: str = "picture"
    required: bool = False
    what: str = "image"  # how messages name it: "image", "guide image", "init image"
    help: str = ""  # the command line's help
    flag: str | None = None  # the command line's option for it; None: a positional argument
    metavar: str | None = None
    label: str = ""  # the studio's label for its drop zone
    param: str | None = None

    @property
    def keyword(self) -> str:
        return self.param or self.role

    @property
    def many(self) -> bool:
        return self.kind in ("pictures", "patches", "collections")


@dataclass(frozen=True)
class Sheet:
    """A report whose output may instead name a picture file: then just its contact sheet is written. Settings that
    only the page shows are `reset` to these values for the sheet, or `refused` when given."""

    reset: Mapping[str, Any] = field(default_factory=dict)
    refused: tuple[str, ...] = ()


@dataclass(frozen=True)
class Output:
    """What a recipe writes. `kind`: "picture" (a picture file), "video" (a video, a GIF or a folder of PNG frames,
    written frame by frame), "folder" (a page folder, marked by `generator`) or "none" (the result is data the
    front end shows). `write` ("module:function") makes the file: for a picture, write(result) gives the picture to
    save (default: the result is one); for a folder, write(result, folder, metadata=, source=, command=) writes it.
    `name(settings, inputs)` (or its "module:function") is the default output's path; None: the output must be
    named."""

    kind: str
    help: str = ""
    name: Callable[[S.Settings, Mapping[str, Any]], str] | str | None = None
    write: str | None = None
    generator: str | None = None  # a folder output's page marker: only such a folder (or an empty one) is replaced
    sheet: Sheet | None = None
    keep_partial: bool = False  # a video stopped early keeps the frames done as a playable file
    resumable: bool = False  # ... which `zoom --resume` continues
    required: bool = False  # the command line must name it


@dataclass(frozen=True)
class Form:
    """How the studio shows a recipe: its tab, its button's verb, one line of lead, and the fields shown first (every
    other field of its settings goes under "More settings")."""

    tab: str
    verb: str
    lead: str
    main: tuple[str, ...] = ()


@dataclass(frozen=True)
class Recipe:
    """One recipe: its settings, inputs, output, the functions that run and check it, and the front ends' words."""

    name: str
    settings: type[S.Settings]
    run: str  # "module:function": run(settings=, model=, device=, <inputs by keyword>) -> Run
    check: str | None = None  # "module:function": check(settings, model, sizes) refuses what the model cannot do
    job: str | None = None  # "module:function": the whole job, for a recipe whose work is more than run and write
    inputs: tuple[Input, ...] = ()
    output: Output = Output("none")
    batch: bool = False  # `dreamscope batch NAME FOLDER` runs it over every picture of a folder
    engine: bool = False  # it runs batch work itself: --workers / --ray
    command: str | None = None  # the command line's command (default: the name; morph is `zoom --morph`)
    help: str = ""  # the command's one line in `dreamscope --help`
    description: str = ""  # its `--help` page's lead
    batch_help: str = ""  # its line in `dreamscope batch --help`
    made: str = ""  # what it makes, plural, for summaries ("dreams")
    form: Form | None = None  # offered by the studio, with this form
    lower: tuple[str, ...] = ()  # the settings that need less memory when lowered: named when memory runs out

    @property
    def cli_command(self) -> str:
        return self.command or self.name

    def input(self, role: str) -> Input:
        return next(spec for spec in self.inputs if spec.role == role)

    @property
    def roles(self) -> tuple[str, ...]:
        return tuple(spec.role for spec in self.inputs)


RECIPES: dict[str, Recipe] = {}


def register(recipe: Recipe) -> Recipe:
    """Add a recipe (or replace one of the same name): every front end offers it from now on."""
    if S.RECIPES.get(recipe.name) is not recipe.settings:
        raise ValueError(f"{recipe.settings.__name__}.recipe must be {recipe.name!r}")
    RECIPES[recipe.name] = recipe
    return recipe


def unregister(name: str) -> None:
    RECIPES.pop(name, None)


def get(name: str) -> Recipe:
    if name not in RECIPES:
        raise SettingsError("recipe", f"must be one of {', '.join(RECIPES)}, got {name!r}{suggest(str(name), RECIPES)}")
    return RECIPES[name]


def function(name: str) -> Callable:
    """The function a "module:function" name gives (the record's run, check, job and write; batch tasks)."""
    module, _, attribute = name.partition(":")
    return getattr(importlib.import_module(module), attribute)


# -- default output names -----------------------------------------------------------------------------------------


def safe_name(text: str) -> str:
    """Text as a file name: anything but letters, digits, '.', '_' and '-' replaced, never empty."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "picture"


def beside_input(suffix: str | Callable[[Path], str]) -> Callable:
    """Default output: the input's name with `suffix` (or suffix(input path)) beside it."""

    def name(_settings, inputs) -> str:
        source = inputs.get("input")
        if source is None:
            raise SettingsError("input", "is required")
        from ..io.provenance import lasting_file  # PIL and numpy: not for the command line's --help

        path = Path(source)
        if path.exists() and not path.is_dir() and not lasting_file(path):  # a pipe, /dev/stdin
            raise DreamscopeError(f"name the output: {source} is a stream, not a file to write beside")
        return str(path.with_name(path.stem + (suffix if isinstance(suffix, str) else suffix(path))))

    return name


def _video_suffix(path: Path) -> str:
    from ..io import videos  # numpy and PIL only

    kept = path.suffix.lower() in videos.CONTAINERS or path.suffix.lower() == videos.GIF
    return "_dream" + (path.suffix if kept else ".mp4")


def _visualize_name(settings, _inputs) -> str:
    name = {
        "class": settings.target,
        "channel": settings.target,
        "neuron": f"neuron-{settings.target}",
        "channels": f"{settings.target}-channels",
    }[settings.kind]
    return f"{safe_name(name)}.png"


# -- the recipes ------------------------------------------------------------------------------------------------

GUIDE = Input(
    "guide",
    what="guide image",
    flag="--guide",
    metavar="IMAGE",
    help="guide picture: pull the dream toward its features",
    label="Guide picture",
)

INIT = Input(
    "init",
    what="init image",
    flag="--init",
    metavar="IMAGE",
    help="start from this photo instead of noise",
    label="Start from a picture",
)

register(
    Recipe(
        "dream",
        S.DreamSettings,
        lower=("max_size", "tile"),
        run="dreamscope.recipes.dream:dream_iter",
        check="dreamscope.recipes.dream:check",
        inputs=(
            Input("input", required=True, help="picture to dream (PNG, JPEG, WebP, ...)", label="Photo", param="image"),
            GUIDE,
        ),
        output=Output(
            "picture", "where to write the dream (default: INPUT_dream.png beside the input)", beside_input("_dream.png")
        ),
        batch=True,
        help="DeepDream a photo",
        description="Amplify what a layer sees in a photo.",
        made="dreams",
        batch_help="DeepDream every picture: OUT/NAME.png for FOLDER/NAME.jpg",
        form=Form(
            "Dream",
            "Dream",
            "Amplify what a layer sees in your photo.",
            ("layer", "channels", "octaves", "steps", "step_size", "seed"),
        ),
    )
)

register(
    Recipe(
        "visualize",
        S.VisualizeSettings,
        lower=("size", "samples"),
        run="dreamscope.recipes.visualize:visualize_iter",
        check="dreamscope.recipes.visualize:check",
        inputs=(INIT,),
        output=Output(
            "picture",
            "where to write the picture, a sheet when there are several (default: named after the target)",
            _visualize_name,
            write="dreamscope.pages.sheets:pictures_sheet",
        ),
        help="grow a picture of what a class, channel or neuron responds to",
        description="Grow pictures from noise that maximize a class, a channel or a neuron.",
        form=Form(
            "From noise",
            "Visualize",
            "Grow a picture from noise: a class, a channel, or a layer's channels.",
            ("kind", "target", "grid", "samples", "size", "steps", "seed"),
        ),
    )
)

register(
    Recipe(
        "zoom",
        S.ZoomSettings,
        lower=("max_size", "tile"),
        run="dreamscope.recipes.zoom:zoom_iter",
        check="dreamscope.recipes.zoom:check",
        inputs=(
            Input(
                "input", required=True, help="picture to start from (not with --resume or --morph)", label="Photo", param="image"
            ),
            GUIDE,
        ),
        output=Output(
            "video",
            f"video to write: {VIDEO_OUTPUTS} (default: INPUT_zoom.mp4)",
            beside_input("_zoom.mp4"),
            keep_partial=True,
            resumable=True,
        ),
        help="endless zoom: dream, zoom in a little, dream again (MP4, GIF or PNG frames)",
        description="Feed a dream back into itself, zooming and turning a little each frame; or, with --morph, grow a picture "
        "from noise whose class glides from one to the next.",
        form=Form(
            "Zoom",
            "Make the zoom",
            "Dream, zoom in a little, dream again: an endless zoom video.",
            ("frames", "zoom", "rotate", "fps", "layer", "layers", "every", "octaves", "steps", "step_size", "seed"),
        ),
    )
)

register(
    Recipe(
        "morph",
        S.MorphSettings,
        lower=("size",),
        run="dreamscope.recipes.morph:morph_iter",
        check="dreamscope.recipes.morph:check",
        command="zoom",
        inputs=(replace(INIT, help="with --morph: start from this photo instead of noise"),),
        output=Output(
            "video",
            name=lambda settings, _inputs: f"morph_{safe_name(settings.classes.replace(',', '_'))}.mp4",
            keep_partial=True,
        ),
        form=Form(
            "Morph",
            "Morph",
            "A visualization that glides from class to class, one frame at a time.",
            ("classes", "frames", "size", "steps", "fps", "seed"),
        ),
    )
)

register(
    Recipe(
        "video",
        S.VideoSettings,
        lower=("max_size", "tile"),
        run="dreamscope.recipes.video:video_iter",
        check="dreamscope.recipes.video:check",
        inputs=(
            Input(
                "input",
                "video",
                required=True,
                help="video to dream (MP4, MOV, MKV, WebM, GIF, ...)",
                label="Video clip",
                param="frames",
            ),
            GUIDE,
        ),
        output=Output("video", f"where to write: {VIDEO_OUTPUTS} (default: INPUT_dream.mp4)", beside_input(_video_suffix)),
        help="dream a video, frame by frame, carried along the optical flow",
        description="Dream every frame of a video; each starts from the previous dream warped along the motion, so it doesn't flicker.",
        form=Form(
            "Video",
            "Dream the video",
            "Dream every frame of a clip, carried along the optical flow.",
            ("layer", "blend", "octaves", "steps", "frame_steps", "step_size", "seed"),
        ),
    )
)

register(
    Recipe(
        "live",
        S.LiveSettings,
        lower=("size",),
        run="dreamscope.recipes.live:live_iter",
        check="dreamscope.recipes.live:check",
        inputs=(
            Input(
                "input",
                "video",
                required=True,
                help="video to replay as a camera, at its own frame rate in real time (MP4, MOV, MKV, WebM, GIF, ...)",
                label="Video clip",
                param="frames",
            ),
        ),
        output=Output(
            "video",
            f"where to write what a viewer saw, at the clip's rate: {VIDEO_OUTPUTS} (default: INPUT_live.mp4)",
            beside_input("_live.mp4"),
        ),
        help="dream a camera live: here, a clip replayed as a camera in real time (the studio's Live tab uses yours)",
        description="Replay a clip as if it were a camera, in real time, through the live dreamer: frames that arrive "
        "while it is busy are dropped, never queued. Writes what a viewer would have seen and prints the frame rate "
        "shown and the latency.",
        made="replays",
    )
)

register(
    Recipe(
        "probe",
        S.ProbeSettings,
        lower=("max_size", "vis_size"),
        run="dreamscope.recipes.probe:probe_iter",
        check="dreamscope.recipes.probe:check",
        inputs=(Input("input", required=True, help="picture to probe", label="Photo", param="image"),),
        output=Output(
            "folder",
            "a folder for the HTML report (default: INPUT_probe/ beside the input), or a picture name (.png, .jpg) "
            "for just the contact sheet of the dreams",
            beside_input("_probe"),
            write="dreamscope.pages.probe:write",
            generator="dreamscope probe",
            sheet=Sheet(reset={"channels": 0}, refused=("exemplar_folder", "vis_size", "vis_steps", "exemplar_count")),
        ),
        batch=True,
        made="probe reports",
        help="report what each layer sees in a photo (HTML page or contact sheet)",
        description="Dream a photo at several layers, shallow to deep, with the channels that respond most strongly to it and the "
        "network's top classes: an HTML report or a contact sheet.",
        batch_help="a probe report for every picture: OUT/NAME/index.html",
        form=Form(
            "Probe",
            "Probe",
            "One report of what each layer sees in a photo, shallow to deep.",
            ("layers", "channels", "octaves", "steps", "max_size"),
        ),
    )
)

register(
    Recipe(
        "explain",
        S.ExplainSettings,
        lower=("size", "cell_size"),
        run="dreamscope.recipes.explain:explain_iter",
        check="dreamscope.recipes.explain:check",
        inputs=(Input("input", required=True, help="photo to explain", label="Photo", param="image"),),
        output=Output(
            "folder",
            "a folder for the interactive page and explain.json (default: INPUT_explain/ beside the input)",
            beside_input("_explain"),
            write="dreamscope.pages.explain:write",
            generator="dreamscope explain",
        ),
        batch=True,
        made="explanations",
        help="explain one photo: what a layer sees where, its neuron groups, and how each pushes the classes",
        description="Explain the network's answer for one photo at one layer: a picture of what every position of the layer's grid "
        "sees, its strongest channels, a factorization of the activations into neuron groups, and the attribution of "
        "each position and group to the top classes; an interactive page that opens from disk, and explain.json.",
        batch_help="an explanation for every picture: OUT/NAME/index.html",
        form=Form(
            "Explain",
            "Explain",
            "Why the network says what it says about your photo: what it sees where, in groups.",
            ("layer", "groups", "targets", "attribution", "steps", "seed"),
        ),
    )
)

register(
    Recipe(
        "exemplars",
        S.ExemplarsSettings,
        lower=("side", "vis_size"),
        run="dreamscope.recipes.exemplars:sheet_iter",
        check="dreamscope.recipes.exemplars:check",
        inputs=(
            Input(
                "folder",
                "folder",
                required=True,
                param="path",
                help="folder of pictures, searched recursively (PNG, JPEG, WebP, ...); files that cannot be read are skipped and named",
            ),
        ),
        output=Output(
            "picture",
            "the sheet to write, .png or another picture format (default: LAYER_INDEX-exemplars.png in the current folder)",
            lambda settings, _inputs: f"{safe_name(settings.units.replace(',', '_'))}-exemplars.png",
            write="dreamscope.pages.sheets:exemplar_sheet",
        ),
        help="the pictures of a folder that excite a channel most, beside its feature visualization",
        description="Find the patches of a folder's pictures that excite a channel most (natural exemplars, each from a different "
        "picture) and write them beside the channel's feature visualization as one sheet; a row per --channel.",
    )
)

register(
    Recipe(
        "atlas",
        S.AtlasSettings,
        lower=("side", "icon_size"),
        run="dreamscope.recipes.atlas:atlas_iter",
        check="dreamscope.recipes.atlas:check",
        job="dreamscope.work.atlas:atlas_job",
        engine=True,
        inputs=(
            Input("folder", "folder", help="folder of pictures, searched recursively"),
            Input(
                "collections",
                "collections",
                param="collection",
                help="the collection.npz of an earlier atlas, or the shards written with --shard",
            ),
        ),
        output=Output(
            "folder",
            "folder to write (default: NAME-atlas/ in the current folder, NAME-atlas-CLASS/ for a class); with "
            "--shard, the .npz file to write",
            "dreamscope.work.atlas:default_name",
            write="dreamscope.pages.atlas:write_atlas",
            generator="dreamscope atlas",
        ),
        help="an activation atlas: a zoomable map of what a layer sees over a folder of pictures",
        description="Collect a layer's activations from every picture of a folder, lay them out with UMAP, and draw each cell of the "
        "map by feature visualization, with the classes it pushes toward and the real patches that fell there: a picture "
        "and a page to explore.",
    )
)

register(
    Recipe(
        "patch",
        S.PatchSettings,
        lower=("side", "size"),
        run="dreamscope.recipes.patch:patch_iter",
        check="dreamscope.recipes.patch:check",
        job="dreamscope.work.patch:patch_job",
        inputs=(
            Input(
                "photos", "pictures", required=True, help="photos of the --from class, or folders of them (searched recursively)"
            ),
            Input(
                "icon",
                "patch",
                required=True,
                flag="--icon",
                metavar="CELL|IMAGE",
                what="patch picture",
                help="what to paste: a cell of an atlas as ATLAS_FOLDER:rRR-cCC (or ATLAS_FOLDER:ROW,COL), or a picture file",
            ),
            Input(
                "controls",
                "patches",
                flag="--control",
                metavar="CELL|IMAGE",
                what="patch picture",
                help="another patch to compare with, besides noise (repeatable; default for a cell of a comparison: its cell "
                "that pushes least toward either class, an unrelated icon)",
            ),
        ),
        output=Output(
            "folder",
            "a folder for result.json (every trial) and examples.png (one view with each patch)",
            write="dreamscope.pages.patch:write_patch",
        ),
        help="the patch experiment: does a feature pasted into photos of one class tip them into another?",
        description="Paste a feature's icon (a cell of an atlas comparison) or any picture into photos the network calls --from, and "
        "count how often its top class becomes --to, against a patch of noise of the same size and any --control "
        "pictures, at the same places.",
    )
)

register(
    Recipe(
        "microscope",
        S.MicroscopeSettings,
        lower=("size", "block"),
        run="dreamscope.work.microscope:microscope_iter",
        job="dreamscope.work.microscope:microscope_job",
        engine=True,
        output=Output(
            "folder",
            "folder for the site (index.html); an earlier microscope there is continued",
            required=True,
            write="dreamscope.pages.microscope:write_site",
            generator="dreamscope microscope",
        ),
        help="every channel of a network drawn, as a website: a page per layer and per channel",
        description="Draw every channel of the model's layers by feature visualization, with diverse samples, the classes each pushes "
        "toward and (with --exemplars) the real pictures that excite it most; write a static website that opens from disk. "
        "Resumable: run it again to finish.",
    )
)

register(
    Recipe(
        "classify",
        S.ClassifySettings,
        run="dreamscope.recipes.classify:classify_iter",
        check="dreamscope.recipes.classify:check",
        inputs=(Input("input", required=True, help="picture to classify", param="image"),),
        help="what the network thinks a picture shows",
        lower=("model",),  # one forward pass at the network's own resolution: only a smaller network needs less
    )
)
