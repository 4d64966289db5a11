"""Write an activation atlas (recipes/atlas.py) as a folder: the atlas picture, a zoomable page, the data.

    atlas.png          every cell's icon in its place (two panels for a comparison); carries the record
    index.html         the atlas to zoom (wheel, drag, +/-) and explore: hover or click a cell for its icon,
                       how many vectors fell there, the classes it pushes toward and its natural exemplars
    atlas.json         the same facts as data: cells, classes, exemplars' files and boxes, skipped pictures
    cells/*.png        each cell's icon (a comparison's separating cells are what `dreamscope patch` pastes)
    exemplars/*.jpg    the natural patches
    collection.npz     the collected vectors, to lay out again or draw class atlases without reading the folder

Like the probe report, the page loads nothing from the network (inline CSS and script, relative links), so it
opens from disk and survives copying; the folder is written under a temporary name and renamed when complete.
"""

from __future__ import annotations

import html
import json
import os
from pathlib import Path

from PIL import Image, ImageDraw

from ..errors import DreamscopeError
from ..io import files, images, provenance
from ..recipes.atlas import AtlasResult, Cell
from .output import check_page_folder, staged
from .sheets import font

GENERATOR = "dreamscope atlas"
BACKGROUND = (255, 255, 255)
TITLE_HEIGHT = 36
PANEL_GAP = 24
MIN_ALPHA = 0.08  # a class atlas's weakest cells stay faintly visible, so the map keeps its shape
SEPARATING_SHARE = 0.15  # a comparison outlines this share of its cells: those that favour one class most
CLASS_COLOURS = ((230, 120, 20), (30, 110, 220))  # the first class's outlines, the second's


def check_atlas_folder(path: str | os.PathLike) -> Path:
    return check_page_folder(path, GENERATOR)


def write_atlas(
    result: AtlasResult,
    folder: str | os.PathLike,
    *,
    command: str | None = None,
    source: str = "pictures",
    metadata: dict[str, str] | None = None,
) -> Path:
    """Write the atlas folder (replacing an earlier atlas there); returns its path. `metadata` goes into atlas.png
    (default: the result's own record)."""
    folder = check_atlas_folder(folder)
    try:
        with staged(folder) as staging:
            (staging / "cells").mkdir()
            (staging / "exemplars").mkdir()
            for cell in result.cells:
                images.save_image(cell.icon, staging / "cells" / f"{cell.name}.png")
                for number, exemplar in enumerate(cell.exemplars, start=1):
                    if exemplar.patch is not None:
                        images.save_image(exemplar.patch, staging / "exemplars" / f"{cell.name}-{number}.jpg")
            picture = draw(result)
            images.save_image(picture, staging / "atlas.png", metadata=metadata or {provenance.KEY: result.record.to_text()})
            data = facts(result, command)
            (staging / "atlas.json").write_text(json.dumps(data, indent=1, ensure_ascii=False), encoding="utf-8")
            (staging / "index.html").write_text(render_html(result, data, picture.size, source), encoding="utf-8")
            result.collection.save(staging / "collection.npz")
    except OSError as exc:
        raise files.write_error(folder, exc) from None
    return folder


# -- the picture ------------------------------------------------------------------------------------------------


def panels(result: AtlasResult) -> list[str | None]:
    """What each panel shows: one panel (None: all cells alike, or the class's strength), two for a comparison."""
    return list(result.classes) if len(result.classes) == 2 else [result.classes[0] if result.classes else None]


def draw(result: AtlasResult) -> Image.Image:
    """The atlas picture: icons in their cells on white; a class atlas fades weak cells, a comparison draws one
    panel per class and outlines the cells that favour that class over the other."""
    size, grid = result.settings.icon_size, result.settings.grid
    shown = panels(result)
    titled = TITLE_HEIGHT if result.classes else 0
    side = grid * size
    canvas = Image.new("RGB", (len(shown) * side + (len(shown) - 1) * PANEL_GAP, side + titled), BACKGROUND)
    pen = ImageDraw.Draw(canvas)
    top = max((abs(v) for c in result.cells for v in c.strength.values()), default=1.0) or 1.0
    favoured = _separating(result)
    for number, name in enumerate(shown):
        left = number * (side + PANEL_GAP)
        if name is not None:
            pen.text((left + 4, 8), name, fill=CLASS_COLOURS[number] if len(shown) == 2 else (30, 30, 30), font=font(20))
        for cell in result.cells:
            icon = cell.icon.resize((size, size), Image.LANCZOS) if cell.icon.size != (size, size) else cell.icon
            if name is not None:
                alpha = min(1.0, max(MIN_ALPHA, cell.strength[name] / top))
                icon = Image.blend(Image.new("RGB", icon.size, BACKGROUND), icon, alpha)
            x, y = left + cell.col * size, titled + cell.row * size
            canvas.paste(icon, (x, y))
            if favoured.get(cell.name) == name and len(shown) == 2:
                pen.rectangle((x, y, x + size - 1, y + size - 1), outline=CLASS_COLOURS[number], width=max(2, size // 24))
    return canvas


def _separating(result: AtlasResult) -> dict[str, str]:
    """A comparison's cells that favour one class most (by the difference of their attributions): name -> class."""
    if len(result.classes) != 2:
        return {}
    a, b = result.classes
    count = max(1, round(SEPARATING_SHARE * len(result.cells)))
    marked = {cell.name: a for cell in result.separating(a, count) if cell.strength[a] > cell.strength[b]}
    marked.update({cell.name: b for cell in result.separating(b, count) if cell.strength[b] > cell.strength[a]})
    return marked


# -- the data --------------------------------------------------------------------------------------------------


def facts(result: AtlasResult, command: str | None = None) -> dict:
    collection = result.collection
    separating = _separating(result)
    return {
        "kind": result.kind,
        "model": result.model,
        "layer": result.layer,
        "classes": result.classes,
        "settings": {k: v for k, v in result.settings.to_json().items() if k != "recipe"},
        "pictures": len(collection.files) - len(collection.skipped),
        "vectors": len(result.selected),
        "collected_vectors": len(collection),
        "grid": result.settings.grid,
        "icon_size": result.settings.icon_size,
        "skipped": [{"file": f, "why": why} for f, why in collection.skipped],
        "command": command,
        "dreamscope": result.record.dreamscope,
        "device": result.record.device,
        "cells": [_cell_facts(cell, separating.get(cell.name)) for cell in result.cells],
    }


def _cell_facts(cell: Cell, favours: str | None) -> dict:
    return {
        "name": cell.name,
        "row": cell.row,
        "col": cell.col,
        "count": cell.count,
        "icon": f"cells/{cell.name}.png",
        "top_classes": [{"class": name, "attribution": round(value, 5)} for name, value in cell.top_classes],
        "strength": {name: round(value, 5) for name, value in cell.strength.items()},
        "favours": favours,
        "exemplars": [
            {"file": e.file, "box": list(e.box), "patch": f"exemplars/{cell.name}-{n}.jpg" if e.patch is not None else None}
            for n, e in enumerate(cell.exemplars, start=1)
        ],
    }


# -- the page ---------------------------------------------------------------------------------------------------


def render_html(result: AtlasResult, data: dict, picture_size: tuple[int, int], source: str) -> str:
    e = html.escape
    grid, size = result.settings.grid, result.settings.icon_size
    titled = TITLE_HEIGHT if result.classes else 0
    width, height = picture_size
    overlays = []
    for number, _name in enumerate(panels(result)):
        left = number * (grid * size + PANEL_GAP)
        for index, cell in enumerate(result.cells):
            box = (
                100 * (left + cell.col * size) / width,
                100 * (titled + cell.row * size) / height,
                100 * size / width,
                100 * size / height,
            )
            overlays.append(
                f'<button class="cell" data-cell="{index}" data-panel="{number}" aria-label="cell {cell.name}" '
                f'style="left:{box[0]:.4f}%;top:{box[1]:.4f}%;width:{box[2]:.4f}%;height:{box[3]:.4f}%"></button>'
            )
    what = {
        "atlas": f"{len(result.selected):,} activation vectors of layer {e(result.layer)}",
        "class atlas": f"the {len(result.selected):,} activation vectors of layer {e(result.layer)} that push hardest toward "
        f"<em>{e(result.classes[0]) if result.classes else ''}</em>, faded where they push least",
        "comparison": f"the activation vectors of layer {e(result.layer)} that push hardest toward "
        + " or ".join(f"<em>{e(c)}</em>" for c in result.classes),
    }[result.kind]
    panels_note = (
        " Each panel fades the cells that push little toward its class and outlines those that favour it over the other."
        if result.kind == "comparison"
        else ""
    )
    skipped = data["skipped"]
    skipped_html = ""
    if skipped:
        items = "".join(f"<li><code>{e(s['file'])}</code>: {e(s['why'])}</li>" for s in skipped)
        skipped_html = f"<details><summary>{len(skipped)} file(s) skipped</summary><ul>{items}</ul></details>"
    command = f"<p>Made with:</p><pre><code>{e(data['command'])}</code></pre>" if data["command"] else ""
    title = f"Activation atlas of {result.model} {result.layer}" + (f": {', '.join(result.classes)}" if result.classes else "")
    cells_json = json.dumps(
        [{k: c[k] for k in ("name", "count", "icon", "top_classes", "strength", "favours", "exemplars")} for c in data["cells"]],
        ensure_ascii=False,
    ).replace("</", "<\\/")
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="{GENERATOR} {e(result.record.dreamscope)}">
<title>{e(title)}</title>
<style>{STYLE}</style>
</head>
<body>
<header>
<h1>{e(title)}</h1>
<p class="lede">A map of {what}, from {data["pictures"]:,} {e(source)} ({result.settings.positions} random positions each).
UMAP laid the vectors out so similar features sit together, and a {grid}&times;{grid} grid bins them; each icon is a
picture grown to point the layer's activations along its cell's mean.{panels_note} Scroll or use the buttons to zoom,
drag to move; hover or click a cell for the classes it pushes toward and the real patches that fell there.</p>
</header>
<main>
<div class="viewer">
<div class="tools"><button id="zoom-in" title="zoom in">+</button><button id="zoom-out" title="zoom out">&minus;</button><button id="fit" title="fit">fit</button><span id="zoom-level">100%</span></div>
<div class="viewport" id="viewport">
<div class="map" id="map" style="aspect-ratio:{width}/{height}">
<img src="atlas.png" alt="{e(title)}" draggable="false">
{chr(10).join(overlays)}
</div>
</div>
</div>
<aside id="details" aria-live="polite">
<p class="hint">Hover over a cell.</p>
</aside>
</main>
<section class="facts">
{skipped_html}
{command}
<p>Data: <a href="atlas.json">atlas.json</a> (every cell, its classes and exemplars), <a href="collection.npz">collection.npz</a> (the vectors).</p>
</section>
<footer>Made by dreamscope {e(result.record.dreamscope)}. Everything here was computed locally; this page loads nothing from the network.</footer>
<script type="application/json" id="cells">{cells_json}</script>
<script>{SCRIPT}</script>
</body>
</html>
"""


STYLE = """
:root { color-scheme: light; --ink: #1d1f24; --muted: #5b6170; --line: #dde1e8; --accent: #e67814; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--ink); background: #fafbfc; }
header, .facts, footer { padding: 0 24px; max-width: 1400px; }
h1 { font-size: 24px; margin: 18px 0 4px; }
.lede { color: var(--muted); max-width: 70em; margin: 0 0 12px; }
main { display: flex; gap: 16px; padding: 0 24px; align-items: flex-start; }
.viewer { flex: 1 1 auto; min-width: 0; }
.tools { display: flex; gap: 6px; align-items: center; margin-bottom: 6px; }
.tools button { min-width: 34px; height: 30px; border: 1px solid var(--line); background: white; border-radius: 6px; cursor: pointer; font-size: 16px; }
#zoom-level { color: var(--muted); font-size: 13px; margin-left: 6px; }
.viewport { position: relative; overflow: hidden; height: 78vh; border: 1px solid var(--line); background: white; border-radius: 8px; cursor: grab; touch-action: none; }
.viewport.dragging { cursor: grabbing; }
.map { position: absolute; left: 0; top: 0; transform-origin: 0 0; }
.map img { display: block; width: 100%; height: 100%; image-rendering: auto; user-select: none; }
.cell { position: absolute; padding: 0; margin: 0; border: 0; background: transparent; cursor: pointer; }
.cell:hover, .cell.active { outline: 2px solid var(--accent); outline-offset: -2px; }
aside { flex: 0 0 340px; width: 340px; min-width: 0; position: sticky; top: 12px; background: white; border: 1px solid var(--line); border-radius: 8px; padding: 14px; min-height: 200px; }
aside .icon { width: 100%; max-width: 312px; image-rendering: auto; border-radius: 4px; display: block; }
aside h2 { font-size: 17px; margin: 8px 0 2px; }
aside .count { color: var(--muted); margin: 0 0 8px; }
aside ol { padding-left: 22px; margin: 4px 0 10px; }
aside li span { color: var(--muted); font-size: 13px; margin-left: 6px; }
.exemplars { display: grid; grid-template-columns: repeat(3, minmax(0, 1fr)); gap: 6px; }
.exemplars figure { margin: 0; min-width: 0; }
.exemplars img { width: 100%; display: block; border-radius: 3px; }
.exemplars figcaption { font-size: 11px; color: var(--muted); overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.hint { color: var(--muted); }
.facts { margin-top: 16px; }
pre { background: #f1f3f6; padding: 8px 10px; border-radius: 6px; overflow-x: auto; }
footer { color: var(--muted); font-size: 13px; margin: 24px 0; }
@media (max-width: 900px) { main { flex-direction: column; } aside { position: static; width: 100%; flex-basis: auto; } }
"""

# Zoom about the cursor with the wheel or the buttons, pan by dragging; a cell shows its details on hover and
# keeps them on click. No library: the page must work from disk with no network.
SCRIPT = r"""
(function () {
  const cells = JSON.parse(document.getElementById('cells').textContent);
  const viewport = document.getElementById('viewport'), map = document.getElementById('map');
  const details = document.getElementById('details'), level = document.getElementById('zoom-level');
  let scale = 1, x = 0, y = 0, fitScale = 1, pinned = null, drag = null;
  const ratio = () => { const r = map.style.aspectRatio.split('/'); return Number(r[0]) / Number(r[1]); };
  function apply() { map.style.transform = `translate(${x}px, ${y}px) scale(${scale})`; level.textContent = Math.round(scale / fitScale * 100) + '%'; }
  function fit() {
    const w = viewport.clientWidth, h = viewport.clientHeight, r = ratio();
    const width = Math.min(w, h * r);
    map.style.width = width + 'px'; map.style.height = width / r + 'px';
    scale = fitScale = 1; x = (w - width) / 2; y = (h - width / r) / 2; apply();
  }
  function zoom(factor, cx, cy) {
    const next = Math.min(40, Math.max(0.5, scale * factor));
    x = cx - (cx - x) * next / scale; y = cy - (cy - y) * next / scale; scale = next; apply();
  }
  viewport.addEventListener('wheel', (ev) => {
    ev.preventDefault();
    const box = viewport.getBoundingClientRect();
    zoom(Math.exp(-ev.deltaY * 0.0015), ev.clientX - box.left, ev.clientY - box.top);
  }, { passive: false });
  viewport.addEventListener('pointerdown', (ev) => { drag = { x: ev.clientX, y: ev.clientY, moved: false }; });
  window.addEventListener('pointermove', (ev) => {
    if (!drag) return;
    const dx = ev.clientX - drag.x, dy = ev.clientY - drag.y;
    if (!drag.moved && Math.abs(dx) + Math.abs(dy) < 4) return;
    drag.moved = true; viewport.classList.add('dragging');
    x += dx; y += dy; drag.x = ev.clientX; drag.y = ev.clientY; apply();
  });
  window.addEventListener('pointerup', () => { if (drag && drag.moved) viewport.dataset.justDragged = '1'; drag = null; viewport.classList.remove('dragging'); });
  const centre = () => [viewport.clientWidth / 2, viewport.clientHeight / 2];
  document.getElementById('zoom-in').onclick = () => zoom(1.5, ...centre());
  document.getElementById('zoom-out').onclick = () => zoom(1 / 1.5, ...centre());
  document.getElementById('fit').onclick = fit;
  new ResizeObserver(fit).observe(viewport);

  function text(tag, value, cls) { const el = document.createElement(tag); el.textContent = value; if (cls) el.className = cls; return el; }
  function show(index) {
    const cell = cells[index];
    details.replaceChildren();
    const icon = document.createElement('img'); icon.className = 'icon'; icon.src = cell.icon; icon.alt = 'icon of cell ' + cell.name;
    details.append(icon, text('h2', 'Cell ' + cell.name), text('p', cell.count + ' activation vector' + (cell.count === 1 ? '' : 's') + ' fell here', 'count'));
    const strength = Object.entries(cell.strength);
    if (strength.length) {
      details.append(text('h3', 'Pushes toward the class' + (strength.length > 1 ? 'es' : '')));
      const list = document.createElement('ul');
      for (const [name, value] of strength) list.append(text('li', name + ': ' + value.toFixed(4)));
      details.append(list);
      if (cell.favours) details.append(text('p', 'Favours ' + cell.favours + ' over the other class.', 'count'));
    }
    if (cell.top_classes.length) {
      details.append(text('h3', 'Classes it pushes toward most'));
      const list = document.createElement('ol');
      for (const c of cell.top_classes) { const li = text('li', c.class); li.append(text('span', c.attribution.toFixed(4))); list.append(li); }
      details.append(list);
    }
    if (cell.exemplars.length) {
      details.append(text('h3', 'Natural exemplars'));
      const grid = document.createElement('div'); grid.className = 'exemplars';
      for (const ex of cell.exemplars) {
        const fig = document.createElement('figure');
        if (ex.patch) { const img = document.createElement('img'); img.src = ex.patch; img.alt = ex.file; fig.append(img); }
        fig.append(text('figcaption', ex.file.split('/').pop()));
        fig.title = ex.file; grid.append(fig);
      }
      details.append(grid);
    }
  }
  for (const button of map.querySelectorAll('.cell')) {
    const index = Number(button.dataset.cell);
    button.addEventListener('mouseenter', () => { if (pinned === null) show(index); });
    button.addEventListener('focus', () => show(index));
    button.addEventListener('click', (ev) => {
      if (viewport.dataset.justDragged) { delete viewport.dataset.justDragged; return; }
      for (const b of map.querySelectorAll('.cell.active')) b.classList.remove('active');
      pinned = pinned === index ? null : index;
      if (pinned !== null) { button.classList.add('active'); show(index); }
    });
  }
  fit();
})();
"""


# -- reading an atlas back -------------------------------------------------------------------------------------


def read_facts(folder: str | os.PathLike) -> dict:
    """The atlas.json of an atlas folder, or a clear error."""
    path = Path(folder) / "atlas.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DreamscopeError(f"{folder} holds no atlas (no atlas.json): give the folder dreamscope atlas wrote") from None
    except (OSError, ValueError) as exc:
        raise DreamscopeError(f"cannot read {path} ({exc}); make the atlas again") from None


def cell_icon(folder: str | os.PathLike, cell: str) -> tuple[dict, Image.Image]:
    """A cell of an atlas folder by name ("r03-c05") or "ROW,COL": its facts and its icon."""
    data = read_facts(folder)
    name = cell.strip()
    if "," in name:
        try:
            row, col = (int(part) for part in name.split(","))
        except ValueError:
            raise DreamscopeError(f"a cell is rRR-cCC or ROW,COL, got {cell!r}") from None
        name = f"r{row:02d}-c{col:02d}"
    found = next((c for c in data["cells"] if c["name"] == name), None)
    if found is None:
        names = ", ".join(c["name"] for c in data["cells"][:6])
        raise DreamscopeError(
            f"atlas {folder} has no cell {cell!r} (empty or outside its grid); its cells are named like {names}, ..."
        )
    return found, images.load_image(Path(folder) / found["icon"], "icon")


def unrelated(folder: str | os.PathLike, *classes: str) -> str | None:
    """The name of a class atlas's or comparison's cell that pushes least toward any of `classes` (a control for
    the patch experiment: an icon like the others, of a feature the classes do not lean on); None for a plain atlas."""
    cells = [c for c in read_facts(folder)["cells"] if all(name in c["strength"] for name in classes)]
    if not cells:
        return None
    return min(cells, key=lambda c: max(c["strength"][name] for name in classes))["name"]
