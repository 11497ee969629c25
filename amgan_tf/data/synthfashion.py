"""SynthFashion: a procedural fashion-image renderer with counterfactuals and ground-truth masks.

Real fashion datasets cannot be downloaded here, and none has ground truth for "the same photo with
only the sleeves changed". This renderer draws a front-facing person wearing a garment; every latent
choice lives in a `Spec`, so changing one attribute of the spec and rendering again gives the exact
counterfactual. Deterministic from (seed, index); any size from 32 to 256 px; numpy only.

Attributes: sleeve {sleeveless, short, three_quarter, long}, colour (10 named colours, each a region
of HSV space with jitter and shading), pattern {plain, stripes, dots, checks} are manipulated;
category {top, dress} and body_shape {slim, broad} are labelled nuisances for reference matching.
Masks: garment, sleeve, torso (garment minus sleeves) and arm (the whole arm, covered or bare).
"""

from __future__ import annotations

import colorsys
import dataclasses
import math

import numpy as np

from amgan_tf.attributes import Attribute, AttributeSchema

SLEEVES = ("sleeveless", "short", "three_quarter", "long")
# name -> (hue degrees, saturation, value); jitter keeps each colour a region, not a point.
COLOURS = {
    "red": (0.0, 0.85, 0.82),
    "orange": (28.0, 0.90, 0.96),
    "yellow": (54.0, 0.85, 0.95),
    "green": (128.0, 0.70, 0.62),
    "blue": (220.0, 0.78, 0.80),
    "purple": (280.0, 0.60, 0.62),
    "pink": (330.0, 0.42, 0.96),
    "brown": (24.0, 0.65, 0.40),
    "white": (0.0, 0.04, 0.95),
    "black": (0.0, 0.05, 0.13),
}
COLOURS_LIST = tuple(COLOURS)
PATTERNS = ("plain", "stripes", "dots", "checks")
CATEGORIES = ("top", "dress")
BODY_SHAPES = ("slim", "broad")
MASK_NAMES = ("garment", "sleeve", "torso", "arm")

# Fraction of the arm (shoulder to wrist) that each sleeve covers.
SLEEVE_FRACTION = {"sleeveless": 0.0, "short": 0.24, "three_quarter": 0.70, "long": 1.0}

SKIN_TONES = ((0.98, 0.84, 0.72), (0.93, 0.76, 0.62), (0.82, 0.62, 0.47), (0.66, 0.46, 0.32),
              (0.50, 0.34, 0.23), (0.36, 0.24, 0.17))
HAIR_COLOURS = ((0.08, 0.06, 0.05), (0.25, 0.16, 0.10), (0.45, 0.30, 0.16), (0.85, 0.70, 0.42),
                (0.55, 0.22, 0.10), (0.62, 0.62, 0.62))
TROUSER_COLOURS = ((0.20, 0.27, 0.42), (0.10, 0.10, 0.12), (0.40, 0.40, 0.42), (0.62, 0.55, 0.40),
                   (0.30, 0.36, 0.55))

MIN_SIZE, MAX_SIZE = 32, 256


def schema() -> AttributeSchema:
    return AttributeSchema((
        Attribute("sleeve", SLEEVES),
        Attribute("colour", tuple(COLOURS)),
        Attribute("pattern", PATTERNS),
        Attribute("category", CATEGORIES, manipulated=False),
        Attribute("body_shape", BODY_SHAPES, manipulated=False),
    ), dataset="synthfashion")


@dataclasses.dataclass(frozen=True)
class Spec:
    """Every latent choice of one image. Attribute fields hold value names."""

    sleeve: str
    colour: str
    pattern: str
    category: str
    body_shape: str
    colour_jitter: tuple[float, float, float]  # hue degrees, saturation, value offsets
    pattern_period: float
    pattern_phase: tuple[float, float]
    skin: tuple[float, float, float]
    hair: tuple[float, float, float]
    long_hair: bool
    trousers: tuple[float, float, float]
    background: str  # plain | gradient | texture
    background_colours: tuple[tuple[float, float, float], tuple[float, float, float]]
    shift: tuple[float, float]
    scale: float
    arm_angles: tuple[float, float, float, float]  # upper/fore angle (radians) for left, right
    light: float
    noise_sigma: float
    noise_seed: int

    def replace(self, **changes) -> "Spec":
        """The counterfactual: same latent choices, only the given attributes changed."""
        sch = schema()
        for name, value in changes.items():
            sch.value_index(name, value)  # clear error for unknown names
        return dataclasses.replace(self, **changes)

    def labels(self) -> np.ndarray:
        return schema().labels_from_dict({a: getattr(self, a) for a in schema().names})


def _hsv_rgb(h: float, s: float, v: float) -> tuple[float, float, float]:
    return colorsys.hsv_to_rgb((h / 360.0) % 1.0, min(max(s, 0.0), 1.0), min(max(v, 0.0), 1.0))


def sample_spec(seed: int, index: int) -> Spec:
    """Spec of example `index` of the dataset with `seed`; attributes uniform and independent."""
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, int(index)])
    pick = lambda seq: seq[int(rng.integers(len(seq)))]  # noqa: E731
    bg_kind = pick(("plain", "gradient", "texture"))
    bg_h = float(rng.uniform(0, 360))
    bg = tuple(_hsv_rgb(bg_h + float(rng.uniform(-30, 30)), float(rng.uniform(0.0, 0.22)),
                        float(rng.uniform(0.55, 0.97))) for _ in range(2))
    skin = np.clip(np.array(pick(SKIN_TONES)) + rng.normal(0, 0.02, 3), 0, 1)
    hair = np.clip(np.array(pick(HAIR_COLOURS)) + rng.normal(0, 0.02, 3), 0, 1)
    trousers = np.clip(np.array(pick(TROUSER_COLOURS)) + rng.normal(0, 0.02, 3), 0, 1)
    upper = rng.uniform(0.08, 0.45, 2)
    fore = upper + rng.uniform(-0.30, 0.15, 2)
    return Spec(
        sleeve=pick(SLEEVES), colour=pick(tuple(COLOURS)), pattern=pick(PATTERNS),
        category=pick(CATEGORIES), body_shape=pick(BODY_SHAPES),
        colour_jitter=(float(rng.uniform(-7, 7)), float(rng.uniform(-0.08, 0.08)),
                       float(rng.uniform(-0.06, 0.06))),
        pattern_period=float(rng.uniform(0.13, 0.17)),
        pattern_phase=(float(rng.uniform(0, 1)), float(rng.uniform(0, 1))),
        skin=tuple(map(float, skin)), hair=tuple(map(float, hair)), long_hair=bool(rng.random() < 0.5),
        trousers=tuple(map(float, trousers)), background=bg_kind, background_colours=bg,
        shift=(float(rng.uniform(-0.08, 0.08)), float(rng.uniform(0.07, 0.14))),
        scale=float(rng.uniform(1.05, 1.2)),
        arm_angles=(float(upper[0]), float(fore[0]), float(upper[1]), float(fore[1])),
        light=float(rng.uniform(-1, 1)), noise_sigma=float(rng.uniform(0.0, 0.02)),
        noise_seed=int(rng.integers(2**31)))


# ---- geometry on the supersampled grid ------------------------------------------------------------
def _ellipse(u, v, cu, cv, ru, rv):
    return ((u - cu) / ru) ** 2 + ((v - cv) / rv) ** 2 <= 1.0


def _segment(u, v, a, b, r0, r1, round_start=True, round_end=True):
    """Tapered capsule from a to b (radius r0 -> r1); flat ends where not rounded (sleeve cuffs)."""
    (au, av), (bu, bv) = a, b
    du, dv = bu - au, bv - av
    length2 = du * du + dv * dv + 1e-12
    t_raw = ((u - au) * du + (v - av) * dv) / length2
    t = np.clip(t_raw, 0.0, 1.0)
    dist = np.hypot(u - (au + t * du), v - (av + t * dv))
    inside = dist <= r0 + (r1 - r0) * t
    if not round_start:
        inside &= t_raw >= 0.0
    if not round_end:
        inside &= t_raw <= 1.0
    return inside


@dataclasses.dataclass(frozen=True)
class _Body:
    shoulder_w: float
    waist_w: float
    hip_w: float


_BODIES = {"slim": _Body(0.25, 0.18, 0.21), "broad": _Body(0.30, 0.235, 0.245)}
_SHOULDER_V, _HIP_V, _DRESS_HEM_V = -0.44, 0.36, 0.86
_UPPER_LEN, _FORE_LEN = 0.36, 0.32
_ARM_R = (0.066, 0.054, 0.046)  # shoulder, elbow, wrist radius
_SLEEVE_PAD = 0.03  # sleeves sit loosely around the arm
_HAND_R = (0.05, 0.038)  # palm (a little wider than the wrist), fingertips


def _torso_halfwidth(v, body: _Body):
    """Half-width of the body at height v: shoulders -> armpits -> waist -> hips (piecewise linear)."""
    knots_v = np.array([_SHOULDER_V - 0.02, -0.30, 0.08, _HIP_V, 1.5])
    knots_w = np.array([body.shoulder_w, body.shoulder_w - 0.04, body.waist_w, body.hip_w,
                        body.hip_w + 0.02])
    return np.interp(v, knots_v, knots_w)


def _torso(u, v, body: _Body, bottom: float):
    top = _SHOULDER_V - 0.02 + 0.07 * (u / body.shoulder_w) ** 2
    return (v >= top) & (v <= bottom) & (np.abs(u) <= _torso_halfwidth(v, body))


def _arm_points(body: _Body, side: int, upper_angle: float, fore_angle: float):
    shoulder = (side * (body.shoulder_w - 0.045), _SHOULDER_V + 0.05)
    elbow = (shoulder[0] + side * math.sin(upper_angle) * _UPPER_LEN,
             shoulder[1] + math.cos(upper_angle) * _UPPER_LEN)
    wrist = (elbow[0] + side * math.sin(fore_angle) * _FORE_LEN,
             elbow[1] + math.cos(fore_angle) * _FORE_LEN)
    return shoulder, elbow, wrist


def _lerp(p, q, t):
    return (p[0] + (q[0] - p[0]) * t, p[1] + (q[1] - p[1]) * t)


def _hand(u, v, points):
    """A mitten along the forearm's direction, reaching 0.56 forearm lengths past the wrist (an
    adult hand is 0.7 forearm lengths from wrist to fingertips, a relaxed one somewhat less)."""
    _, elbow, wrist = points
    return _segment(u, v, wrist, _lerp(elbow, wrist, 1.45), _HAND_R[0], _HAND_R[1])


def _arm_region(u, v, points, fraction: float, pad: float, cuff: bool):
    """Region of the arm from the shoulder over `fraction` of its length (sleeve when cuff=True)."""
    shoulder, elbow, wrist = points
    total = _UPPER_LEN + _FORE_LEN
    reach = fraction * total
    r_s, r_e, r_w = (r + pad for r in _ARM_R)
    if reach <= 0:
        return np.zeros_like(u, bool)
    if reach <= _UPPER_LEN:
        t = reach / _UPPER_LEN
        end = _lerp(shoulder, elbow, t)
        return _segment(u, v, shoulder, end, r_s, r_s + (r_e - r_s) * t, round_end=not cuff)
    region = _segment(u, v, shoulder, elbow, r_s, r_e)
    t = (reach - _UPPER_LEN) / _FORE_LEN
    end = _lerp(elbow, wrist, t)
    return region | _segment(u, v, elbow, end, r_e, r_e + (r_w - r_e) * t, round_end=not cuff)


# ---- colour and pattern ---------------------------------------------------------------------------
def garment_rgb(spec: Spec) -> np.ndarray:
    h, s, v = COLOURS[spec.colour]
    dh, ds, dv = spec.colour_jitter
    return np.array(_hsv_rgb(h + dh, s + ds, v + dv), np.float32)


def _pattern_strength(u, v, spec: Spec):
    """In [0, 1]: how much of the contrast colour each point gets (figure coordinates, so the
    pattern moves with the figure and is identical in counterfactuals)."""
    p = spec.pattern_period
    pu, pv = spec.pattern_phase
    fu, fv = (u / p + pu) % 1.0, (v / p + pv) % 1.0
    if spec.pattern == "plain":
        return np.zeros_like(u)
    if spec.pattern == "stripes":
        return (fv < 0.45).astype(np.float32)
    if spec.pattern == "dots":
        row = np.floor(v / p + pv)
        fu = (u / p + pu + 0.5 * (row % 2)) % 1.0
        return (((fu - 0.5) ** 2 + (fv - 0.5) ** 2) <= 0.27 ** 2).astype(np.float32)
    # checks (gingham): two perpendicular bands, crossings darkest.
    return 0.5 * (fu < 0.5) + 0.5 * (fv < 0.5)


def _contrast_rgb(base: np.ndarray) -> np.ndarray:
    lum = float(base @ np.array([0.299, 0.587, 0.114]))
    return base + (1.0 - base) * 0.62 if lum < 0.45 else base * 0.42


# ---- rendering ------------------------------------------------------------------------------------
def _supersampling(size: int) -> int:
    return 3 if size <= 48 else 2


def _background(spec: Spec, yy, s: int, rng) -> np.ndarray:
    c0, c1 = (np.array(c, np.float32) for c in spec.background_colours)
    if spec.background == "plain":
        img = np.broadcast_to(c0, (s, s, 3)).copy()
    elif spec.background == "gradient":
        t = ((yy + 1) / 2)[..., None]
        img = c0 * (1 - t) + c1 * t
    else:
        coarse = rng.uniform(-1, 1, (7, 7)).astype(np.float32)
        idx = np.linspace(0, 6, s)
        i0 = np.floor(idx).astype(int).clip(0, 5)
        f = (idx - i0)[:, None]
        rows = coarse[i0] * (1 - f) + coarse[i0 + 1] * f
        grid = rows[:, i0] * (1 - f.T) + rows[:, i0 + 1] * f.T
        img = c0 * (1 + 0.12 * grid[..., None])
    return img.astype(np.float32)


def _downsample(x: np.ndarray, k: int) -> np.ndarray:
    h, w = x.shape[:2]
    return x.reshape(h // k, k, w // k, k, *x.shape[2:]).mean(axis=(1, 3))


def render(spec: Spec, size: int = 64) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Image uint8 [size, size, 3] and masks {garment, sleeve, torso, arm} uint8 [size, size] (0/1)."""
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise ValueError(f"SynthFashion renders sizes {MIN_SIZE}..{MAX_SIZE} px, got {size}.")
    k = _supersampling(size)
    s = size * k
    coords = (np.arange(s, dtype=np.float32) + 0.5) / s * 2.0 - 1.0
    yy, xx = np.meshgrid(coords, coords, indexing="ij")
    u = (xx - spec.shift[0]) / spec.scale
    v = (yy - spec.shift[1]) / spec.scale
    rng = np.random.default_rng(spec.noise_seed)
    body = _BODIES[spec.body_shape]
    skin = np.array(spec.skin, np.float32)

    img = _background(spec, yy, s, rng)

    def paint(region, colour):
        img[region] = colour[region] if np.ndim(colour) == 3 else colour

    # Hair behind the shoulders, legs, body.
    if spec.long_hair:
        paint(_ellipse(u, v, 0, -0.6, 0.19, 0.28) & (v < -0.33), np.array(spec.hair, np.float32))
    dress = spec.category == "dress"
    legs = np.zeros_like(u, bool)
    for side in (-1, 1):
        legs |= _segment(u, v, (side * 0.11, 0.3), (side * 0.14, 1.4), 0.10, 0.08)
    paint(legs, skin * 0.97 if dress else np.array(spec.trousers, np.float32))
    paint((np.abs(u) <= 0.055) & (v >= -0.6) & (v <= -0.4), skin * 0.9)  # neck
    paint(_torso(u, v, body, _HIP_V + 0.04), skin)

    # Garment body: torso (and skirt for dresses); sleeveless tops show the shoulders.
    bottom = _DRESS_HEM_V if dress else _HIP_V
    hw = _torso_halfwidth(v, body)
    if dress:
        flare = np.clip((v - _HIP_V) / (_DRESS_HEM_V - _HIP_V), 0, 1)
        hw = hw + 0.17 * flare
    top = _SHOULDER_V - 0.01 + 0.07 * (u / body.shoulder_w) ** 2
    if spec.sleeve == "sleeveless":
        hw = hw - 0.075 * np.clip((-0.24 - v) / 0.12, 0, 1)
    neck_cut = _ellipse(u, v, 0, _SHOULDER_V - 0.02, 0.085, 0.075)
    garment_body = (v >= top) & (v <= bottom) & (np.abs(u) <= hw) & ~neck_cut

    base = garment_rgb(spec)
    contrast = _contrast_rgb(base)
    mix = _pattern_strength(u, v, spec)[..., None]
    cloth = base * (1 - mix) + contrast * mix
    edge = np.clip(np.abs(u) / np.maximum(hw, 1e-3), 0, 1)
    shade = 1.0 + 0.08 * spec.light * u / 0.3 - 0.18 * edge ** 4 + 0.03 * np.sin(v * 40 + u * 9)
    paint(garment_body, np.clip(cloth * shade[..., None], 0, 1))

    # Arms in front of the body, then sleeves over the arms.
    arms = np.zeros_like(u, bool)
    sleeves = np.zeros_like(u, bool)
    arm_shade = np.ones_like(u)
    for side, (up_a, fo_a) in ((-1, spec.arm_angles[:2]), (1, spec.arm_angles[2:])):
        pts = _arm_points(body, side, up_a, fo_a)
        bare = _arm_region(u, v, pts, 1.0, 0.0, cuff=False) | _hand(u, v, pts)
        covered = _arm_region(u, v, pts, SLEEVE_FRACTION[spec.sleeve], _SLEEVE_PAD, cuff=True)
        arms |= bare | _arm_region(u, v, pts, 1.0, _SLEEVE_PAD, cuff=False)
        paint(bare, skin * 0.95)
        sleeves |= covered
        d = np.abs(u - pts[0][0]) / 0.09
        arm_shade = np.where(covered, 1.0 - 0.12 * np.clip(d - 0.5, 0, 1), arm_shade)
    paint(sleeves, np.clip(cloth * (arm_shade * shade)[..., None], 0, 1))

    # Head on top: face, hair, eyes.
    face = _ellipse(u, v, 0, -0.69, 0.12, 0.15)
    paint(face, skin)
    hair = _ellipse(u, v, 0, -0.77, 0.14, 0.1) & ~_ellipse(u, v, 0, -0.64, 0.13, 0.12)
    paint(hair, np.array(spec.hair, np.float32))
    for side in (-1, 1):
        paint(_ellipse(u, v, side * 0.045, -0.68, 0.015, 0.012), np.array([0.1, 0.08, 0.08], np.float32))
    head = face | hair

    masks_hi = {"garment": (garment_body | sleeves) & ~head, "sleeve": sleeves & ~head,
                "arm": arms & ~head}

    out = _downsample(img, k)
    out = out + rng.normal(0.0, spec.noise_sigma, out.shape).astype(np.float32)
    image = np.clip(np.round(out * 255.0), 0, 255).astype(np.uint8)
    masks = {name: (_downsample(m.astype(np.float32), k) >= 0.5).astype(np.uint8)
             for name, m in masks_hi.items()}
    masks["sleeve"] &= masks["garment"]  # keep sleeve + torso = garment exact after downsampling
    masks["torso"] = masks["garment"] & (1 - masks["sleeve"])
    masks = {name: masks[name] for name in MASK_NAMES}
    return image, masks


class SynthFashion:
    """The dataset: example i of (seed, size), with counterfactuals by attribute name."""

    def __init__(self, seed: int = 0, size: int = 64):
        if not MIN_SIZE <= size <= MAX_SIZE:
            raise ValueError(f"SynthFashion renders sizes {MIN_SIZE}..{MAX_SIZE} px, got {size}.")
        self.seed, self.size = int(seed), int(size)
        self.schema = schema()

    def spec(self, index: int) -> Spec:
        return sample_spec(self.seed, index)

    def example(self, index: int, **changes: str):
        """(image, labels, masks) of example `index`, with any attributes changed (counterfactual)."""
        spec = self.spec(index)
        if changes:
            spec = spec.replace(**changes)
        image, masks = render(spec, self.size)
        return image, spec.labels(), masks

    def arrays(self, start: int, count: int, with_masks: bool = False):
        """Images uint8 [count, H, W, 3] and labels int32 [count, A] (and masks if asked)."""
        images = np.empty((count, self.size, self.size, 3), np.uint8)
        labels = np.empty((count, len(self.schema.attributes)), np.int32)
        masks = {n: np.empty((count, self.size, self.size), np.uint8) for n in MASK_NAMES}
        for i in range(count):
            images[i], labels[i], m = self.example(start + i)
            for n in MASK_NAMES:
                masks[n][i] = m[n]
        return (images, labels, masks) if with_masks else (images, labels)
