"""The command line: parsing (`parser`, built from the recipe catalogue), what each command does with its flags
(`commands`), progress display (`progress`) and exit codes (`main`)."""

from ..work.flags import command_line, flag_of
from .main import main
from .parser import build_parser

__all__ = ["build_parser", "command_line", "flag_of", "main"]


# Names that lived in cli.py before it became this package (0.2): where each went.
_MOVED = {
    "EXIT_INTERRUPTED": "dreamscope.cli.main",
    "EXIT_BROKEN_PIPE": "dreamscope.cli.main",
    "SAMPLES": "dreamscope.cli.parser",
    "FLAGS": "dreamscope.work.flags",
    "RECIPE_FLAGS": "dreamscope.work.flags",
    "EXTRA_HELP": "dreamscope.work.flags",
    "VIDEO_OUTPUTS": "dreamscope.work.catalogue",
}
_GONE = {
    "ATLAS_FLAGS": "the atlas's flags are in dreamscope.work.flags.FLAGS",
    "PATCH_FLAGS": "the patch experiment's flags are in dreamscope.work.flags.FLAGS",
    "TARGET_FLAGS": "visualize's target flags are dreamscope.work.flags.CHOICES['visualize']",
}


def __getattr__(name: str):
    if name in _MOVED:
        import importlib
        import warnings

        warnings.warn(f"{__name__}.{name} moved to {_MOVED[name]}.{name}", DeprecationWarning, stacklevel=2)
        return getattr(importlib.import_module(_MOVED[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}" + (f": {_GONE[name]}" if name in _GONE else ""))
