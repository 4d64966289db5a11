"""Write an explanation (recipes/explain.py) as a folder: one page, its pictures and explain.json.

index.html is self-contained (inline CSS and script, no network) and opens from disk; its data is embedded as
JSON because a page opened from disk may not fetch() its neighbours. explain.json holds the same facts plus the
provenance record, which groups.png carries too. The folder is written under a temporary name beside the
destination and renamed into place when complete: a failure leaves nothing behind.
"""

from __future__ import annotations

import colorsys
import html
import json
import math
import os
from pathlib import Path

import numpy as np
from PIL import Image

from ..io import images, provenance
from ..recipes.explain import GROUP_CHANNELS, ExplainResult, Factorization
from .output import check_page_folder, staged
from .probe import STYLE as PROBE_STYLE

GENERATOR = "dreamscope explain"  # marks index.html as ours: only a folder holding one of our pages is replaced
PALETTE = [(240, 160, 75), (75, 179, 240), (126, 217, 87), (232, 88, 138), (185, 140, 242), (242, 214, 75), (75, 224, 200)]
ZOOM = 240  # px: the most a cell is shown at in the side panel
FIT_HEIGHT = 520  # px: the tallest a photo is shown (a portrait one is narrowed to fit)
FAINT = 0.05  # flow below this share of the largest is not drawn (it would only clutter)
TINT = 0.85  # how far a group's colour covers the greyed photo in groups.png where the group is strongest
ATTRIBUTION_WORDS = {"gradient": "activation &times; gradient", "integrated": "integrated gradients from a zero activation"}


def check_explain_folder(path: str | os.PathLike) -> Path:
    """Refuse, before any work, a folder that cannot be written or must not be replaced."""
    return check_page_folder(path, GENERATOR)


def write(
    result: ExplainResult,
    output: str | os.PathLike,
    *,
    metadata: dict[str, str] | None = None,
    source: str = "photo",
    command: str | None = None,
) -> Path:
    """Write index.html, explain.json and the pictures into `output` (replacing an earlier explanation there).

    `metadata` (the provenance record) goes into groups.png and explain.json; `source` names the photo in the page;
    `command` is a command line that reproduces it."""
    folder = check_explain_folder(output)
    metadata = dict(metadata) if metadata else {provenance.KEY: result.record.to_text()}
    with staged(folder) as staging:
        for relative, picture in pictures(result).items():
            (staging / relative).parent.mkdir(exist_ok=True)
            images.save_image(picture, staging / relative)
        images.save_image(group_map(result), staging / "groups.png", metadata=metadata)
        data = page_data(result)
        facts = {**data, "record": json.loads(metadata[provenance.KEY])}
        (staging / "explain.json").write_text(json.dumps(facts, indent=1) + "\n", encoding="utf-8")
        # The script is a file of its own: the studio frames the page under a policy that runs no inline script.
        (staging / "explain.js").write_text(SCRIPT, encoding="utf-8")
        (staging / "index.html").write_text(render_html(result, data, source, command), encoding="utf-8")
    return folder


# -- pictures --------------------------------------------------------------------------------------------------


def _rgb(k: int) -> tuple[int, int, int]:
    """Group k's colour: the palette, then hues a golden angle apart."""
    if k < len(PALETTE):
        return PALETTE[k]
    return tuple(round(255 * v) for v in colorsys.hls_to_rgb((k * 0.618034 + 0.3) % 1.0, 0.72 - 0.14 * (k % 2), 0.75))


def colour(k: int) -> str:
    return "#{:02x}{:02x}{:02x}".format(*_rgb(k))


def grid_picture(result: ExplainResult) -> Image.Image:
    """Every cell's picture in place: rows x cols cells of cell_size px."""
    rows, cols = result.grid
    side = result.settings.cell_size
    sheet = Image.new("RGB", (cols * side, rows * side))
    for i, cell in enumerate(result.cells):
        picture = cell if cell.size == (side, side) else cell.resize((side, side), Image.LANCZOS)
        sheet.paste(picture.convert("RGB"), ((i % cols) * side, (i // cols) * side))
    return sheet


def group_map(result: ExplainResult) -> Image.Image:
    """The photo greyed, each position tinted by its groups: colours blended by each group's spatial weight (each
    map scaled to its own maximum, smoothly upsampled), the tint as strong as the strongest group there."""
    width, height = result.photo.size
    rows, cols = result.grid
    full = (cols * result.stride, rows * result.stride)  # the grid covers the photo, its last cells past the edge
    maps = []
    for group in result.groups:
        spatial = group.spatial.astype(np.float32) / max(float(group.spatial.max()), 1e-12)
        big = Image.fromarray(spatial, mode="F").resize(full, Image.BILINEAR)
        maps.append(np.clip(np.asarray(big)[:height, :width], 0, 1))
    weights = np.stack(maps)  # (groups, height, width)
    colours = np.array([_rgb(k) for k in range(len(maps))], dtype=np.float64)
    mixed = np.einsum("khw,kc->hwc", weights, colours) / np.maximum(weights.sum(0), 1e-12)[..., None]
    strength = TINT * weights.max(0)[..., None]
    grey = np.asarray(result.photo.convert("L"), dtype=np.float64)[..., None] * 0.6 + 20
    return Image.fromarray(np.clip(grey * (1 - strength) + mixed * strength, 0, 255).round().astype(np.uint8))


def pictures(result: ExplainResult) -> dict[str, Image.Image]:
    """Every picture of the folder but groups.png, by its relative path (the page and explain.json name these)."""
    found = {"photo.png": result.photo, "grid.png": grid_picture(result)}
    for prefix, groups in (("groups", result.groups), ("lower", result.lower.groups if result.lower else [])):
        found.update({f"{prefix}/{k + 1}.png": g.picture for k, g in enumerate(groups) if g.picture is not None})
    found.update({f"channels/{c}.png": picture for c, picture in sorted(result.channel_pictures.items())})
    return found


# -- facts -----------------------------------------------------------------------------------------------------


def _num(value) -> float | None:
    """A float to 5 significant digits; None for None and for what JSON cannot hold."""
    return float(f"{float(value):.5g}") if value is not None and math.isfinite(value) else None


def _nested(array) -> list:
    return [_nested(a) if isinstance(a, list) else _num(a) for a in (array.tolist() if hasattr(array, "tolist") else array)]


def _factorization(factorization: Factorization, prefix: str) -> dict:
    """Its error, positive share and groups, each group's picture under `prefix`/."""
    groups = [
        {
            "spatial": _nested(g.spatial),
            "channels": _nested(g.channels),
            "share": _num(g.share),
            "attribution": {name: _num(v) for name, v in g.attribution.items()},
            "picture": f"{prefix}/{k + 1}.png" if g.picture is not None else None,
            "colour": colour(k),
        }
        for k, g in enumerate(factorization.groups)
    ]
    return {"reconstruction_error": _num(factorization.error), "positive_share": _num(factorization.positive), "groups": groups}


def page_data(result: ExplainResult) -> dict:
    """explain.json less its record: everything the page shows (embedded in it) and scripts read."""
    top = result.top_channels
    rows, cols = result.grid
    values = [[[result.activations[r, c, int(ch)] for ch in top[r, c]] for c in range(cols)] for r in range(rows)]
    lower = result.lower
    return {
        "format": 1,
        "model": result.model,
        "layer": result.layer,
        "stride": result.stride,
        "grid": [rows, cols],
        "photo": "photo.png",
        "photo_size": list(result.photo.size),
        "attribution": result.attribution_kind,
        "classes": [t.name for t in result.targets],
        "targets": [
            {"name": t.name, "kind": t.kind, "index": t.index, "layer": t.layer}
            | {"score": _num(t.score), "probability": _num(t.probability)}
            for t in result.targets
        ],
        **_factorization(result.factorization, "groups"),
        "cells": {
            "picture": "grid.png",
            "cell_size": result.settings.cell_size,
            "zoom": min(3 * result.settings.cell_size, ZOOM),  # px: a cell's side in the side panel
            "top_channels": top.astype(int).tolist(),
            "top_values": _nested(values),
            "attribution": {name: _nested(a) for name, a in result.cell_attribution.items()},
        },
        "channels": {str(c): f"channels/{c}.png" for c in sorted(result.channel_pictures)},
        "channel_source": result.channel_source,
        "lower": None if lower is None else {"layer": lower.layer, "grid": list(lower.grid), **_factorization(lower, "lower")},
        "flow": None if result.flow is None else _nested(result.flow),
        "totals": {name: _num(v) for name, v in result.total_attribution.items()},
        "notes": list(result.notes),
    }


# -- the page --------------------------------------------------------------------------------------------------


def _bar(value: float | None, largest: float) -> str:
    """A signed bar: from the middle, right (red) for a push toward, left (blue) for a push away."""
    width = 0.0 if not value else min(50.0, 50 * abs(value) / max(largest, 1e-12))
    return f'<span class="sbar"><span class="{"neg" if (value or 0) < 0 else "pos"}" style="width:{width:.1f}%"></span></span>'


def _attributions(values: dict[str, float | None], largest: dict[str, float]) -> str:
    e = html.escape
    return "".join(
        f'<li><span class="name">{e(name)}</span><span class="num">{_fmt(v)}</span>{_bar(v, largest[name])}</li>'
        for name, v in values.items()
    )


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3g}"


def _heat(spatial: list, k: int) -> str:
    """A group's spatial map as a small grid of cells in its colour."""
    r, g, b = _rgb(k)
    top = max((v or 0 for row in spatial for v in row), default=0) or 1.0
    cells = "".join(f'<i style="background:rgba({r},{g},{b},{(v or 0) / top:.3f})"></i>' for row in spatial for v in row)
    return f'<div class="heat" style="grid-template-columns:repeat({len(spatial[0])},1fr)">{cells}</div>'


def _group_cards(data: dict) -> str:
    e = html.escape
    groups = data["groups"]
    largest = {t: max((abs(g["attribution"].get(t) or 0) for g in groups), default=0) for t in data["classes"]}
    cards = []
    for k, group in enumerate(groups):
        weights = group["channels"]
        order = sorted(range(len(weights)), key=lambda c: -abs(weights[c] or 0))[:GROUP_CHANNELS]
        channels = "".join(f"<li>{_channel_img(data, c)}<span>channel <b>{c}</b> {_fmt(weights[c])}</span></li>" for c in order)
        picture = f'<img src="{e(group["picture"])}" alt="group {k + 1}">' if group["picture"] else ""
        cards.append(
            f'<article class="group" style="--colour:{group["colour"]}"><h3><span class="swatch"></span>group {k + 1}'
            f' <span>{100 * (group["share"] or 0):.0f}% of the activation</span></h3><div class="pair">{picture}'
            f'{_heat(group["spatial"], k)}</div><h4>strongest channels (weight)</h4><ul class="chans">{channels}</ul>'
            f'<h4>attribution</h4><ul class="attr">{_attributions(group["attribution"], largest)}</ul></article>'
        )
    return "\n".join(cards)


def _channel_img(data: dict, channel: int) -> str:
    path = data["channels"].get(str(channel))
    missing = '<span class="none" title="not drawn"></span>'
    return f'<img src="{path}" alt="channel {channel}" width="40" height="40">' if path else missing


def _flow(data: dict) -> str:
    """The lower layer's groups (left) feeding this layer's (right): line width in proportion to positive flow."""
    lower, flow = data["lower"], data["flow"]
    if lower is None or flow is None:
        return ""
    e = html.escape
    side, gap, width = 64, 16, 560
    count = max(len(lower["groups"]), len(data["groups"]))
    height = count * (side + gap) + 24
    top = max((v or 0 for row in flow for v in row), default=0) or 1.0

    def y(k: int, n: int) -> float:
        return 24 + (height - 24 - n * (side + gap)) / 2 + k * (side + gap) + side / 2

    parts = [f'<text x="0" y="14">{e(lower["layer"])}</text><text x="{width}" y="14" text-anchor="end">{e(data["layer"])}</text>']
    for j, row in enumerate(flow):
        for k, value in enumerate(row):
            y1, y2, value = y(j, len(flow)), y(k, len(row)), value or 0
            if value > FAINT * top:
                style = f'stroke="{colour(k)}" stroke-width="{1 + 11 * value / top:.2f}" stroke-opacity="0.75"'
            elif value < -FAINT * top:
                style = 'stroke="#6c8fd6" stroke-width="1" stroke-dasharray="4 4"'
            else:
                continue
            parts.append(
                f'<line x1="{side + 6}" y1="{y1:.1f}" x2="{width - side - 6}" y2="{y2:.1f}" {style}>'
                f"<title>lower group {j + 1} to group {k + 1}: {_fmt(value)}</title></line>"
            )
    for column, (groups, x) in enumerate(((lower["groups"], 0), (data["groups"], width - side))):
        for k, group in enumerate(groups):
            top_y = y(k, len(groups)) - side / 2
            if group["picture"]:
                parts.append(f'<image href="{e(group["picture"])}" x="{x}" y="{top_y:.1f}" width="{side}" height="{side}"/>')
            stroke = colour(k) if column else "#9aa1ad"
            parts.append(
                f'<rect x="{x}" y="{top_y:.1f}" width="{side}" height="{side}" fill="none" stroke="{stroke}" stroke-width="2"/>'
            )
    return (
        f'<section class="card" id="flow"><h2>Flow <span>{e(lower["layer"])} &rarr; {e(data["layer"])}</span></h2>'
        f'<p class="lede">How much each group of {e(lower["layer"])} feeds each group of {e(data["layer"])}: the lower '
        "group&rsquo;s part of the activation times the gradient of the upper group&rsquo;s strength. Line width is "
        "in proportion to the flow; a dashed line is a group that weakens another.</p>"
        f'<svg class="flow" viewBox="-2 0 {width + 4} {height}" role="img" aria-label="flow between groups">'
        f"{''.join(parts)}</svg></section>"
    )


def _target(target, result: ExplainResult, data: dict) -> str:
    """A target's line: its name, probability (a class), score and total attribution, and a bar: its probability,
    or its score against the largest."""
    chance = "" if target.probability is None else f"{target.probability:.1%} &middot; "
    size = (lambda t: t.probability) if target.probability is not None else (lambda t: abs(t.score))
    share = size(target) / (max(size(t) or 0 for t in result.targets) or 1.0)
    kind = "logit" if target.kind == "class" else "value"
    return (
        f'<li><span class="label">{html.escape(target.name)}</span><span class="prob">{chance}{kind} {target.score:.3g}'
        f" &middot; attribution at {html.escape(result.layer)} {_fmt(data['totals'].get(target.name))}</span>"
        f'<span class="bar"><span style="width:{max(0.5, 100 * share):.1f}%"></span></span></li>'
    )


def render_html(result: ExplainResult, data: dict, source: str = "photo", command: str | None = None) -> str:
    e = html.escape
    version = result.record.dreamscope
    rows, cols = result.grid
    width, height = result.photo.size
    top = result.targets[0]
    targets = "\n".join(_target(t, result, data) for t in result.targets)
    options = "".join(f'<option value="{e(t)}">attribution to {e(t)}</option>' for t in data["classes"])
    cells = "".join(
        f'<div class="cell" data-row="{r}" data-col="{c}" tabindex="0" role="button" aria-label="row {r}, column {c}"></div>'
        for r in range(rows)
        for c in range(cols)
    )
    box = f"width:{100 * cols * result.stride / width:.4f}%;height:{100 * rows * result.stride / height:.4f}%"
    zoom = data["cells"]["zoom"]
    count = len(result.groups)
    signed = (
        f" Only {100 * result.factorization.positive:.0f}% of this layer&rsquo;s activation energy is positive: its "
        "activations are signed, so the groups factorize the positive and negative parts together, and a negative "
        "channel weight means the group lowers that channel."
        if result.factorization.positive < 0.9
        else ""
    )
    legend = "".join(f'<li style="--colour:{colour(k)}"><span class="swatch"></span>group {k + 1}</li>' for k in range(count))
    notes = "".join(f"<li>{e(n)}</li>" for n in result.notes)
    settings = {k: v for k, v in result.settings.to_json().items() if k != "recipe"}
    table = "\n".join(f"<tr><th>{e(k)}</th><td>{e('none' if v is None else str(v))}</td></tr>" for k, v in settings.items())
    reproduce = f"<p>Reproduce it with:</p>\n<pre><code>{e(command)}</code></pre>" if command else ""
    embedded = json.dumps(data).replace("</", "<\\/")
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="{GENERATOR} {e(version)}">
<title>{e(f"Why {result.model} calls {source} “{top.name}”")}</title>
<style>{PROBE_STYLE}{STYLE}</style>
</head>
<body>
<header>
<h1>Why <em>{e(result.model)}</em> calls <em>{e(source)}</em> “<em>{e(top.name)}</em>”</h1>
<p class="lede">What layer {e(result.layer)} finds at each position of the photo, the groups its channels form, and
how much each pushes the network&rsquo;s answer. Attribution here is {ATTRIBUTION_WORDS.get(result.attribution_kind, e(result.attribution_kind))}:
positive (red) pushes toward a class, negative (blue) away from it.</p>
</header>
<main style="--fit:{min(640, round(FIT_HEIGHT * width / height))}px">
<section class="overview">
<figure class="photo"><img src="photo.png" width="{width}" height="{height}" alt="{e(source)}"><figcaption>{e(source)}, {width}&times;{height} px as the network saw it</figcaption></figure>
<div class="classes">
<h2>What it is explained toward</h2>
<ol>
{targets}
</ol>
<p class="note">Layer <b>{e(result.layer)}</b>, stride {result.stride} px: a grid of {rows} &times; {cols} positions.
All facts: <a href="explain.json">explain.json</a>.</p>
</div>
</section>
<section class="card" id="grid">
<h2>Activation grid <span>what {e(result.layer)} sees at each position</span></h2>
<p class="lede">Each cell is a picture grown to produce that position&rsquo;s activation. Hover over, tap or tab to a
cell to see its strongest channels and how much it pushes each class (rows and columns count from 0 at the top
left, as in explain.json).</p>
<div class="controls"><label>opacity <input id="opacity" type="range" min="0" max="100" value="85"></label>
<label>show <select id="mode"><option value="">the activations&rsquo; pictures</option>{options}</select></label></div>
<div class="explore">
<div class="stage"><img src="photo.png" alt="the photo under the grid">
<div class="over" style="{box}"><img id="grid-img" src="grid.png" alt="the activation grid">
<canvas id="attr-canvas" width="{cols}" height="{rows}"></canvas>
<div class="cells" style="grid-template-columns:repeat({cols},1fr);grid-template-rows:repeat({rows},1fr)">{cells}</div></div></div>
<aside id="cell-panel" aria-live="polite"><div class="zoom" style="width:{zoom}px;height:{zoom}px;background-size:{cols * zoom}px {rows * zoom}px"></div>
<h3 class="where"></h3><h4>strongest channels (activation)</h4><div class="dict"></div>
<h4>attribution</h4><ul class="attr"></ul></aside>
</div>
</section>
<section class="card" id="groups">
<h2>Neuron groups <span>{count} groups of {e(result.layer)}&rsquo;s channels</span></h2>
<p class="lede">The layer&rsquo;s activations factorized into {count} groups of channels that fire together: where each
group is in the photo, what it looks for, and how much it pushes each class. The {count} groups reconstruct the
activation with {100 * result.factorization.error:.0f}% relative error.{signed}</p>
<div class="groupmap"><img src="groups.png" width="{width}" height="{height}" alt="the photo coloured by its groups"><ul class="legend">{legend}</ul></div>
<div class="groups">
{_group_cards(data)}
</div>
</section>
{_flow(data)}
<section class="card" id="settings">
<h2>Notes and settings</h2>
{f"<ul>{notes}</ul>" if notes else ""}<p class="note">The channels&rsquo; pictures: {e(result.channel_source)}.</p>
{reproduce}
<table>
{table}
</table>
</section>
</main>
<footer>Made by dreamscope {e(version)}. Everything here was computed locally; this page loads nothing from the network.</footer>
<script type="application/json" id="data">{embedded}</script>
<script src="explain.js"></script>
</body>
</html>
"""


STYLE = """
.card { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 20px; margin: 20px 0; }
.controls { display: flex; flex-wrap: wrap; gap: 8px 24px; margin-bottom: 12px; color: var(--muted); font-size: 14px; }
select { background: var(--bg); color: var(--text); border: 1px solid var(--line); border-radius: 4px; }
.explore { display: flex; flex-wrap: wrap; gap: 24px; align-items: flex-start; }
.overview { grid-template-columns: minmax(0, var(--fit)) minmax(0, 1fr); }
.stage { position: relative; overflow: hidden; flex: 1 1 280px; max-width: var(--fit); border-radius: 6px; }
.stage img { border-radius: 0; } .over { position: absolute; left: 0; top: 0; }
.over img, .over canvas, .cells { position: absolute; inset: 0; width: 100%; height: 100%; }
.over canvas { image-rendering: pixelated; opacity: 0; } .cells { display: grid; } .cell { cursor: pointer; outline: none; }
.cell:hover, .cell:focus-visible, .cell.on { box-shadow: inset 0 0 0 2px var(--accent); }
#cell-panel { flex: 1 1 220px; min-width: 0; max-width: 440px; position: sticky; top: 12px; }
#cell-panel .zoom { background-image: url(grid.png); background-repeat: no-repeat; border-radius: 6px; }
h4 { margin: 12px 0 6px; font-size: 13px; color: var(--muted); font-weight: 500; }
.dict { display: flex; flex-wrap: wrap; gap: 10px; } .dict figure { width: 96px; } .dict figcaption { margin-top: 2px; }
ul.attr, ul.chans, ul.legend { list-style: none; margin: 0; padding: 0; }
.attr li { display: grid; grid-template-columns: minmax(0, 1fr) auto 90px; gap: 10px; align-items: center; font-size: 13px; }
.attr .name { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.num { font-variant-numeric: tabular-nums; color: var(--muted); text-align: right; }
.sbar { position: relative; height: 8px; background: var(--line); border-radius: 4px; }
.sbar::after { content: ""; position: absolute; left: 50%; top: -2px; bottom: -2px; width: 1px; background: var(--muted); }
.sbar span { position: absolute; top: 0; bottom: 0; } .sbar .pos { left: 50%; background: #e5533d; border-radius: 0 4px 4px 0; }
.sbar .neg { right: 50%; background: #4a7fe0; border-radius: 4px 0 0 4px; }
.groupmap { display: flex; flex-wrap: wrap; gap: 20px; align-items: flex-start; margin-bottom: 20px; }
.groupmap img { flex: 1 1 300px; max-width: var(--fit); min-width: 0; }
.swatch { display: inline-block; width: 12px; height: 12px; border-radius: 3px; background: var(--colour); margin-right: 6px; vertical-align: -1px; }
.groups { display: grid; grid-template-columns: repeat(auto-fill, minmax(260px, 1fr)); gap: 14px; }
.group { border: 1px solid var(--line); border-top: 3px solid var(--colour); border-radius: 8px; padding: 12px; min-width: 0; }
.group h3 span { display: inline; margin-left: 4px; }
.group .pair { display: grid; grid-template-columns: 1fr 1fr; gap: 8px; align-items: center; }
.heat { display: grid; gap: 1px; background: var(--bg); } .heat i { aspect-ratio: 1; display: block; }
.chans li { display: flex; align-items: center; gap: 8px; font-size: 13px; margin-bottom: 4px; }
.chans img, .chans .none { width: 40px; height: 40px; border-radius: 3px; flex: none; } .chans .none { border: 1px dashed var(--line); }
.flow { width: 100%; max-width: 640px; height: auto; display: block; } .flow text { fill: var(--muted); font-size: 13px; }
@media (max-width: 820px) { .overview { grid-template-columns: 1fr; } }
"""

SCRIPT = """
const D = JSON.parse(document.getElementById('data').textContent);
const [R, C] = D.grid, Z = D.cells.zoom, A = D.cells.attribution;
const esc = s => String(s).replace(/[&<>"]/g, ch => ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;'})[ch]);
const fmt = v => v === null ? 'n/a' : Number(v).toPrecision(3);
const largest = Object.fromEntries(D.classes.map(t => [t, Math.max(1e-12, ...A[t].flat().map(v => Math.abs(v || 0)))]));
function bar(v, top) {
  const w = Math.min(50, 50 * Math.abs(v || 0) / top).toFixed(1);
  return `<span class="sbar"><span class="${v < 0 ? 'neg' : 'pos'}" style="width:${w}%"></span></span>`;
}
const panel = document.getElementById('cell-panel');
function show(r, c) {
  panel.dataset.row = r; panel.dataset.col = c;
  panel.querySelector('.zoom').style.backgroundPosition = `${-c * Z}px ${-r * Z}px`;
  panel.querySelector('.where').textContent = `row ${r}, column ${c}`;
  const values = D.cells.top_values[r][c];
  panel.querySelector('.dict').innerHTML = D.cells.top_channels[r][c].map((ch, i) => `<figure>` +
    (D.channels[ch] ? `<img src="${esc(D.channels[ch])}" alt="channel ${ch}" width="96" height="96">` : '') +
    `<figcaption>channel <b>${ch}</b> <span class="num">${fmt(values[i])}</span></figcaption></figure>`).join('');
  panel.querySelector('.attr').innerHTML = D.classes.map(t => `<li><span class="name">${esc(t)}</span>` +
    `<span class="num">${fmt(A[t][r][c])}</span>${bar(A[t][r][c], largest[t])}</li>`).join('');
  for (const e of document.querySelectorAll('.cell.on')) e.classList.remove('on');
  document.querySelector(`.cell[data-row="${r}"][data-col="${c}"]`).classList.add('on');
}
for (const e of document.querySelectorAll('.cell')) {
  const pick = () => show(+e.dataset.row, +e.dataset.col);
  for (const kind of ['mouseenter', 'focus', 'click']) e.addEventListener(kind, pick);
  e.addEventListener('keydown', ev => { if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); pick(); } });
}
const mode = document.getElementById('mode'), opacity = document.getElementById('opacity');
const canvas = document.getElementById('attr-canvas'), grid = document.getElementById('grid-img');
function paint() {
  const t = mode.value, a = opacity.value / 100;
  grid.style.opacity = t ? 0 : a; canvas.style.opacity = t ? a : 0;
  if (!t) return;
  const ctx = canvas.getContext('2d'); ctx.clearRect(0, 0, C, R);
  for (let r = 0; r < R; r++) for (let c = 0; c < C; c++) {
    const v = A[t][r][c] || 0, s = Math.abs(v) / largest[t];
    ctx.fillStyle = v >= 0 ? `rgba(229,83,61,${s})` : `rgba(74,127,224,${s})`;
    ctx.fillRect(c, r, 1, 1);
  }
}
mode.addEventListener('change', paint); opacity.addEventListener('input', paint); paint();
let start = [0, 0], most = -Infinity;  // first shown: the cell that pushes the first class most
A[D.classes[0]].forEach((row, r) => row.forEach((v, c) => { if ((v || 0) > most) { most = v; start = [r, c]; } }));
show(...start);
"""
