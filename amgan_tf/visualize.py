"""Image grids with captions, for sample sheets, TensorBoard and the docs."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType: fixed bitmap font
        return ImageFont.load_default()


def labelled_grid(images: np.ndarray, captions: list[list[str]] | None = None, cols: int = 8,
                  scale: int = 2, pad: int = 4, font_size: int = 11) -> Image.Image:
    """uint8 images [n, H, W, 3] tiled `cols` wide, each upscaled `scale`x with caption lines below."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must be [n, H, W, 3], got {images.shape}.")
    n, h, w = images.shape[:3]
    rows = -(-n // cols)
    lines = max((len(c) for c in captions), default=0) if captions else 0
    line_h = font_size + 2
    cell_w, cell_h = w * scale + pad, h * scale + pad + lines * line_h
    sheet = Image.new("RGB", (cols * cell_w + pad, rows * cell_h + pad), (255, 255, 255))
    draw, font = ImageDraw.Draw(sheet), _font(font_size)
    for i in range(n):
        x0, y0 = pad + (i % cols) * cell_w, pad + (i // cols) * cell_h
        tile = Image.fromarray(images[i].astype(np.uint8)).resize((w * scale, h * scale),
                                                                  Image.NEAREST)
        sheet.paste(tile, (x0, y0))
        for j, text in enumerate(captions[i] if captions else ()):
            draw.text((x0, y0 + h * scale + j * line_h), text, fill=(0, 0, 0), font=font)
    return sheet


def mask_rgb(mask: np.ndarray) -> np.ndarray:
    """[H, W] in [0, 1] -> uint8 [H, W, 3] grey."""
    m = np.clip(np.asarray(mask, np.float32), 0, 1)
    return np.repeat((m * 255).round().astype(np.uint8)[..., None], 3, axis=-1)


def overlay(image: np.ndarray, heat: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Blend a [0, 1] heat map (red-yellow) over a uint8 image."""
    h = np.clip(np.asarray(heat, np.float32), 0, 1)[..., None]
    colour = np.concatenate([np.ones_like(h), h, np.zeros_like(h)], axis=-1) * 255
    out = image.astype(np.float32) * (1 - alpha * h) + colour * alpha * h
    return np.clip(out.round(), 0, 255).astype(np.uint8)


PALETTE = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
           (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]


def line_plot(curves: dict[str, dict[int, float]], title: str, x_label: str, y_label: str,
              size=(640, 420), dashed: tuple[str, ...] = (), colour_key=None) -> Image.Image:
    """Curves {name: {x: y}} with y in [0, 1] on shared axes, a legend, and `dashed` names drawn
    dashed (baselines); curves with the same `colour_key(name)` share a colour. PIL only: no
    plotting library is needed to evaluate."""
    width, height = size
    left, right, top, bottom = 56, 150, 30, 44
    img = Image.new("RGB", size, (255, 255, 255))
    draw, font = ImageDraw.Draw(img), _font(12)
    xs = sorted({x for c in curves.values() for x in c}) or [0, 1]
    x0, x1 = xs[0], max(xs[-1], xs[0] + 1)

    def px(x, y):
        return (left + (x - x0) / (x1 - x0) * (width - left - right),
                height - bottom - y * (height - top - bottom))

    for tick in np.linspace(0, 1, 6):
        _, yy = px(x0, tick)
        draw.line([(left, yy), (width - right, yy)], fill=(225, 225, 225))
        draw.text((8, yy - 7), f"{tick:.1f}", fill=(0, 0, 0), font=font)
    for x in xs:
        if x == x0 or x % 5 == 0:
            xx, _ = px(x, 0)
            draw.text((xx - 6, height - bottom + 4), str(x), fill=(0, 0, 0), font=font)
    draw.rectangle([px(x0, 1), px(x1, 0)], outline=(0, 0, 0))
    draw.text((left, 8), title, fill=(0, 0, 0), font=font)
    draw.text(((width - right) // 2, height - 20), x_label, fill=(0, 0, 0), font=font)
    draw.text((8, top - 22), y_label, fill=(0, 0, 0), font=font)
    keys = list(dict.fromkeys((colour_key or str)(name) for name in curves))
    for i, (name, curve) in enumerate(curves.items()):
        colour = PALETTE[keys.index((colour_key or str)(name)) % len(PALETTE)]
        points = [px(x, curve[x]) for x in sorted(curve)]
        for j, (p, q) in enumerate(zip(points, points[1:])):
            if name not in dashed or j % 2 == 0:
                draw.line([p, q], fill=colour, width=2)
        ly = top + 16 * i
        draw.line([(width - right + 10, ly + 7), (width - right + 30, ly + 7)], fill=colour,
                  width=2)
        draw.text((width - right + 36, ly), name[:18], fill=(0, 0, 0), font=font)
    return img
