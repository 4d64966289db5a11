"""The patch experiment's result as files: result.json (every trial, and each patch's flip rate) and examples.png
(the first trial's view with each patch pasted, captioned)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..io import files, images
from ..recipes.patch import PatchResult
from .sheets import contact_sheet


def write_patch(result: PatchResult, folder: str | os.PathLike, **_) -> Path:
    """Write result.json and examples.png into `folder` (made if missing)."""
    folder = Path(folder)
    folder.mkdir(exist_ok=True)
    data = {
        "from": result.from_label,
        "to": result.to_label,
        "settings": result.settings.to_json(),
        "views_tried": result.views,
        "rates": result.table(),
        "skipped": [{"file": f, "why": w} for f, w in result.skipped],
        "trials": [
            {
                "file": t.file,
                "view": t.view,
                "box": list(t.box),
                "before": round(t.before, 4),
                "after": {k: {"top": top, "p_to": round(p, 4)} for k, (top, p) in t.after.items()},
            }
            for t in result.trials
        ],
    }
    files.write_file(folder / "result.json", lambda handle: handle.write(json.dumps(data, indent=1, ensure_ascii=False).encode()))
    names = list(result.examples)
    sheet = contact_sheet([result.examples[n] for n in names], columns=len(names), labels=[result.label(n) for n in names])
    images.save_image(sheet, folder / "examples.png")
    return folder
