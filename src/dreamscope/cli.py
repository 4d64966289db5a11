"""The `dreamscope` command: parses arguments, calls a recipe, shows progress bars, maps errors to exit codes.

No tensor code here: every command is a thin call into the library with the library's own defaults.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

from . import __version__, images, videos
from .errors import DreamscopeError, UsageError
from .recipes import dream as dream_recipe
from .recipes import probe as probe_recipe
from .recipes import video as video_recipe
from .recipes import visualize as visualize_recipe
from .recipes import zoom as zoom_recipe

EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # what shells report for a program stopped by SIGPIPE
SAMPLES = ("astronaut", "chelsea", "coffee", "rocket")


class _Parser(argparse.ArgumentParser):
    """argparse, but a mistake is one `error:` line on stderr (no usage block), exit code 2."""

    def error(self, message: str):
        raise UsageError(f"{message} (see: {self.prog} --help)")


def _number(kind, minimum=None, what="a number", strict=False):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got '{text}'") from None
        if kind is float and value != value or value in (float("inf"), float("-inf")):
            raise argparse.ArgumentTypeError(f"expected {what}, got '{text}'")
        if minimum is not None and (value <= minimum if strict else value < minimum):
            raise argparse.ArgumentTypeError(f"expected {what}, got '{text}'")
        return value

    return parse


positive_int = _number(int, 1, "a whole number of at least 1")
non_negative_int = _number(int, 0, "a whole number, 0 or more")
positive_float = _number(float, 0.0, "a positive number", strict=True)
scale_float = _number(float, 1.0, "a number of at least 1.0")


def tile_setting(text: str):
    if text.lower() in ("auto", "off"):
        return {"auto": "auto", "off": None}[text.lower()]
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 64:
        raise argparse.ArgumentTypeError(f"expected auto, off or a tile size of at least 64 px, got '{text}'")
    return value


def _add_model(parser):
    from .models import DEFAULT_MODEL

    parser.add_argument("--model", default=DEFAULT_MODEL,
                        help=f"network to use (default {DEFAULT_MODEL}; see: dreamscope models), or your own as package.module:factory")
    parser.add_argument("--weights", metavar="FILE",
                        help="weights to use instead of the model's own: a .caffemodel or state dict for googlenet, a state dict otherwise")


def _model(args, device: str | None = None):
    """The network a command's --model, --weights (and --device) name, loaded once per process."""
    from .models import load_model

    return load_model(args.model, device or getattr(args, "device", "auto"), weights=getattr(args, "weights", None))


def _add_dream_options(parser, octaves: int, steps: int, layer: bool = True) -> None:
    """The options every dreaming command shares (dream, zoom, video), with the command's own defaults."""
    if layer:
        parser.add_argument("--layer", action="append", metavar="NAME[=WEIGHT]",
                            help="layer(s) to amplify; repeat or comma-separate to mix, e.g. stage4.2,stage6.0=0.5 (default: the model's)")
    parser.add_argument("--channels", metavar="SPEC", help="only some channels: 3,17 or strongest:10 or weakest:10")
    parser.add_argument("--guide", metavar="IMAGE", help="guide picture: pull the dream toward its features")
    parser.add_argument("--octaves", type=positive_int, default=octaves, help="pyramid levels (default %(default)s)")
    parser.add_argument("--octave-scale", type=scale_float, default=dream_recipe.OCTAVE_SCALE, help="size ratio between levels (default %(default)s)")
    parser.add_argument("--steps", type=positive_int, default=steps, help="ascent steps per octave (default %(default)s)")
    parser.add_argument("--step-size", type=positive_float, default=dream_recipe.STEP_SIZE, help="step as a fraction of the colour range (default %(default)s)")
    parser.add_argument("--jitter", type=non_negative_int, default=dream_recipe.JITTER, help="random shift in pixels each step (default %(default)s)")
    parser.add_argument("--tile", type=tile_setting, default=dream_recipe.TILE, metavar="auto|off|PX",
                        help="process big pictures in tiles to bound memory; auto: 384 px tiles above 1 megapixel (default)")
    parser.add_argument("--seed", type=non_negative_int, default=dream_recipe.SEED, help="random seed; same seed, same picture (default %(default)s)")


def _add_run_options(parser, device: bool = True) -> None:
    """--device and -q, which every command that runs a network shares."""
    if device:
        parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default auto)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def _bar(args, **options):
    """A progress bar on stderr; None for `disable` means off when stderr is not a terminal (logs, pipes)."""
    from tqdm import tqdm  # imported on first use, like the recipes: `dreamscope --help` stays quick

    return tqdm(disable=True if args.quiet else None, file=sys.stderr, leave=False, **options)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="dreamscope", description="Look inside image networks by making them dream.")
    parser.add_argument("--version", action="version", version=f"dreamscope {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    d = commands.add_parser("dream", help="DeepDream a photo", description="Amplify what a layer sees in a photo.")
    d.add_argument("input", help="picture to dream (PNG, JPEG, WebP, ...)")
    d.add_argument("-o", "--output", help="where to write the dream (default: INPUT_dream.png beside the input)")
    _add_model(d)
    _add_dream_options(d, dream_recipe.OCTAVES, dream_recipe.STEPS)
    d.add_argument("--max-size", type=positive_int, help="downscale the input so its longest side is at most this many pixels")
    _add_run_options(d)
    d.set_defaults(run=_cmd_dream)

    v = commands.add_parser("visualize", help="grow a picture of what a class, channel or neuron responds to",
                            description="Grow pictures from noise that maximize a class, a channel or a neuron.")
    target = v.add_mutually_exclusive_group(required=True)
    target.add_argument("--class", dest="class_name", metavar="NAME", help="ImageNet class name or index, e.g. banana")
    target.add_argument("--channel", metavar="LAYER:INDEX", help="one channel of a layer, e.g. stage5.2:17")
    target.add_argument("--neuron", metavar="LAYER:INDEX", help="the centre unit of a channel")
    target.add_argument("--channels", metavar="LAYER", help="contact sheet of a layer's first --grid channels")
    v.add_argument("-o", "--output", required=True, help="where to write the picture (a sheet when there are several)")
    _add_model(v)
    v.add_argument("--grid", type=positive_int, default=16, help="how many channels for --channels (default %(default)s)")
    v.add_argument("--samples", type=positive_int, default=1, help="how many different pictures (default %(default)s)")
    v.add_argument("--diversity", type=_number(float, 0.0, "a number, 0 or more"), default=0.0,
                   help="reward samples for differing in style (try 1; default %(default)s)")
    v.add_argument("--size", type=positive_int, default=visualize_recipe.SIZE, help="picture side in pixels (default %(default)s)")
    v.add_argument("--steps", type=positive_int, default=visualize_recipe.STEPS, help="optimization steps (default %(default)s)")
    v.add_argument("--learning-rate", type=positive_float, default=visualize_recipe.LEARNING_RATE, help="Adam step (default %(default)s)")
    v.add_argument("--init", metavar="IMAGE", help="start from this photo instead of noise")
    v.add_argument("--no-priors", action="store_true",
                   help="plain pixels and no transforms: shows the adversarial noise the priors prevent")
    v.add_argument("--seed", type=non_negative_int, default=visualize_recipe.SEED, help="random seed (default %(default)s)")
    _add_run_options(v)
    v.set_defaults(run=_cmd_visualize)

    pr = commands.add_parser("probe", help="report what each layer sees in a photo (HTML page or contact sheet)",
                             description="Dream a photo at several layers, shallow to deep, with the channels that respond "
                                         "most strongly to it and the network's top classes: an HTML report or a contact sheet.")
    pr.add_argument("input", help="picture to probe")
    pr.add_argument("-o", "--output", help="a folder for the HTML report (default: INPUT_probe/ beside the input), "
                                           "or a picture name (.png, .jpg) for just the contact sheet of the dreams")
    _add_model(pr)
    pr.add_argument("--layers", metavar="A,B,...", help="layers to probe (default: the last layer of each stage, at most "
                                                       f"{probe_recipe.LAYER_COUNT}; see: dreamscope layers)")
    pr.add_argument("--channels", type=_number(int, 0, "a whole number from 0 to 64"), default=probe_recipe.CHANNELS,
                    help="strongest channels shown per layer, 0 for none (default %(default)s)")
    pr.add_argument("--octaves", type=positive_int, default=dream_recipe.OCTAVES, help="pyramid levels of each dream (default %(default)s)")
    pr.add_argument("--steps", type=positive_int, default=dream_recipe.STEPS, help="ascent steps per octave (default %(default)s)")
    pr.add_argument("--max-size", type=positive_int, default=probe_recipe.MAX_SIZE,
                    help="downscale the input so its longest side is at most this many pixels (default %(default)s)")
    pr.add_argument("--vis-size", type=positive_int, default=probe_recipe.VIS_SIZE, help="side of the channels' pictures (default %(default)s)")
    pr.add_argument("--vis-steps", type=positive_int, default=probe_recipe.VIS_STEPS, help="optimization steps of the channels' pictures (default %(default)s)")
    pr.add_argument("--seed", type=non_negative_int, default=dream_recipe.SEED, help="random seed (default %(default)s)")
    _add_run_options(pr)
    pr.set_defaults(run=_cmd_probe)

    z = commands.add_parser("zoom", help="endless zoom: dream, zoom in a little, dream again (MP4, GIF or PNG frames)",
                            description="Feed a dream back into itself, zooming and turning a little each frame.")
    z.add_argument("input", nargs="?", help="picture to start from (not needed with --resume or --morph)")
    z.add_argument("-o", "--output", help=f"video to write: {videos.SUFFIXES}")
    _add_model(z)
    _add_dream_options(z, zoom_recipe.OCTAVES, zoom_recipe.STEPS, layer=False)
    cycle = z.add_mutually_exclusive_group()
    cycle.add_argument("--layer", action="append", metavar="NAME[=WEIGHT]", help="layer(s) to amplify, as for dream")
    cycle.add_argument("--layers", metavar="A,B,C", help="cycle through these layers, switching every --every frames")
    cycle.add_argument("--morph", metavar="CLASS,CLASS", help="instead of zooming a photo, morph from class to class, grown from noise")
    z.add_argument("--every", type=positive_int, help="frames per layer with --layers (default: an equal share each)")
    z.add_argument("--frames", type=positive_int, default=zoom_recipe.FRAMES, help="frames in the result (default %(default)s)")
    z.add_argument("--zoom", type=_number(float, 0.5, "a zoom factor from 0.5 to 2"), help=f"zoom each frame (default {zoom_recipe.ZOOM})")
    z.add_argument("--rotate", type=_number(float, None, "an angle in degrees"), help=f"degrees to turn each frame (default {zoom_recipe.ROTATE})")
    z.add_argument("--fps", type=positive_float, default=zoom_recipe.FPS, help="frames per second of the video (default %(default)s)")
    z.add_argument("--resume", metavar="VIDEO", help="continue this earlier (or interrupted) zoom up to --frames frames, same options")
    z.add_argument("--size", type=positive_int, default=visualize_recipe.SIZE, help="picture side with --morph (default %(default)s)")
    z.add_argument("--max-size", type=positive_int, help="downscale the input so its longest side is at most this many pixels")
    _add_run_options(z)
    z.set_defaults(run=_cmd_zoom)

    vid = commands.add_parser("video", help="dream a video, frame by frame, carried along the optical flow",
                              description="Dream every frame of a video; each starts from the previous dream warped along the motion, so it doesn't flicker.")
    vid.add_argument("input", help="video to dream (MP4, MOV, MKV, WebM, GIF, ...)")
    vid.add_argument("-o", "--output", required=True, help=f"where to write: {videos.SUFFIXES}")
    _add_model(vid)
    _add_dream_options(vid, video_recipe.OCTAVES, video_recipe.STEPS)
    vid.add_argument("--frame-steps", type=positive_int, default=video_recipe.FRAME_STEPS,
                     help="ascent steps per octave for frames after the first, which start from the carried dream (default %(default)s)")
    vid.add_argument("--blend", type=_number(float, 0.0, "a number from 0 to below 1"), default=video_recipe.BLEND,
                     help="share of the previous dream carried into each frame; 0 dreams frames on their own (default %(default)s)")
    _add_run_options(vid)
    vid.set_defaults(run=_cmd_video)

    lay = commands.add_parser("layers", help="list a model's dreamable layers")
    _add_model(lay)
    lay.add_argument("--json", action="store_true", help="machine-readable output")
    lay.set_defaults(run=_cmd_layers)

    mod = commands.add_parser("models", help="list registered models and whether their weights are present")
    mod.add_argument("--json", action="store_true", help="machine-readable output")
    mod.add_argument("--download", metavar="NAME", help="fetch a model's weights into the cache folder (e.g. googlenet)")
    mod.add_argument("--url", help="with --download: fetch from this address instead (default: $DREAMSCOPE_<MODEL>_URL or the known one)")
    mod.add_argument("--sha256", metavar="HEX", help="with --download: the SHA-256 the file must have (replaces the known digest)")
    _add_run_options(mod, device=False)
    mod.set_defaults(run=_cmd_models)

    cls = commands.add_parser("classify", help="what the network thinks a picture shows")
    cls.add_argument("input", help="picture to classify")
    _add_model(cls)
    cls.add_argument("--top", type=positive_int, default=5, help="how many classes (default %(default)s)")
    cls.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default auto)")
    cls.add_argument("--json", action="store_true", help="machine-readable output")
    cls.set_defaults(run=_cmd_classify)

    smp = commands.add_parser("sample", help="write one of scikit-image's sample photos, to try things on")
    smp.add_argument("name", choices=SAMPLES, help="which photo")
    smp.add_argument("output", help="where to write it (.png, .jpg, ...)")
    smp.set_defaults(run=_cmd_sample)
    return parser


def _cmd_dream(args) -> int:
    source = Path(args.input)
    output = Path(args.output) if args.output else source.with_name(f"{source.stem}_dream.png")
    photo = images.load_image(source)  # a missing input is reported as such, not as a missing output folder
    guide = images.load_image(args.guide, what="guide image") if args.guide else None
    images.check_output_path(output)  # fail before any work, never after it
    events = dream_recipe.dream_iter(
        photo, model=_model(args), layer=args.layer, channels=args.channels, octaves=args.octaves,
        octave_scale=args.octave_scale, steps=args.steps, step_size=args.step_size, jitter=args.jitter,
        guide=guide, max_size=args.max_size, seed=args.seed, tile_size=args.tile,
    )
    bar = _bar(args, total=args.octaves * args.steps, desc="dreaming", unit="step")
    last = None
    with bar:
        for last in events:
            if not last.done:
                bar.set_postfix_str(f"octave {last.octave}/{last.octaves} {last.tensor.shape[-1]}x{last.tensor.shape[-2]} loss {last.loss:.3g}")
                bar.update(1)
    images.save_image(last.image, output)
    print(f"wrote {output}", file=sys.stderr)
    return 0


def _cmd_visualize(args) -> int:
    init = images.load_image(args.init, what="init image") if args.init else None
    images.check_output_path(args.output)
    model = _model(args)
    samples = args.samples
    if args.class_name is not None:
        target = args.class_name
    elif args.channels is not None:
        target = visualize_recipe.channel_sheet(model, args.channels, args.grid)
        samples = min(args.grid, model.layer(args.channels).channels)
    else:
        target = visualize_recipe.unit(model, args.channel or args.neuron, "neuron" if args.neuron else "channel")
    events = visualize_recipe.visualize_iter(
        target, model=model, size=args.size, samples=samples, diversity=args.diversity, steps=args.steps,
        learning_rate=args.learning_rate, init=init, seed=args.seed,
        param="pixels" if args.no_priors else "fft", robust=not args.no_priors,
    )
    last = None
    with _bar(args, total=args.steps, desc="visualizing", unit="step") as bar:
        for last in events:
            bar.set_postfix_str(f"objective {last.loss:.3g}")
            bar.update(1)
    pictures = [images.to_pil(last.tensor[i : i + 1]) for i in range(last.tensor.shape[0])]
    result = pictures[0] if len(pictures) == 1 else visualize_recipe.contact_sheet(pictures)
    images.save_image(result, args.output)
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


def _cmd_probe(args) -> int:
    from . import report

    source = Path(args.input)
    output = Path(args.output) if args.output else source.with_name(f"{source.stem}_probe")
    sheet_only = output.suffix.lower() in images.OUTPUT_FORMATS
    photo = images.load_image(source)
    if output.suffix.lower() in (".html", ".htm"):
        raise DreamscopeError(f"the report is a folder, not a file: give -o {output.with_suffix('')}/ (it holds index.html), "
                              "or a .png name for just the contact sheet")
    if sheet_only:
        images.check_output_path(output)
    else:
        report.check_report_folder(output)  # fail before any work, never after it
    events = probe_recipe.probe_iter(
        photo, model=_model(args), layers=args.layers, channels=0 if sheet_only else args.channels, octaves=args.octaves,
        steps=args.steps, max_size=args.max_size, vis_size=args.vis_size, vis_steps=args.vis_steps, seed=args.seed,
    )
    last = None
    with _bar(args, desc="probing", unit="step") as bar:
        for last in events:
            bar.total = last.total
            bar.set_postfix_str(f"{last.layer} ({last.layer_number}/{last.layers}) {last.stage}", refresh=False)
            bar.update(last.done - bar.n)
    result = last.result
    if sheet_only:
        report.write_sheet(result, output)
        print(f"wrote {output}", file=sys.stderr)
        return 0
    command = shlex.join([
        "dreamscope", "probe", args.input, "-o", args.output or f"{output}/", "--model", args.model,
        *(["--weights", args.weights] if getattr(args, "weights", None) else []),
        "--layers", ",".join(result.settings["layers"]), "--channels", str(args.channels), "--octaves", str(args.octaves),
        "--steps", str(args.steps), "--max-size", str(args.max_size), "--vis-size", str(args.vis_size),
        "--vis-steps", str(args.vis_steps), "--seed", str(args.seed),
    ])
    report.write_report(result, output, source=source.name, command=command)
    print(f"wrote {output / 'index.html'}", file=sys.stderr)
    return 0


def _cmd_zoom(args) -> int:
    if args.resume and args.output and Path(args.output) != Path(args.resume):
        raise UsageError("--resume continues its video in place; leave out -o (or give the same path)")
    output = args.resume or args.output
    if not output:
        raise UsageError("give the video to write with -o (e.g. -o zoom.mp4), or --resume VIDEO")
    if args.morph and (args.input or args.resume or args.zoom is not None or args.rotate is not None):
        raise UsageError("--morph grows pictures from noise: it takes no input picture, --resume, --zoom or --rotate")
    if not (args.morph or args.resume or args.input):
        raise UsageError("give a picture to start from, --resume VIDEO or --morph CLASS,CLASS")
    if args.every and not args.layers:
        raise UsageError("--every goes with --layers")
    photo = images.load_image(args.input) if args.input else None
    guide = images.load_image(args.guide, what="guide image") if args.guide else None
    videos.check_output(output, resume=bool(args.resume))
    model = _model(args)
    writer = videos.FrameWriter(output, args.fps, keep_partial=True, resume=bool(args.resume))
    bar = _bar(args, total=args.frames, desc="zooming", unit="frame")
    try:
        with writer, bar:
            if args.morph:
                from .recipes import morph as morph_recipe

                frames = morph_recipe.morph_iter(args.morph, frames=args.frames, model=model, size=args.size, seed=args.seed)
            else:
                if writer.existing >= args.frames:
                    raise DreamscopeError(f"{output} already has {writer.existing} frames; ask for more with --frames")
                frames = zoom_recipe.zoom_iter(
                    writer.last if args.resume else photo, frames=args.frames,
                    zoom=zoom_recipe.ZOOM if args.zoom is None else args.zoom,
                    rotate=zoom_recipe.ROTATE if args.rotate is None else args.rotate, model=model, layer=args.layer,
                    layers=args.layers, every=args.every, channels=args.channels, octaves=args.octaves,
                    octave_scale=args.octave_scale, steps=args.steps, step_size=args.step_size, jitter=args.jitter,
                    guide=guide, max_size=args.max_size, seed=args.seed, tile_size=args.tile,
                    start=writer.existing, first=writer.first if args.resume else None,
                )
            bar.update(writer.existing)
            for frame in frames:
                writer.write(frame.image)
                bar.set_postfix_str(frame.layer, refresh=False)
                bar.update(1)
    except KeyboardInterrupt:
        if writer.partial:
            print(f"error: interrupted; wrote the {writer.count} frames done to {output}; "
                  f"finish it with: dreamscope zoom --resume {output} --frames {args.frames} (and the same options)", file=sys.stderr)
            return EXIT_INTERRUPTED
        raise
    print(f"wrote {output} ({writer.count} frames)", file=sys.stderr)
    return 0


def _cmd_video(args) -> int:
    info = videos.open_video(args.input)  # decodes it all once: a damaged clip fails now, not hours later
    guide = images.load_image(args.guide, what="guide image") if args.guide else None
    kind = videos.output_kind(args.output)
    videos.check_output(args.output)
    keep_audio = info.audio is not None and kind == "video"
    frames = video_recipe.video_iter(
        videos.read_frames(info.path), count=info.frames, blend=args.blend, model=_model(args), layer=args.layer,
        channels=args.channels, octaves=args.octaves, octave_scale=args.octave_scale, steps=args.steps,
        frame_steps=args.frame_steps, step_size=args.step_size, jitter=args.jitter, guide=guide, seed=args.seed,
        tile_size=args.tile,
    )
    with videos.FrameWriter(args.output, info.fps, audio_from=info.path if keep_audio else None) as writer, \
            _bar(args, total=info.frames, desc="dreaming video", unit="frame") as bar:
        for frame in frames:
            writer.write(frame.image)
            bar.update(1)
    if info.audio is not None and not keep_audio:
        print(f"note: the sound ({info.audio}) was dropped: {'a GIF' if kind == 'gif' else 'a folder of PNG frames'} cannot carry it", file=sys.stderr)
    print(f"wrote {args.output} ({writer.count} frames, {info.width}x{info.height}, {float(info.fps):g} fps"
          f"{', with sound' if keep_audio else ''})", file=sys.stderr)
    return 0


def _cmd_layers(args) -> int:
    from .models import list_layers

    listing = list_layers(args.model, weights=args.weights)  # the structure alone: no weights needed
    rows = [
        {"name": info.name, "channels": info.channels, "stride": info.stride, "default": info.name == listing.default_layer}
        for info in listing.layers.values()
    ]
    refused = [{"name": name, "dreamable": False, "reason": reason} for name, reason in listing.not_dreamable.items()]
    if args.json:
        print(json.dumps(rows + refused, indent=2))
    else:
        width = max([12, *(len(row["name"]) + 2 for row in rows)])
        print(f"{'layer':<{width}}{'channels':>9}{'stride':>8}")
        for row in rows:
            print(f"{row['name']:<{width}}{row['channels']:>9}{row['stride']:>8}{'  (default)' if row['default'] else ''}")
        if refused:
            print("\nnot dreamable:")
            for row in refused:
                print(f"{row['name']:<{width}}{row['reason']}")
    return 0


def _download(args) -> int:
    from .models.download import fetch_weights

    with _bar(args, desc=f"downloading {args.download}", unit="B", unit_scale=True, unit_divisor=1024) as bar:
        def progress(done: int, total: int | None) -> None:
            if bar.total != total:  # known from the server's first answer
                bar.total = total
                bar.refresh()
            bar.update(done - bar.n)

        fetched = fetch_weights(args.download, url=args.url, sha256=args.sha256, progress=progress)
    state = "already present" if fetched.already_present else "wrote"
    print(f"{state} {fetched.path} ({fetched.size / 2**20:.1f} MiB, SHA-256 {fetched.sha256})", file=sys.stderr)
    return 0


def _cmd_models(args) -> int:
    from .models import DEFAULT_MODEL, REGISTRY

    if args.download:
        return _download(args)
    if args.url or args.sha256:
        raise UsageError("--url and --sha256 go with --download NAME (see: dreamscope models --help)")
    rows = [
        {"name": spec.name, "weights_present": spec.weights.present(), "how_to_get": spec.weights.how_to_get(),
         "description": spec.description, "default": spec.name == DEFAULT_MODEL}
        for spec in REGISTRY.values()
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for row in rows:
            state = "weights present" if row["weights_present"] else f"weights missing: {row['how_to_get']}"
            print(f"{row['name']:<20}{row['description']:<38}{state}{'  (default)' if row['default'] else ''}")
    return 0


def _cmd_classify(args) -> int:
    from .recipes.classify import classify

    predictions = classify(images.load_image(args.input), model=_model(args), top=args.top)
    if args.json:
        print(json.dumps([{"index": p.index, "label": p.label, "probability": p.probability} for p in predictions], indent=2))
    else:
        for p in predictions:
            print(f"{p.probability:7.2%}  {p.label} ({p.index})")
    return 0


def _cmd_sample(args) -> int:
    images.check_output_path(args.output)
    try:
        from skimage import data
    except ImportError:
        raise DreamscopeError("sample photos come from scikit-image; run: pip install scikit-image") from None
    from PIL import Image

    images.save_image(Image.fromarray(getattr(data, args.name)()), args.output)
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        code = args.run(args)
        sys.stdout.flush()  # a closed pipe surfaces here, not as a traceback at exit
        return code
    except DreamscopeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:  # the reader stopped early (`dreamscope layers | head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        print("error: interrupted; nothing was written", file=sys.stderr)
        return EXIT_INTERRUPTED
    except MemoryError:
        print("error: out of memory; try a smaller --tile or --max-size", file=sys.stderr)
        return 1
    except RuntimeError as exc:
        if "out of memory" in str(exc).lower():
            print("error: out of memory; try a smaller --tile or --max-size, or --device cpu", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
