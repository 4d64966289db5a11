"""Contact sheets: pictures in a grid with captions (a layer's channels, the probe's dreams, a patch experiment's
examples) and the exemplars sheet (a row per channel: its feature visualization, then its natural exemplars)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw

EXEMPLAR_TILE = (
    128  # px: the exemplars sheet shows the visualization and every patch at this side, whatever the layer's patch size
)
EXEMPLAR_GAP = 4
EXEMPLAR_CAPTION = 34  # two lines of 12 px text


def sheet_columns(count: int) -> int:
    """Columns for `count` pictures: as square as possible with every row full (8 -> 4x2, 12 -> 4x3), falling
    back to the squarest grid when no such layout is reasonable (7 -> 3 columns)."""
    best = max(1, round(count**0.5))
    for columns in sorted(range(1, count + 1), key=lambda c: abs(c - count**0.5)):
        if count % columns == 0 and columns >= count // columns and columns <= 2 * best:
            return columns
    return best


def contact_sheet(
    pictures: Sequence[Image.Image], columns: int | None = None, gap: int = 4, labels: Sequence[str] | None = None
) -> Image.Image:
    """Pictures in a grid, left to right, top to bottom, each with its label underneath when given."""
    columns = columns or sheet_columns(len(pictures))
    rows = -(-len(pictures) // columns)
    width, height = pictures[0].size
    caption = 18 if labels else 0
    cell = height + caption
    sheet = Image.new("RGB", (columns * width + (columns - 1) * gap, rows * cell + (rows - 1) * gap), "white")
    draw = ImageDraw.Draw(sheet)
    for i, picture in enumerate(pictures):
        left, top = (i % columns) * (width + gap), (i // columns) * (cell + gap)
        sheet.paste(picture, (left, top))
        if labels:
            draw.text((left + 4, top + height + 3), labels[i], fill=(40, 40, 40), font=font(12))
    return sheet


def font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow before 10.1: only the small bitmap font
        return ImageFont.load_default()


def pictures_sheet(pictures: Sequence[Image.Image]) -> Image.Image:
    """What a visualization job writes: its one picture, or a contact sheet of several, each captioned with its
    `info["label"]` where they differ (a layer's channels; samples of one class go uncaptioned)."""
    if len(pictures) == 1:
        return pictures[0]
    labels = [p.info.get("label", "") for p in pictures]
    return contact_sheet(pictures, labels=labels if len(set(labels)) > 1 else None)


def exemplar_sheet(result, visualizations: Sequence[Image.Image] | None = None, tile: int = EXEMPLAR_TILE) -> Image.Image:
    """A row per unit of an ExemplarsResult: its feature visualization (given, or the result's own, one per unit in
    order), then its exemplars, each captioned (the unit; each patch's file name and activation)."""
    visualizations = visualizations if visualizations is not None else getattr(result, "visualizations", None)
    columns = (1 if visualizations else 0) + max(len(found) for found in result.units.values())
    columns = max(columns, 1)
    cell = tile + EXEMPLAR_CAPTION
    width = columns * tile + (columns - 1) * EXEMPLAR_GAP
    canvas = Image.new("RGB", (width, len(result.units) * cell + (len(result.units) - 1) * EXEMPLAR_GAP), "white")
    draw = ImageDraw.Draw(canvas)
    for row, ((layer, index), found) in enumerate(result.units.items()):
        top = row * (cell + EXEMPLAR_GAP)
        tiles = [(visualizations[row], f"{layer}:{index}", "feature visualization")] if visualizations else []
        tiles += [(e.patch, Path(e.file).name, f"activation {e.activation:.3g}") for e in found]
        for column, (picture, title, detail) in enumerate(tiles):
            left = column * (tile + EXEMPLAR_GAP)
            canvas.paste(picture.resize((tile, tile), Image.LANCZOS), (left, top))
            draw.text((left + 2, top + tile + 3), _fit(draw, title, tile - 4), fill=(40, 40, 40), font=font(12))
            draw.text((left + 2, top + tile + 18), _fit(draw, detail, tile - 4), fill=(110, 110, 110), font=font(12))
    return canvas


def _fit(draw: ImageDraw.ImageDraw, text: str, width: int) -> str:
    """`text`, shortened in the middle until it fits `width` px (a file name keeps its ending). Three dots, not an
    ellipsis character: Pillow's fallback bitmap font has Latin-1 only."""
    if draw.textlength(text, font=font(12)) <= width:
        return text
    head, tail = text[: len(text) // 2], text[len(text) // 2 :]
    while (head or tail) and draw.textlength(f"{head}...{tail}", font=font(12)) > width:
        head, tail = (head[:-1], tail) if len(head) >= len(tail) else (head, tail[1:])
    return f"{head}...{tail}"
