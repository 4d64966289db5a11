"""The microscope's website: static pages that open from disk (no network, no script), written after the work.

    index.html                  the model, its layers, a strip of each layer's first channels
    LAYER/index.html            every channel of the layer in a grid
    LAYER/CHANNEL.html          the channel: its picture large, its samples, the classes it pushes toward, its
                                natural exemplars; links to the previous and next channel
    microscope.json             every fact the pages show, for scripts

Every page is written atomically; a channel whose block failed is shown as not drawn, with the reason.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from pathlib import Path

from ..fields import parse_ranges
from ..io import files
from ..recipes.microscope import layer_folder, picture_name
from ..settings import MicroscopeSettings

GENERATOR = "dreamscope microscope"
THUMB = 96  # px: a channel in a layer's grid
STRIP = 8  # channels shown per layer on the front page
LAZY = 200  # a layer page with more channels than this loads its pictures as they scroll into view


@dataclass(frozen=True)
class Site:
    """What a microscope's site shows: the layers with their channel counts and strides, the class names."""

    settings: MicroscopeSettings
    model: str
    layers: dict[str, int]  # layer -> channels, shallow to deep
    strides: dict[str, int]  # layer -> stride in px (an exemplar patch's size follows it)
    classes: list[str] | None = field(repr=False)  # 1,000 names: not for a repr
    root: Path


def drawn_channels(settings: MicroscopeSettings, count: int) -> list[int]:
    """The channels of a layer of `count` channels that the settings draw (all, or those `channels` names)."""
    return list(range(count)) if settings.channels is None else parse_ranges(settings.channels)


def blocks(settings: MicroscopeSettings, count: int) -> list[tuple[int, int]]:
    """The (start, stop) channel ranges drawn together: runs of the drawn channels, cut at every `block`-th
    channel, so a whole block is drawn as in a microscope of every channel."""
    found: list[tuple[int, int]] = []
    for channel in drawn_channels(settings, count):
        if found and found[-1][1] == channel and channel % settings.block:
            found[-1] = (found[-1][0], channel + 1)
        else:
            found.append((channel, channel + 1))
    return found


def block_name(layer: str, start: int, stop: int) -> str:
    """A block's name, as the batch summary and the pages show it: LAYER:FIRST-LAST."""
    return f"{layer}:{start}-{stop - 1}"


STYLE = """
body{font:15px/1.45 system-ui,sans-serif;margin:0;background:#15171c;color:#e8e8ea}
main{max-width:1100px;margin:0 auto;padding:18px 22px 40px}
a{color:#9cc3ff;text-decoration:none}a:hover{text-decoration:underline}
h1{font-size:22px;margin:6px 0 4px}h2{font-size:17px;margin:22px 0 8px}
.crumbs,.note{color:#a4a7b0;font-size:13px}.nav{display:flex;justify-content:space-between;margin:8px 0}
.grid{display:flex;flex-wrap:wrap;gap:8px}.cell{width:96px;text-align:center;font-size:12px;color:#a4a7b0}
.cell img,.missing{width:96px;height:96px;display:block;border-radius:3px;background:#2a2d35}
.missing{display:flex;align-items:center;justify-content:center;font-size:11px}
.strip img{width:64px;height:64px;border-radius:2px;margin-right:3px}
table{border-collapse:collapse}td,th{padding:4px 10px;text-align:left;border-bottom:1px solid #2a2d35}
.big{width:320px;height:320px;border-radius:4px;image-rendering:auto}.samples img{width:150px;height:150px;border-radius:3px;margin-right:6px}
.bar{display:inline-block;height:9px;background:#6aa0ff;border-radius:2px;vertical-align:middle;margin-right:6px}
.exs{display:flex;flex-wrap:wrap;gap:10px 8px;align-items:flex-start}
.ex{width:110px;font-size:11px;color:#a4a7b0;word-break:break-all}.ex img{width:110px;height:110px;display:block;margin-bottom:3px}
""".strip()


def write_site(plan: Site, failed: list[tuple[str, str]], exemplars: dict, facts: dict) -> int:
    """Write every page from the blocks' records in the site folder; returns how many channels were drawn. `failed`
    lists the blocks (by `block_name`) and shards whose work failed, with why."""
    root = plan.root
    failures = dict(failed)
    layers = {}
    for layer, count in plan.layers.items():
        channels: dict[int, dict] = {}
        for start, stop in blocks(plan.settings, count):
            block = root / layer_folder(layer) / f"block-{start}.json"
            data = json.loads(block.read_text()) if block.is_file() else None
            for channel in range(start, stop):
                if data is not None and str(channel) in data["facts"]:
                    channels[channel] = dict(data["facts"][str(channel)])
                else:
                    why = failures.get(block_name(layer, start, stop), "not drawn yet (the run was stopped; run it again)")
                    channels[channel] = {"missing": why}
                channels[channel]["exemplars"] = exemplars.get(f"{layer}:{channel}", [])
        layers[layer] = channels
    model = plan.model
    for number, (layer, channels) in enumerate(layers.items()):
        names = list(layers)
        neighbours = (names[number - 1] if number else None, names[number + 1] if number + 1 < len(names) else None)
        _write(root / layer_folder(layer) / "index.html", _layer_page(model, layer, channels, plan.strides[layer], neighbours))
        for channel, fact in channels.items():
            _write(root / layer_folder(layer) / f"{channel}.html", _channel_page(plan, layer, channel, fact, list(channels)))
    _write(root / "index.html", _front_page(plan, layers, failed, facts))
    data = {
        "model": model,
        "settings": plan.settings.to_json(),
        "classes": plan.classes is not None,
        "exemplar_pictures": {k: v for k, v in facts.items() if k in ("read", "skipped")},
        "layers": {
            layer: {
                "stride": plan.strides[layer],
                "channels": {
                    str(c): {**f, "classes": [[_class(plan, i), v] for i, v in f.get("classes", [])]} for c, f in channels.items()
                },
            }
            for layer, channels in layers.items()
        },
    }
    files.write_file(root / "microscope.json", lambda handle: handle.write(json.dumps(data, indent=1).encode()))
    return sum("missing" not in fact for channels in layers.values() for fact in channels.values())


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    files.write_file(path, lambda handle: handle.write(text.encode("utf-8")))


def _page(title: str, body: str) -> str:
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="generator" content="{GENERATOR}">'
        f'<meta name="viewport" content="width=device-width,initial-scale=1"><title>{html.escape(title)}</title>'
        f"<style>{STYLE}</style></head><body><main>{body}</main></body></html>\n"
    )


def _class(plan: Site, index: int) -> str:
    return plan.classes[index] if plan.classes is not None and index < len(plan.classes) else f"class {index}"


def placeholder(root: Path, model: str) -> None:
    """A front page that says the microscope is being drawn: it also marks the folder as a microscope's, so a
    resumed run may write into it."""
    if not (root / "index.html").exists():
        _write(
            root / "index.html",
            _page(
                f"{model}: microscope",
                f"<h1>{html.escape(model)}</h1><p class=note>Being drawn; this page is replaced when the work is done.</p>",
            ),
        )


def _front_page(plan: Site, layers: dict, failed: list[tuple[str, str]], facts: dict) -> str:
    s = plan.settings
    drawn = sum("missing" not in f for channels in layers.values() for f in channels.values())
    total = sum(len(channels) for channels in layers.values())
    rows = []
    for layer, channels in layers.items():
        folder = layer_folder(layer)
        strip = "".join(
            f'<a href="{folder}/{c}.html"><img src="{folder}/{picture_name(c)}" alt="{html.escape(layer)} channel {c}"></a>'
            for c in list(channels)[:STRIP]
            if "missing" not in channels[c]
        )
        missing = sum("missing" in f for f in channels.values())
        rows.append(
            f'<tr><td><a href="{folder}/index.html">{html.escape(layer)}</a></td><td>{len(channels)}</td>'
            f"<td>{plan.strides[layer]}</td><td class=strip>{strip}</td><td>{f'{missing} not drawn' if missing else ''}</td></tr>"
        )
    exemplar_note = ""
    if s.exemplar_folder:
        exemplar_note = (
            f"<p class=note>Natural exemplars from {facts.get('read', 0):,} pictures of {html.escape(s.exemplar_folder)}"
            + (f" ({len(facts.get('skipped', []))} could not be read)" if facts.get("skipped") else "")
            + ".</p>"
        )
    failed = "".join(f"<li>{html.escape(name)}: {html.escape(message)}</li>" for name, message in failed)
    return _page(
        f"{plan.model}: microscope",
        (
            f"<h1>{html.escape(plan.model)}</h1>"
            f"<p class=note>{drawn:,} of {total:,} channels of {len(layers)} layers, each drawn by feature visualization: "
            f"a picture grown from noise that excites the channel most ({s.size} px, {s.steps} steps, seed {s.seed})"
            + (f", with {s.samples} diverse samples" if s.samples else "")
            + ("; the classes each pushes toward" if plan.classes is not None and s.top else "")
            + ".</p>"
            + exemplar_note
            + "<table><tr><th>layer</th><th>channels</th><th>stride</th><th>first channels</th><th></th></tr>"
            + "".join(rows)
            + "</table>"
            + (f"<h2>Failed work</h2><ul>{failed}</ul>" if failed else "")
        ),
    )


def _layer_page(model: str, layer: str, channels: dict, stride: int, neighbours) -> str:
    cells = []
    lazy = ' loading="lazy"' if len(channels) > LAZY else ""  # a head of 1,280 channels loads as it scrolls
    for c, fact in channels.items():
        if "missing" in fact:
            cells.append(f'<div class=cell><div class=missing title="{html.escape(fact["missing"])}">not drawn</div>{c}</div>')
        else:
            cells.append(
                f'<div class=cell><a href="{c}.html"><img src="{picture_name(c)}" alt="channel {c}"{lazy}></a>'
                f'<a href="{c}.html">{c}</a></div>'
            )
    previous, following = neighbours
    nav = (
        f"<div class=nav><span>{_link(previous, '../' + layer_folder(previous) + '/index.html', '← ') if previous else ''}</span>"
        f"<span>{_link(following, '../' + layer_folder(following) + '/index.html', '', ' →') if following else ''}</span></div>"
    )
    return _page(
        f"{model} {layer}",
        (
            f'<div class=crumbs><a href="../index.html">{html.escape(model)}</a> › {html.escape(layer)}</div>{nav}'
            f"<h1>{html.escape(layer)}</h1><p class=note>{len(channels)} channels, stride {stride} px. Click a channel for its "
            f"samples, classes and exemplars.</p><div class=grid>{''.join(cells)}</div>"
        ),
    )


def _link(text: str, href: str, before: str = "", after: str = "") -> str:
    return f'<a href="{html.escape(href)}">{before}{html.escape(text)}{after}</a>'


def _sample_notes(fact: dict) -> str:
    """Say which samples were drawn again (the push apart had left them flat grey) and which stayed flat."""
    notes = []
    redrawn = [n for n in fact.get("redrawn", []) if n not in fact.get("flat", [])]
    if redrawn:
        notes.append(
            f"{_samples(redrawn)} drawn again without the push apart, which had left {_them(redrawn)} flat grey: "
            "like the main picture, from another start."
        )
    if fact.get("flat"):
        notes.append(f"{_samples(fact['flat'])} stayed flat grey, drawn twice: the channel showed nothing more there.")
    return "".join(f"<p class=note>{html.escape(note)}</p>" for note in notes)


def _samples(numbers: list[int]) -> str:
    return ("Sample " if len(numbers) == 1 else "Samples ") + ", ".join(map(str, numbers))


def _them(numbers: list[int]) -> str:
    return "it" if len(numbers) == 1 else "them"


def _channel_page(plan: Site, layer: str, channel: int, fact: dict, drawn: list[int]) -> str:
    model = plan.model
    at = drawn.index(channel)
    before, after = (drawn[at - 1] if at else None), (drawn[at + 1] if at + 1 < len(drawn) else None)
    nav = (
        f"<div class=nav><span>{_link(f'channel {before}', f'{before}.html', '← ') if before is not None else ''}</span>"
        f"<span>{_link(f'channel {after}', f'{after}.html', '', ' →') if after is not None else ''}</span></div>"
    )
    head = (
        f'<div class=crumbs><a href="../index.html">{html.escape(model)}</a> › <a href="index.html">{html.escape(layer)}</a> › '
        f"channel {channel}</div>{nav}<h1>{html.escape(layer)}:{channel}</h1>"
    )
    if "missing" in fact:
        return _page(f"{model} {layer}:{channel}", head + f"<p>Not drawn: {html.escape(fact['missing'])}</p>")
    samples = "".join(f'<img src="{picture_name(channel, j)}" alt="sample {j}">' for j in range(1, 1 + plan.settings.samples))
    body = (
        f'<img class=big src="{picture_name(channel)}" alt="{html.escape(layer)} channel {channel}">'
        f"<p class=note>Grown from noise to excite the channel (mean activation at the end: {fact['activation']:.3g}).</p>"
    )
    if samples:
        body += f"<h2>Diverse samples</h2><p class=note>Pushed apart in style: what else the channel responds to.</p><div class=samples>{samples}</div>"
        body += _sample_notes(fact)
    if fact.get("classes"):
        top = max(abs(v) for _, v in fact["classes"]) or 1.0
        rows = "".join(
            f'<tr><td>{html.escape(_class(plan, i))}</td><td><span class=bar style="width:{max(2, round(120 * v / top)) if v > 0 else 2}px">'
            f"</span>{v:+.3g}</td></tr>"
            for i, v in fact["classes"]
        )
        body += (
            "<h2>Classes it pushes toward</h2><p class=note>How much each class's score rises when this channel rises "
            f"by 1 everywhere on its picture (the derivative through the rest of the network).</p><table>{rows}</table>"
        )
    if fact.get("exemplars"):
        shown = "".join(
            f'<div class=ex><img src="../{html.escape(e["picture"])}" alt="exemplar {n}">{html.escape(e["file"])} '
            f"({e['activation']:.3g})</div>"
            for n, e in enumerate(fact["exemplars"], start=1)
        )
        body += (
            "<h2>Natural exemplars</h2><p class=note>The patches of real pictures where this channel fires most, each from "
            f"a different picture (file, activation).</p><div class=exs>{shown}</div>"
        )
    return _page(f"{model} {layer}:{channel}", head + body)
