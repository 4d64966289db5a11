"""README.md stays true to the code: its option tables are made from the settings themselves."""

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
    text = option_tables.README.read_text(encoding="utf-8")
    assert text.count("<!-- options:") == len(option_tables.TABLES)
    assert option_tables.render(text) == text, "run: .venv/bin/python docs/option_tables.py"
