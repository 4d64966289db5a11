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


if __name__ == "__main__":
    main()
    visualize_pictures()
