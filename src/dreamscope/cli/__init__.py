"""The command line: parsing (`parser`, built from the recipe catalogue), what each command does with its flags
(`commands`), progress display (`progress`) and exit codes (`main`)."""

from ..work.flags import command_line, flag_of
from .main import main
from .parser import build_parser

__all__ = ["build_parser", "command_line", "flag_of", "main"]
