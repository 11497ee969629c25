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
