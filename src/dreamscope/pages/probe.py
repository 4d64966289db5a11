"""Write a probe (recipes/probe.py) as an HTML report or as a PNG contact sheet.

The report is a folder: index.html and the pictures it links to by relative paths. The page has no script,
no web fonts and no network requests (inline CSS only), so it opens from disk in any browser and keeps
working when the folder is copied or zipped. The folder is written under a temporary name beside the
destination and renamed into place when complete: a failure or an interruption leaves nothing behind.
"""

from __future__ import annotations

import html
import os
from pathlib import Path

from PIL import Image, ImageDraw

from ..io import images, provenance
from ..recipes.probe import ProbeResult
from .output import check_page_folder, staged
from .sheets import contact_sheet as grid
from .sheets import font

GENERATOR = "dreamscope probe"  # marks index.html as ours: only a folder holding one of our reports is replaced
SHEET_TILE_WIDTH = 384
SHEET_COLUMNS = 4
CAPTION_HEIGHT = 44
CAPTION_BACKGROUND = (24, 26, 32)
EXEMPLAR_SIDE = 128  # px: every exemplar patch on the page, whatever its layer's patch size (32 px at stride 4)


def check_report_folder(path: str | os.PathLike) -> Path:
    """Refuse, before any work, a report folder that cannot be written or must not be replaced."""
    return check_page_folder(path, GENERATOR, alternative=", or a .png name for just the contact sheet")


def write_report(
    result: ProbeResult,
    folder: str | os.PathLike,
    *,
    source: str = "photo",
    command: str | None = None,
    metadata: dict[str, str] | None = None,
) -> Path:
    """Write index.html, its pictures and sheet.png into `folder` (replacing an earlier report there).

    `source` names the photo in the page; `command` is a command line that reproduces the report; `metadata`
    (the provenance record) goes into sheet.png, so `dreamscope redo FOLDER` can make the report again.
    """
    folder = check_report_folder(folder)
    with staged(folder) as staging:
        for relative, picture in _pictures(result).items():
            (staging / relative).parent.mkdir(exist_ok=True)
            images.save_image(picture, staging / relative)
        images.save_image(contact_sheet(result), staging / "sheet.png", metadata=_metadata(result, metadata))
        (staging / "index.html").write_text(render_html(result, source, command), encoding="utf-8")
    return folder


def write(
    result: ProbeResult,
    output: str | os.PathLike,
    *,
    metadata: dict[str, str] | None = None,
    source: str = "photo",
    command: str | None = None,
) -> Path:
    """What a probe job writes: the report folder, or just its contact sheet when `output` names a picture file."""
    if Path(output).suffix.lower() in images.OUTPUT_FORMATS:
        return write_sheet(result, output, metadata=metadata)
    return write_report(result, output, source=source, command=command, metadata=metadata)


def write_sheet(result: ProbeResult, path: str | os.PathLike, metadata: dict[str, str] | None = None) -> Path:
    """Just the contact sheet, as a picture file (atomic, like every picture dreamscope writes)."""
    return images.save_image(contact_sheet(result), path, metadata=_metadata(result, metadata))


def _metadata(result: ProbeResult, metadata: dict[str, str] | None) -> dict[str, str]:
    """The record given, else the result's own (a report written from Python)."""
    return dict(metadata) if metadata else {provenance.KEY: result.record.to_text()}


def contact_sheet(result: ProbeResult) -> Image.Image:
    """The photo and its dream at each layer, shallow to deep, each captioned, for sharing."""
    top = result.predictions[0]
    tiles = [_captioned(result.photo, "photo", f"{top.label} {top.probability:.0%}")]
    tiles += [_captioned(layer.dream, layer.name, f"{layer.channels} channels, stride {layer.stride}") for layer in result.layers]
    columns = min(SHEET_COLUMNS, len(tiles))
    blank = Image.new("RGB", tiles[0].size, CAPTION_BACKGROUND)
    if len(tiles) % columns:  # a legend fills the last row's first empty cell, dark tiles the rest
        tiles.append(_legend(result, tiles[0].size))
        tiles += [blank] * (-len(tiles) % columns)
    return grid(tiles, columns=columns)


def _legend(result: ProbeResult, size: tuple[int, int]) -> Image.Image:
    settings = result.settings
    tile = Image.new("RGB", size, CAPTION_BACKGROUND)
    draw = ImageDraw.Draw(tile)
    draw.text((14, 14), "dreamscope probe", fill=(245, 245, 245), font=font(20))
    lines = [
        result.model,
        f"{settings.octaves} octaves x {settings.steps} steps per layer",
        f"seed {settings.seed}, dreamscope {result.record.dreamscope}",
    ]
    for i, line in enumerate(lines):
        draw.text((14, 46 + 20 * i), line, fill=(160, 166, 178), font=font(14))
    return tile


def _captioned(picture: Image.Image, title: str, detail: str) -> Image.Image:
    height = round(picture.height * SHEET_TILE_WIDTH / picture.width)
    tile = Image.new("RGB", (SHEET_TILE_WIDTH, height + CAPTION_HEIGHT), CAPTION_BACKGROUND)
    tile.paste(picture.resize((SHEET_TILE_WIDTH, height), Image.LANCZOS), (0, 0))
    draw = ImageDraw.Draw(tile)
    draw.text((10, height + 6), title, fill=(245, 245, 245), font=font(18))
    draw.text((10, height + 27), detail, fill=(160, 166, 178), font=font(13))
    return tile


def _pictures(result: ProbeResult) -> dict[str, Image.Image]:
    """Every picture of the page by its relative path (the page links to these same paths)."""
    pictures = {"photo.jpg": result.photo}
    for number, layer in enumerate(result.layers, start=1):
        pictures[_dream_path(number, layer)] = layer.dream
        for channel in layer.top:
            pictures[_channel_path(number, layer, channel, "heatmap")] = channel.heatmap
            if channel.visualization is not None:
                pictures[_channel_path(number, layer, channel, "visualization")] = channel.visualization
            for rank, exemplar in enumerate(channel.exemplars, start=1):
                pictures[_exemplar_path(number, layer, channel, rank)] = _patch(exemplar)
    return pictures


def _dream_path(number, layer) -> str:
    return f"dreams/{number:02d}-{layer.name}.jpg"


def _channel_path(number, layer, channel, kind) -> str:
    return f"channels/{number:02d}-{layer.name}-{channel.index}-{kind}.jpg"


def _exemplar_path(number, layer, channel, rank) -> str:
    return f"exemplars/{number:02d}-{layer.name}-{channel.index}-{rank}.jpg"


def _patch(exemplar) -> Image.Image:
    """An exemplar's patch at the page's size: patches of shallow layers are small."""
    return exemplar.patch.resize((EXEMPLAR_SIDE, EXEMPLAR_SIDE), Image.LANCZOS)


def _img(path: str, picture: Image.Image, alt: str) -> str:
    return (
        f'<img src="{html.escape(path)}" width="{picture.width}" height="{picture.height}" '
        f'alt="{html.escape(alt)}" title="{html.escape(alt)}">'
    )


def render_html(result: ProbeResult, source: str = "photo", command: str | None = None) -> str:
    e = html.escape
    facts = result.facts
    version = result.record.dreamscope
    classes = "\n".join(
        f'<li><span class="label">{e(p.label)}</span><span class="prob">{p.probability:.1%}</span>'
        f'<span class="bar"><span style="width:{max(0.5, 100 * p.probability):.1f}%"></span></span></li>'
        for p in result.predictions
    )
    strip = "\n".join(
        f'<a href="#{e(layer.name)}"><figure>{_img(_dream_path(n, layer), layer.dream, f"dream at {layer.name}")}'
        f"<figcaption>{e(layer.name)}</figcaption></figure></a>"
        for n, layer in enumerate(result.layers, start=1)
    )
    sections = "\n".join(_layer_section(n, layer, len(result.layers)) for n, layer in enumerate(result.layers, start=1))
    rows = "\n".join(f"<tr><th>{e(str(key))}</th><td>{e(_setting(value))}</td></tr>" for key, value in facts.items())
    reproduce = f"<p>Reproduce it with:</p>\n<pre><code>{e(command)}</code></pre>" if command else ""
    title = f"What {result.model} sees in {source}"
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="{GENERATOR} {e(version)}">
<title>{e(title)}</title>
<style>{STYLE}{EXEMPLAR_STYLE if result.exemplars is not None else ""}</style>
</head>
<body>
<header>
<h1>What <em>{e(result.model)}</em> sees in <em>{e(source)}</em></h1>
<p class="lede">The photo dreamed at {len(result.layers)} layers, shallow to deep, with identical settings: each picture
shows what that layer amplifies. Below each dream, the channels that respond most strongly to this photo: what
each one looks for (a picture grown from noise to excite it) and where in the photo it fires.</p>
</header>
<main>
<section class="overview">
<figure class="photo">{_img("photo.jpg", result.photo, source)}<figcaption>{e(source)}, {result.photo.width}&times;{result.photo.height} px as probed</figcaption></figure>
<div class="classes">
<h2>The network's top {len(result.predictions)} classes</h2>
<ol>
{classes}
</ol>
<p class="note">Contact sheet of the dreams: <a href="sheet.png">sheet.png</a></p>
{_exemplar_note(result)}</div>
</section>
<nav class="strip" aria-label="layers">
{strip}
</nav>
{sections}
<section class="settings" id="settings">
<h2>Settings</h2>
{reproduce}
<table>
{rows}
</table>
</section>
</main>
<footer>Made by dreamscope {e(version)}. Everything here was computed locally; this page loads nothing from the network.</footer>
</body>
</html>
"""


def _layer_section(number: int, layer, count: int) -> str:
    e = html.escape
    # Columns in proportion to the pictures' aspect ratios give the square visualization and the heat map
    # (the photo's shape) the same height.
    widths = " ".join(f"{c.visualization.width / c.visualization.height:.3f}fr" for c in layer.top[:1] if c.visualization)
    aspect = f"{layer.top[0].heatmap.width / layer.top[0].heatmap.height:.3f}fr" if layer.top else ""
    pair = f' style="grid-template-columns: {widths} {aspect}"'
    cards = "\n".join(
        f'<figure class="channel"><div class="pair"{pair}>'
        + (
            _img(
                _channel_path(number, layer, c, "visualization"),
                c.visualization,
                f"what channel {c.index} of {layer.name} looks for",
            )
            if c.visualization is not None
            else ""
        )
        + _img(
            _channel_path(number, layer, c, "heatmap"), c.heatmap, f"where channel {c.index} of {layer.name} fires in the photo"
        )
        + "</div>"
        + _exemplar_strip(number, layer, c)
        + f"<figcaption>channel {c.index} <span>{c.strength:.1f}&times; average</span></figcaption></figure>"
        for c in layer.top
    )
    found = (
        "; below them, the patches of the folder&rsquo;s pictures that excite it most"
        if any(c.exemplars for c in layer.top)
        else ""
    )
    channels = (
        (
            f'<div class="channels"><h3>Strongest channels <span>what each looks for, where it fires, and how strongly it responds to this photo compared with the layer&rsquo;s average channel{found}</span></h3>'
            f'<div class="cards">{cards}</div></div>'
        )
        if layer.top
        else ""
    )
    return f"""<section class="layer" id="{e(layer.name)}">
<h2>{e(layer.name)} <span>layer {number} of {count} &middot; {layer.channels} channels &middot; stride {layer.stride}</span></h2>
<div class="body">
<figure class="dream">{_img(_dream_path(number, layer), layer.dream, f"the photo dreamed at {layer.name}")}</figure>
{channels}
</div>
</section>"""


def _exemplar_strip(number: int, layer, channel) -> str:
    """A channel's natural exemplars, strongest first, each titled with its file and activation; '' without."""
    if not channel.exemplars:
        return ""
    pictures = "".join(
        _img(_exemplar_path(number, layer, channel, rank), _patch(e), f"{e.file}, activation {e.activation:.3g}")
        for rank, e in enumerate(channel.exemplars, start=1)
    )
    columns = min(4, len(channel.exemplars))
    return (
        f'<div class="exemplars" style="grid-template-columns: repeat({columns}, 1fr)">{pictures}</div>'
        f'<p class="found">strongest in the folder&rsquo;s pictures</p>'
    )


def _exemplar_note(result: ProbeResult) -> str:
    """Where the exemplars come from and what could not be read; '' without an exemplar folder."""
    found = result.exemplars
    if found is None:
        return ""
    e = html.escape
    skipped = ""
    if found.skipped:
        names = ", ".join(e(name) for name, _ in found.skipped[:10]) + (
            f" and {len(found.skipped) - 10} more" if len(found.skipped) > 10 else ""
        )
        skipped = f", {len(found.skipped)} skipped ({names})"
    return (
        f'<p class="note">Natural exemplars from <code>{e(result.settings.exemplar_folder)}</code>: '
        f"{found.read} picture{'' if found.read == 1 else 's'} read{skipped}.</p>\n"
    )


def _setting(value) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value))
    return "none" if value is None else str(value)


STYLE = """
:root { color-scheme: dark; --bg: #111318; --card: #1a1d24; --line: #2a2e38; --text: #e8e9ec; --muted: #9aa1ad; --accent: #f0a04b; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--text); font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
header, main, footer { max-width: 1200px; margin: 0 auto; padding: 0 24px; }
header { padding-top: 28px; }
h1 { font-size: 28px; margin: 0 0 8px; font-weight: 650; }
h1 em, h2 em { font-style: normal; color: var(--accent); }
h2 { font-size: 20px; margin: 0 0 12px; }
h2 span { font-weight: 400; font-size: 14px; color: var(--muted); margin-left: 8px; }
h3 span { display: block; font-weight: 400; font-size: 13px; color: var(--muted); margin-top: 2px; }
h3 { font-size: 15px; margin: 0 0 10px; }
.lede { color: var(--muted); max-width: 820px; margin: 0 0 20px; }
figure { margin: 0; }
img { display: block; width: 100%; height: auto; border-radius: 6px; }
figcaption { color: var(--muted); font-size: 13px; margin-top: 6px; }
a { color: var(--accent); }
.overview { display: grid; grid-template-columns: minmax(0, 1.3fr) minmax(0, 1fr); gap: 28px; align-items: start;
  background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 20px; }
.classes ol { list-style: none; margin: 0; padding: 0; }
.classes li { display: grid; grid-template-columns: 1fr auto; gap: 2px 12px; margin-bottom: 12px; }
.classes .label { font-weight: 600; }
.classes .prob { color: var(--muted); font-variant-numeric: tabular-nums; }
.classes .bar { grid-column: 1 / -1; height: 8px; background: var(--line); border-radius: 4px; overflow: hidden; }
.classes .bar span { display: block; height: 100%; background: var(--accent); }
.note { color: var(--muted); font-size: 13px; }
.strip { display: flex; flex-wrap: wrap; gap: 12px; margin: 20px 0; }
.strip a { flex: 1 1 140px; max-width: 240px; text-decoration: none; }
.strip figcaption { text-align: center; color: var(--text); }
.layer { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 20px; margin-bottom: 20px; }
.layer .body { display: grid; grid-template-columns: minmax(0, 512px) minmax(0, 1fr); gap: 24px; align-items: start; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(240px, 1fr)); gap: 14px; }
.channel .pair { display: grid; gap: 4px; }
.channel .pair img { width: 100%; }
.channel figcaption { color: var(--text); }
.channel figcaption span { color: var(--muted); margin-left: 6px; }
.settings { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 20px; margin-bottom: 20px; }
pre { background: var(--bg); border: 1px solid var(--line); border-radius: 6px; padding: 12px; white-space: pre-wrap; word-break: break-all; }
table { border-collapse: collapse; font-size: 14px; }
th, td { text-align: left; padding: 3px 18px 3px 0; border-bottom: 1px solid var(--line); font-weight: 400; }
th { color: var(--muted); }
footer { color: var(--muted); font-size: 13px; padding-bottom: 32px; }
@media (max-width: 820px) { .overview, .layer .body { grid-template-columns: 1fr; } }
"""
# Only on a page with exemplars: without them the page is what it was before exemplars existed.
EXEMPLAR_STYLE = """.channel .exemplars { display: grid; gap: 4px; margin-top: 4px; }
.channel .exemplars img { border-radius: 3px; }
.channel .found { color: var(--muted); font-size: 12px; margin: 4px 0 0; }
"""


def __getattr__(name: str):
    """Names that lived in report.py (this module's old name) before the package was split into layers (0.2)."""
    if name in ("move_into_place", "new_folder_beside"):
        import warnings

        from ..io import files

        warnings.warn(f"{__name__}.{name} moved to dreamscope.io.files.{name}", DeprecationWarning, stacklevel=2)
        return getattr(files, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
