"""The `dreamscope` command: parses arguments, calls a recipe, shows progress bars, maps errors to exit codes.

No tensor code here: every command is a thin call into the library with the library's own defaults.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from . import __version__, images
from .errors import DreamscopeError, UsageError
from .recipes import dream as dream_recipe
from .recipes import visualize as visualize_recipe

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

    parser.add_argument("--model", default=DEFAULT_MODEL, help=f"network to use (default {DEFAULT_MODEL}; see: dreamscope models)")


def _model(args, device: str | None = None):
    """The network a command's --model (and --device) name, loaded once per process."""
    from .models import load_model

    return load_model(args.model, device or getattr(args, "device", "auto"))


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="dreamscope", description="Look inside image networks by making them dream.")
    parser.add_argument("--version", action="version", version=f"dreamscope {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    d = commands.add_parser("dream", help="DeepDream a photo", description="Amplify what a layer sees in a photo.")
    d.add_argument("input", help="picture to dream (PNG, JPEG, WebP, ...)")
    d.add_argument("-o", "--output", help="where to write the dream (default: INPUT_dream.png beside the input)")
    _add_model(d)
    d.add_argument("--layer", action="append", metavar="NAME[=WEIGHT]",
                   help="layer(s) to amplify; repeat or comma-separate to mix, e.g. stage4.2,stage6.0=0.5 (default: the model's)")
    d.add_argument("--channels", metavar="SPEC", help="only some channels: 3,17 or strongest:10 or weakest:10")
    d.add_argument("--guide", metavar="IMAGE", help="guide picture: pull the dream toward its features")
    d.add_argument("--octaves", type=positive_int, default=dream_recipe.OCTAVES, help="pyramid levels (default %(default)s)")
    d.add_argument("--octave-scale", type=scale_float, default=dream_recipe.OCTAVE_SCALE, help="size ratio between levels (default %(default)s)")
    d.add_argument("--steps", type=positive_int, default=dream_recipe.STEPS, help="ascent steps per octave (default %(default)s)")
    d.add_argument("--step-size", type=positive_float, default=dream_recipe.STEP_SIZE, help="step as a fraction of the colour range (default %(default)s)")
    d.add_argument("--jitter", type=non_negative_int, default=dream_recipe.JITTER, help="random shift in pixels each step (default %(default)s)")
    d.add_argument("--max-size", type=positive_int, help="downscale the input so its longest side is at most this many pixels")
    d.add_argument("--tile", type=tile_setting, default=dream_recipe.TILE, metavar="auto|off|PX",
                   help="process big pictures in tiles to bound memory; auto: 384 px tiles above 1 megapixel (default)")
    d.add_argument("--seed", type=non_negative_int, default=dream_recipe.SEED, help="random seed; same seed, same picture (default %(default)s)")
    d.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default auto)")
    d.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
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
    v.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default auto)")
    v.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    v.set_defaults(run=_cmd_visualize)

    lay = commands.add_parser("layers", help="list a model's dreamable layers")
    _add_model(lay)
    lay.add_argument("--json", action="store_true", help="machine-readable output")
    lay.set_defaults(run=_cmd_layers)

    mod = commands.add_parser("models", help="list registered models and whether their weights are present")
    mod.add_argument("--json", action="store_true", help="machine-readable output")
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
    from tqdm import tqdm

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
    bar = tqdm(total=args.octaves * args.steps, desc="dreaming", unit="step", disable=True if args.quiet else None, file=sys.stderr, leave=False)  # None: off when not a terminal
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
    from tqdm import tqdm

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
    with tqdm(total=args.steps, desc="visualizing", unit="step", disable=True if args.quiet else None, file=sys.stderr, leave=False) as bar:
        for last in events:
            bar.set_postfix_str(f"objective {last.loss:.3g}")
            bar.update(1)
    pictures = [images.to_pil(last.tensor[i : i + 1]) for i in range(last.tensor.shape[0])]
    result = pictures[0] if len(pictures) == 1 else visualize_recipe.contact_sheet(pictures)
    images.save_image(result, args.output)
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


def _cmd_layers(args) -> int:
    model = _model(args, "cpu")
    rows = [
        {"name": info.name, "channels": info.channels, "stride": info.stride, "default": info.name == model.spec.default_layer}
        for info in model.layers.values()
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(f"{'layer':<12}{'channels':>9}{'stride':>8}")
        for row in rows:
            print(f"{row['name']:<12}{row['channels']:>9}{row['stride']:>8}{'  (default)' if row['default'] else ''}")
    return 0


def _cmd_models(args) -> int:
    from .models import DEFAULT_MODEL, REGISTRY

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
