"""The version of dreamscope: one place, read by the package, the command line, records and the studio."""

__version__ = "0.2.0"
