"""README.md stays true to the code: its option tables are made from the recipe catalogue and the settings themselves,
one for every recipe that has options of its own."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_option_tables_are_current():
    sys.path.insert(0, str(ROOT / "docs"))
    try:
        import option_tables
    finally:
        sys.path.remove(str(ROOT / "docs"))
    import re

    from dreamscope.work import catalogue

    text = option_tables.README.read_text(encoding="utf-8")
    assert set(re.findall(r"<!-- options:(\w+) -->", text)) == set(catalogue.RECIPES) - {"classify"}  # classify: --top alone
    assert option_tables.render(text) == text, "run: .venv/bin/python docs/option_tables.py"
