"""Regenerate the README's pictures: `.venv/bin/python docs/make_pictures.py` (about two minutes on 2 cores)."""

from pathlib import Path

from PIL import Image, ImageDraw
from skimage import data

import dreamscope as ds

OUT = Path(__file__).parent / "images"
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


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    coffee = Image.fromarray(data.coffee())
    cat = Image.fromarray(data.chelsea())
    save(row([labelled(coffee, "coffee.png"), labelled(ds.dream(coffee), "dreamscope dream coffee.png")]), "hero.jpg")
    layers = ["stage2.1", "stage3.1", "stage4.2", "stage5.2", "stage6.3"]
    save(row([labelled(ds.dream(cat, layer=name), f"--layer {name}") for name in layers]), "layers.jpg")
    save(row([
        labelled(ds.dream(cat, channels="strongest:3"), "--channels strongest:3"),
        labelled(ds.dream(cat, layer="stage6.0", guide=coffee), "--layer stage6.0 --guide coffee.png"),
        labelled(ds.dream(cat, layer="stage3.1=1,stage6.0=0.5"), "--layer stage3.1,stage6.0=0.5"),
    ]), "options.jpg")


def visualize_pictures() -> None:
    from dreamscope.recipes.visualize import channel_sheet, contact_sheet

    with_priors = ds.visualize("banana")[0]
    without = ds.visualize("banana", param="pixels", robust=False)[0]
    save(row([labelled(with_priors, "--class banana"), labelled(without, "--class banana --no-priors")]), "priors.jpg")
    model = ds.load_model()
    sheet = ds.visualize(channel_sheet(model, "stage4.2", 8), samples=8, size=128)
    save(contact_sheet(sheet, columns=8), "channels.jpg")


def zoom_pictures() -> None:
    from dreamscope.recipes.zoom import zoom_iter

    coffee = Image.fromarray(data.coffee()).resize((320, 240), Image.LANCZOS)
    keep = {0: "frame 1", 40: "frame 41", 80: "frame 81", 120: "frame 121"}
    frames = [labelled(f.image, keep[f.index]) for f in zoom_iter(coffee, frames=121, rotate=0.5) if f.index in keep]
    save(row(frames), "zoom.jpg")


def video_pictures() -> None:
    """A panning clip's frame 8 dreamed, and how much each version changed from frame 7 once the pan is undone."""
    import numpy as np

    from dreamscope.recipes.video import video_iter

    cat = Image.fromarray(data.chelsea())
    source = [cat.crop((40 + 3 * i, 60 + i, 232 + 3 * i, 204 + i)) for i in range(8)]

    def change(before: Image.Image, after: Image.Image) -> Image.Image:
        a, b = np.asarray(before, np.float32)[1:, 3:], np.asarray(after, np.float32)[:-1, :-3]  # content moves up-left
        return Image.fromarray(np.clip(np.abs(a - b).mean(-1) * 4, 0, 255).astype(np.uint8)).convert("RGB")

    alone = [f.image for f in video_iter(source, blend=0.0)]
    guided = [f.image for f in video_iter(source)]
    save(row([labelled(source[-1], "source frame 8"),
              labelled(alone[-1], "each frame alone"), labelled(change(alone[-2], alone[-1]), "change from frame 7 (x4)"),
              labelled(guided[-1], "flow-guided (default)"), labelled(change(guided[-2], guided[-1]), "change from frame 7 (x4)")]),
         "video.jpg")


if __name__ == "__main__":
    import sys

    steps = {"dream": main, "visualize": visualize_pictures, "zoom": zoom_pictures, "video": video_pictures}
    for name in sys.argv[1:] or steps:  # e.g. `docs/make_pictures.py zoom video` for just those
        steps[name]()
