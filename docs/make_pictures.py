"""Regenerate the README's pictures: `.venv/bin/python docs/make_pictures.py [dream visualize zoom video]`
(about three minutes on 2 cores).

The dream and visualize pictures are made by real jobs, as the command line makes them: each panel is written to
docs/images/made/ with its provenance record inside, from the photos in docs/images/inputs/, so
`dreamscope redo docs/images/made/NAME.jpg` makes any of them again (the same bytes on the machine that made
them). The figures in docs/images/ put the panels side by side with their captions.
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image, ImageDraw
from skimage import data

import dreamscope as ds

OUT = Path(__file__).parent / "images"
MADE = OUT / "made"
INPUTS = OUT / "inputs"
HEIGHT = 220


def labelled(picture: Image.Image, text: str) -> Image.Image:
    picture = picture.resize((round(picture.width * HEIGHT / picture.height), HEIGHT), Image.LANCZOS)
    draw = ImageDraw.Draw(picture)
    draw.rectangle((0, 0, 7 * len(text) + 8, 16), fill="black")
    draw.text((4, 2), text, fill="white")
    return picture


def row(pictures: list[Image.Image]) -> Image.Image:
    sheet = Image.new("RGB", (sum(p.width for p in pictures) + 4 * (len(pictures) - 1), HEIGHT), "white")
    x = 0
    for picture in pictures:
        sheet.paste(picture, (x, 0))
        x += picture.width + 4
    return sheet


def save(picture: Image.Image, name: str) -> None:
    picture.save(OUT / name, quality=85, optimize=True)
    print("wrote", OUT / name)


def inputs() -> dict[str, Path]:
    """scikit-image's sample photos as files: the inputs the panels' records name."""
    INPUTS.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name in ("coffee", "chelsea"):
        paths[name] = INPUTS / f"{name}.jpg"
        if not paths[name].exists():
            Image.fromarray(getattr(data, name)()).save(paths[name], quality=92)
    return paths


def made(settings, name: str, **files) -> Image.Image:
    """Run one job into docs/images/made/NAME.jpg, as `dreamscope` would, and return the picture."""
    MADE.mkdir(parents=True, exist_ok=True)
    output = MADE / f"{name}.jpg"
    ds.run_job(ds.Job(settings, str(output), {role: str(path) for role, path in files.items()})).result()
    print("wrote", output)
    return Image.open(output)


def dream_pictures() -> None:
    photos = inputs()
    coffee, cat = photos["coffee"], photos["chelsea"]
    dream = ds.DreamSettings()
    save(
        row(
            [
                labelled(Image.open(coffee), "coffee.jpg"),
                labelled(made(dream, "coffee-dream", input=coffee), "dreamscope dream coffee.jpg"),
            ]
        ),
        "hero.jpg",
    )
    layers = ["stage2.1", "stage3.1", "stage4.2", "stage5.2", "stage6.3"]
    save(
        row([labelled(made(dream.replace(layer=name), f"chelsea-{name}", input=cat), f"--layer {name}") for name in layers]),
        "layers.jpg",
    )
    save(
        row(
            [
                labelled(made(dream.replace(channels="strongest:3"), "chelsea-strongest-3", input=cat), "--channels strongest:3"),
                labelled(
                    made(dream.replace(layer="stage6.0"), "chelsea-guided-by-coffee", input=cat, guide=coffee),
                    "--layer stage6.0 --guide coffee.jpg",
                ),
                labelled(
                    made(dream.replace(layer="stage3.1,stage6.0=0.5"), "chelsea-mixed", input=cat),
                    "--layer stage3.1,stage6.0=0.5",
                ),
            ]
        ),
        "options.jpg",
    )


def visualize_pictures() -> None:
    banana = ds.VisualizeSettings(target="banana")
    with_priors = made(banana, "banana")
    maco = made(banana.replace(param="maco"), "banana-maco")
    faded = made(banana.replace(param="maco", transparency=True), "banana-maco-transparency")
    without = made(banana.replace(param="pixels", robust=False), "banana-no-priors")
    save(
        row(
            [
                labelled(with_priors, "--class banana"),
                labelled(maco, "--param maco"),
                labelled(faded, "--param maco --transparency"),
                labelled(without, "--no-priors"),
            ]
        ),
        "priors.jpg",
    )
    sheet = made(ds.VisualizeSettings(kind="channels", target="stage4.2", grid=8, size=128), "stage4.2-channels")
    save(sheet, "channels.jpg")
    class_pictures()
    accentuate_pictures()


CLASSES = ("daisy", "lighthouse", "castle", "school bus", "flamingo", "snail", "barn", "church")  # of the 48 benchmarked


def class_pictures() -> None:
    """Eight class pictures at the defaults, two rows of four: what two crops a step draw."""
    pictures = [labelled(made(ds.VisualizeSettings(target=name), name.replace(" ", "-")), name) for name in CLASSES]
    top, bottom = row(pictures[:4]), row(pictures[4:])
    sheet = Image.new("RGB", (top.width, 2 * HEIGHT + 4), "white")
    sheet.paste(top, (0, 0))
    sheet.paste(bottom, (0, HEIGHT + 4))
    save(sheet, "classes.jpg")


def accentuate_pictures() -> None:
    """Feature accentuation of the cat photo toward two classes, at the photo's aspect ratio."""
    cat = inputs()["chelsea"]
    accent = ds.VisualizeSettings(target="lion", size=336, accentuate=True)  # 336 x 224, the photo's shape
    panels = [labelled(Image.open(cat), "chelsea.jpg")]
    for target in ("lion", "tiger"):
        picture = made(accent.replace(target=target), f"chelsea-accentuated-{target}", init=cat)
        panels.append(labelled(picture, f"--class {target} --accentuate"))
    save(row(panels), "accentuate.jpg")


def frames(run) -> list:
    return [event for event in run if event.frame is not None]


def zoom_pictures() -> None:
    coffee = Image.fromarray(data.coffee()).resize((320, 240), Image.LANCZOS)
    keep = {0: "frame 1", 40: "frame 41", 80: "frame 81", 120: "frame 121"}
    shown = [labelled(f.image, keep[f.frame]) for f in frames(ds.zoom_iter(coffee, frames=121, rotate=0.5)) if f.frame in keep]
    save(row(shown), "zoom.jpg")


def video_pictures() -> None:
    """A panning clip's frame 8 dreamed, and how much each version changed from frame 7 once the pan is undone."""
    import numpy as np

    cat = Image.fromarray(data.chelsea())
    source = [cat.crop((40 + 3 * i, 60 + i, 232 + 3 * i, 204 + i)) for i in range(8)]

    def change(before: Image.Image, after: Image.Image) -> Image.Image:
        a, b = np.asarray(before, np.float32)[1:, 3:], np.asarray(after, np.float32)[:-1, :-3]  # content moves up-left
        return Image.fromarray(np.clip(np.abs(a - b).mean(-1) * 4, 0, 255).astype(np.uint8)).convert("RGB")

    alone = [f.image for f in frames(ds.video_iter(source, blend=0.0))]
    pixels = [f.image for f in frames(ds.video_iter(source, carry="pixels"))]
    guided = [f.image for f in frames(ds.video_iter(source))]
    save(
        row(
            [
                labelled(source[-1], "source frame 8"),
                labelled(alone[-1], "each frame alone"),
                labelled(change(alone[-2], alone[-1]), "change from frame 7 (x4)"),
                labelled(pixels[-1], "carrying the pixels"),
                labelled(change(pixels[-2], pixels[-1]), "change from frame 7 (x4)"),
                labelled(guided[-1], "carrying the detail (default)"),
                labelled(change(guided[-2], guided[-1]), "change from frame 7 (x4)"),
            ]
        ),
        "video.jpg",
    )


SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "imagenet-sample"  # 1,000 photos, one per class
ATLAS = Path(__file__).resolve().parents[1] / "build" / "atlas"  # the whole folders are large: kept out of git


def atlas_pictures() -> None:
    """The atlas of the 1,000 sample photos (about 12 minutes), a comparison made from its vectors, and the patch
    experiment's examples; the folders go to build/atlas/, the README's pictures to docs/images/."""
    import subprocess

    if not SAMPLE.is_dir():
        print(f"skipped the atlas pictures: {SAMPLE} is not here")
        return
    ATLAS.mkdir(parents=True, exist_ok=True)

    def dreamscope(*args: str) -> None:
        subprocess.run([sys.executable, "-m", "dreamscope", *args, "-q"], check=True)

    whole, versus = ATLAS / "imagenet-sample", ATLAS / "snorkel-vs-scuba-diver"
    dreamscope("atlas", str(SAMPLE), "-o", str(whole))
    save(Image.open(whole / "atlas.png").resize((1200, 1200), Image.LANCZOS), "atlas.jpg")
    dreamscope("atlas", str(whole / "collection.npz"), "-o", str(versus), "--compare", "snorkel,scuba diver", "--grid", "10")
    comparison = Image.open(versus / "atlas.png")
    save(comparison.resize((1200, round(1200 * comparison.height / comparison.width)), Image.LANCZOS), "atlas-compare.jpg")
    patch_pictures()


def patch_pictures() -> None:
    """The patch experiment on the pair where the atlas found a feature that works: tricycle -> bicycle-built-for-two.
    The comparison's cell that favours the tandem most is pasted into 20 views of the sample's tricycle photo."""
    import json
    import shutil
    import subprocess

    whole, versus = ATLAS / "imagenet-sample", ATLAS / "tricycle-vs-tandem"
    photos = ATLAS / "tricycle-photos"
    photos.mkdir(parents=True, exist_ok=True)
    shutil.copy(SAMPLE / "n04482393_tricycle.JPEG", photos)
    a, b = "tricycle", "bicycle-built-for-two"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "dreamscope",
            "atlas",
            str(whole / "collection.npz"),
            "-o",
            str(versus),
            "--compare",
            f"{a},{b}",
            "--grid",
            "10",
            "-q",
        ],
        check=True,
    )
    cells = json.loads((versus / "atlas.json").read_text())["cells"]
    best = max(cells, key=lambda c: c["strength"][b] - c["strength"][a])["name"]
    subprocess.run(
        [
            sys.executable,
            "-m",
            "dreamscope",
            "patch",
            str(photos),
            "--from",
            a,
            "--to",
            b,
            "--icon",
            f"{versus}:{best}",
            "--size",
            "0.4",
            "--views",
            "20",
            "-o",
            str(ATLAS / "patch-tricycle"),
            "-q",
        ],
        check=True,
    )
    save(Image.open(ATLAS / "patch-tricycle" / "examples.png").convert("RGB"), "patch.jpg")


MICROSCOPE = ATLAS.parent / "microscope"
MICROSCOPE_CHANNELS = (3, 17, 40, 61)  # rows of the README's picture: channels of stage4.2 chosen to show variety


def microscope_pictures() -> None:
    """The microscope of efficientnet-lite0's stage4.2 (80 channels, default settings but 2 samples) with exemplars
    from the 1,000 sample photos (about 12 minutes on 2 workers); the site goes to build/microscope/, the README's
    picture (a few channels: picture, samples, exemplars, top classes) to docs/images/microscope.jpg."""
    import json
    import subprocess

    from dreamscope.pages.sheets import font

    if not SAMPLE.is_dir():
        print(f"skipped the microscope picture: {SAMPLE} is not here")
        return
    subprocess.run(
        [
            sys.executable,
            "-m",
            "dreamscope",
            "microscope",
            "-o",
            str(MICROSCOPE),
            "--layers",
            "stage4.2",
            "--samples",
            "2",
            "--exemplars",
            str(SAMPLE),
            "-q",
        ],
        check=True,
    )
    facts = json.loads((MICROSCOPE / "microscope.json").read_text())["layers"]["stage4.2"]["channels"]
    tile, gap, label = 128, 6, 300
    rows = []
    for channel in MICROSCOPE_CHANNELS:
        fact = facts[str(channel)]
        folder = MICROSCOPE / "stage4.2"
        tiles = [Image.open(folder / f"{channel}.png"), *(Image.open(folder / f"{channel}-s{j}.png") for j in (1, 2))]
        tiles += [Image.open(MICROSCOPE / e["picture"]) for e in fact["exemplars"][:4]]
        line = Image.new("RGB", (label + len(tiles) * (tile + gap), tile), "white")
        draw = ImageDraw.Draw(line)
        draw.text((4, 8), f"stage4.2:{channel}", fill="black", font=font(16))
        for n, (name, value) in enumerate(fact["classes"][:4]):
            draw.text((4, 36 + 20 * n), f"{name[:30]} {value:+.2f}", fill=(60, 60, 60), font=font(13))
        for n, picture in enumerate(tiles):
            line.paste(
                picture.convert("RGB").resize((tile, tile), Image.LANCZOS), (label + n * (tile + gap) + (gap if n >= 3 else 0), 0)
            )
        rows.append(line)
    sheet = Image.new("RGB", (rows[0].width, len(rows) * (tile + gap)), "white")
    for n, line in enumerate(rows):
        sheet.paste(line, (0, n * (tile + gap)))
    save(sheet, "microscope.jpg")


EXPLAIN = MICROSCOPE.parent / "explain"
PAGES_ONLY = False  # True: only the README's picture, from the pages already in build/explain/
EXPLAINED = ("n02099601_golden_retriever", "n02123045_tabby", "n04285008_sports_car", "n07873807_pizza")


def explain_pictures() -> None:
    """`dreamscope explain` at default settings on a dog, a cat, a car and a food photo of the sample (about 2 minutes
    for the first, less for the others: the channels' pictures are cached); the pages go to build/explain/, the
    README's picture (the car's page: the grid with a cell shown, the groups) to docs/images/explain.jpg, rendered by
    headless Chromium."""
    import subprocess
    import tempfile

    if not SAMPLE.is_dir():
        print(f"skipped the explain pictures: {SAMPLE} is not here")
        return
    EXPLAIN.mkdir(parents=True, exist_ok=True)
    for name in EXPLAINED if not PAGES_ONLY else ():
        photo = SAMPLE / f"{name}.JPEG"
        subprocess.run([sys.executable, "-m", "dreamscope", "explain", str(photo), "-o", str(EXPLAIN / name), "-q"], check=True)
    from playwright.sync_api import sync_playwright

    shown = EXPLAIN / "n04285008_sports_car" / "index.html"  # a landscape photo fills the page's grid best
    with tempfile.TemporaryDirectory() as folder, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(shown.as_uri())
        page.locator('.cell[data-row="5"][data-col="4"]').hover()  # a wheel: the panel shows its cell
        page.locator("#grid").screenshot(path=f"{folder}/grid.png")
        page.locator("#groups").screenshot(path=f"{folder}/groups.png")
        browser.close()
        grid, groups = (Image.open(f"{folder}/{name}.png").convert("RGB") for name in ("grid", "groups"))
    groups = groups.crop((0, 0, groups.width, min(groups.height, 1090)))  # the map and the first row of groups
    sheet = Image.new("RGB", (max(grid.width, groups.width), grid.height + groups.height), "white")
    sheet.paste(grid, (0, 0))
    sheet.paste(groups, (0, grid.height))
    save(sheet.resize((sheet.width * 3 // 4, sheet.height * 3 // 4), Image.LANCZOS), "explain.jpg")


def live_pictures() -> None:
    """`dreamscope live` on a 30 fps pan over a sample photo of people (the dream building up: what a viewer saw at 0.2,
    1, 2 and 4 s, beside the camera), and the studio's Live tab in headless Chromium with that clip as its fake camera."""
    import tempfile

    from dreamscope.recipes import live

    if not SAMPLE.is_dir():
        print(f"skipped the live pictures: {SAMPLE} is not here")
        return
    sys.path[:0] = [str(Path(__file__).resolve().parents[1] / "tests" / p) for p in ("", "studio")]
    from test_studio_browser import Server, wait_until
    from test_studio_live import camera_args, write_y4m

    photo = Image.open(SAMPLE / "n10148035_groom.JPEG").convert("RGB")  # people in front of a camera
    photo = photo.resize((640, round(photo.height * 640 / photo.width)), Image.LANCZOS)
    camera = [photo.crop((40 + i, 120 + i // 2, 360 + i, 360 + i // 2)) for i in range(120)]  # 4 s at 30 fps

    class Clip(list):
        fps, size = 30, camera[0].size

    seen = [ds.imaging.to_pil(e.picture) for e in live.live_iter(Clip(camera), model="efficientnet-lite0") if e.frame is not None]
    save(
        row(
            [
                labelled(camera[-1], "camera at 4 s"),
                *(labelled(seen[i], f"shown at {(i + 1) / 30:g} s") for i in (5, 29, 59, 119)),
            ]
        ),
        "live.jpg",
    )
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as folder:
        clip = Path(folder) / "camera.y4m"
        big = [photo.crop((40 + i, 120 + i // 2, 360 + i, 360 + i // 2)).resize((640, 480), Image.LANCZOS) for i in range(120)]
        write_y4m(clip, big + big[::-1], 30)  # 640 x 480: Chromium's fake camera pads a smaller file instead of scaling it
        (Path(folder) / "data").mkdir()
        server = Server(Path(folder) / "data")
        try:
            with sync_playwright() as playwright:
                args = camera_args(clip)
                browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=args)
                page = browser.new_page(viewport={"width": 1280, "height": 760})
                page.goto(server.url)
                page.wait_for_selector("body.ready")
                page.click("#tab-live")
                page.click("#live-start")
                wait_until(page, "Number(document.getElementById('live-canvas').dataset.frames || 0) > 90", timeout=60_000)
                page.mouse.move(1270, 750)
                page.screenshot(path=f"{folder}/live.png")
                browser.close()
        finally:
            server.stop()
        shot = Image.open(f"{folder}/live.png").convert("RGB")
    save(shot.resize((shot.width * 3 // 4, shot.height * 3 // 4), Image.LANCZOS), "live-studio.jpg")


if __name__ == "__main__":
    steps = {
        "dream": dream_pictures,
        "visualize": visualize_pictures,
        "zoom": zoom_pictures,
        "video": video_pictures,
        "atlas": atlas_pictures,
        "patch": patch_pictures,
        "microscope": microscope_pictures,
        "explain": explain_pictures,
        "live": live_pictures,
    }
    for name in sys.argv[1:] or steps:  # e.g. `docs/make_pictures.py zoom video` for just those
        steps[name]()
