"""The cameras of the synthetic network: viewpoint, scene, illumination and image quality.

Geometry (shared by the timeline and the renderer). A camera looks at a flat floor. A
point on the floor at lateral position ``X`` and depth ``d`` appears in the camera's
image plane (in *scene units*, 1 unit = the image height of a person at depth 1) at

    x = fov / 2 + X / d,        y = horizon + tilt / d,

so a person standing at depth ``d`` has feet at ``y`` and an image height ``height / d``.
People walk at depths in ``[D_NEAR, D_FAR]``; static occluders (poles, railings, bushes,
benches) stand nearer to the camera and cover parts of the people passing behind them.

Style families: ``source`` cameras are indoor (warm artificial light, tiled floors, shop
fronts, sharp, little noise); ``target`` cameras are outdoor (colour casts from warm
sunlight to cold shade, asphalt, brick, hedges, blur, noise, low resolution). Within a
family every camera differs from the others; ``camera_variation`` scales how much.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

D_NEAR = 0.8
D_FAR = 1.6
FOV = 4.5  # image width of a camera view, scene units
PPU = 110  # panorama pixels per scene unit
PANO_X0, PANO_X1 = -1.5, FOV + 1.5
PANO_Y0 = -0.8

VIEWS = ("front", "back", "left", "right")
#: sd of the scenes' smooth light field (sun and shade, stains) and its colour share
SCENE_LIGHT = 0.3
SCENE_CHROMA = 0.25
#: share of a scene's floor sections and facade segments drawn from the network's common
#: materials instead of the camera's own (one campus: the same paving, the same buildings)
SHARED_MATERIALS = 0.85


@dataclass(frozen=True)
class Occluder:
    """A static object near the camera: ``kind`` in pole | railing | bench | bush | bin."""

    kind: str
    X: float  # lateral world position of its centre
    d: float  # depth (always < D_NEAR: in front of every walker)
    width: float  # world units
    height: float  # world units
    color: tuple[int, int, int]


@dataclass(frozen=True)
class CameraSpec:
    """Everything that makes one camera look the way it does."""

    camid: int
    layout: str  # corridor | crossing | oblique
    view_probs: tuple[float, float, float, float]  # front, back, left, right
    horizon: float
    tilt: float
    # illumination and colour
    gains: tuple[float, float, float]
    brightness: float
    contrast: float
    gamma: float
    vertical_light: float  # brightness change from top to bottom of a crop
    side_light: float  # brightness change across the scene (sun / shade)
    drift: float  # slow brightness drift over the world clock (amplitude)
    drift_period: float
    drift_phase: float
    # image quality
    blur: float  # Gaussian radius at output resolution
    noise: float  # sd of additive noise, 0..255 scale
    resolution: float  # downsample factor before upsampling back (1 = sharp)
    jpeg_quality: int
    # scene
    indoor: bool
    wall: tuple[int, int, int]
    floor: tuple[int, int, int]
    floor_kind: str  # tiles | checker | asphalt | paving | grass
    wall_kind: str  # shops | plain | brick | building | hedge
    accent: tuple[int, int, int]
    wall_depth: float
    occluders: tuple[Occluder, ...]
    detect_phase: int
    background_seed: int

    def summary(self) -> dict:
        """JSON-ready description for the manifest (floats rounded)."""
        d = asdict(self)
        out = {}
        for k, v in d.items():
            if k in ("occluders",):
                out[k] = [o["kind"] for o in v]
            elif isinstance(v, float):
                out[k] = round(v, 4)
            elif isinstance(v, tuple | list):
                out[k] = [round(x, 4) if isinstance(x, float) else x for x in v]
            else:
                out[k] = v
        out["view_probs"] = dict(zip(VIEWS, out["view_probs"], strict=True))
        return out


def project(cam: CameraSpec, X: float, d: float) -> tuple[float, float, float]:
    """Floor point (X, d) -> image (x, y) in scene units, and the image scale 1/d."""
    return FOV / 2 + X / d, cam.horizon + cam.tilt / d, 1.0 / d


_INDOOR_WALLS = [(232, 226, 210), (220, 220, 215), (205, 195, 175), (190, 200, 205),
                 (240, 235, 225), (200, 185, 170)]
_INDOOR_FLOORS = [(200, 190, 170), (170, 165, 160), (215, 210, 200), (150, 140, 130),
                  (185, 175, 150)]
_OUTDOOR_WALLS = [(150, 80, 60), (170, 165, 155), (120, 115, 110), (190, 170, 140),
                  (135, 100, 80), (60, 110, 55)]
_OUTDOOR_FLOORS = [(95, 95, 98), (130, 125, 118), (150, 140, 125), (110, 105, 100),
                   (140, 120, 100)]
_ACCENTS = [(200, 40, 40), (40, 90, 180), (240, 190, 40), (40, 150, 80), (230, 120, 30),
            (150, 60, 160), (30, 30, 30)]


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def _layout_views(rng: np.random.Generator, layout: str) -> tuple[float, float, float, float]:
    if layout == "corridor":  # people walk towards or away from the camera
        p = _u(rng, 0.35, 0.65)
        probs = (p, 1 - p, 0.0, 0.0)
    elif layout == "crossing":  # people cross the view from side to side
        p = _u(rng, 0.35, 0.65)
        probs = (0.05, 0.05, 0.9 * p, 0.9 * (1 - p))
    else:  # oblique: one diagonal stream, seen from the front and from the side
        if rng.random() < 0.5:
            probs = (0.55, 0.0, 0.45, 0.0)
        else:
            probs = (0.0, 0.55, 0.0, 0.45)
    return tuple(float(x) for x in probs)  # type: ignore[return-value]


def sample_cameras(
    rng: np.random.Generator, n: int, style: str, variation: float = 1.0
) -> list[CameraSpec]:
    """``n`` cameras of the ``style`` family, each with its own look (see module doc)."""
    layouts = ["corridor", "crossing", "oblique"] * (n // 3 + 1)
    layouts = [layouts[i] for i in rng.permutation(len(layouts))[:n]]
    indoor = style == "source"
    cams = []
    walls = _INDOOR_WALLS if indoor else _OUTDOOR_WALLS
    floors = _INDOOR_FLOORS if indoor else _OUTDOOR_FLOORS
    wall_order = rng.permutation(len(walls))
    floor_order = rng.permutation(len(floors))
    v = variation

    def around(neutral: float, lo: float, hi: float) -> float:
        return neutral + v * (_u(rng, lo, hi) - neutral)

    for i in range(n):
        if indoor:
            temp, tint = _u(rng, 0.0, 0.8), _u(rng, -0.2, 0.2)
            brightness = around(1.0, 0.95, 1.12)
            contrast = around(1.0, 0.9, 1.1)
            gamma = around(1.0, 0.95, 1.05)
            blur = around(0.0, 0.2, 0.6)
            noise = around(0.0, 1.5, 4.0)
            res = around(1.0, 0.75, 1.0)
            quality = int(round(around(95.0, 85.0, 95.0)))
            side_light = around(0.0, -0.08, 0.08)
            floor_kind = str(rng.choice(["tiles", "checker", "tiles"]))
            wall_kind = str(rng.choice(["shops", "plain", "shops"]))
        else:
            temp, tint = _u(rng, -1.0, 0.9), _u(rng, -0.6, 0.6)
            brightness = around(1.0, 0.72, 1.3)
            contrast = around(1.0, 0.75, 1.25)
            gamma = around(1.0, 0.8, 1.25)
            blur = around(0.0, 0.4, 1.3)
            noise = around(0.0, 3.0, 9.0)
            res = around(1.0, 0.45, 0.85)
            quality = int(round(around(95.0, 70.0, 88.0)))
            side_light = around(0.0, -0.3, 0.3)
            floor_kind = str(rng.choice(["asphalt", "paving", "grass", "paving"]))
            wall_kind = str(rng.choice(["brick", "building", "hedge", "building"]))
        temp, tint = temp * v, tint * v
        gains = (1.0 + 0.13 * temp - 0.03 * tint, 1.0 + 0.08 * tint,
                 1.0 - 0.15 * temp - 0.03 * tint)
        n_occ = int(rng.choice([0, 0, 1, 1, 2]))
        occluders = []
        for _ in range(n_occ):
            kinds = ["pole", "railing", "bench", "bin"] if indoor else [
                "pole", "railing", "bush", "bench", "bin"]
            kind = str(rng.choice(kinds))
            d = _u(rng, 0.62, 0.75)
            X = _u(rng, -FOV / 2 * d * 0.8, FOV / 2 * d * 0.8)
            size = {"pole": (0.09, 3.0), "railing": (_u(rng, 1.0, 2.0), 0.5),
                    "bench": (_u(rng, 0.9, 1.3), 0.42), "bush": (_u(rng, 0.6, 1.0), 0.55),
                    "bin": (0.32, 0.5)}[kind]
            color = {"pole": (120, 122, 128), "railing": (90, 95, 100), "bench": (110, 80, 50),
                     "bush": (50, 100, 45), "bin": (60, 70, 60)}[kind]
            occluders.append(Occluder(kind, X, d, size[0], size[1], color))
        cams.append(CameraSpec(
            camid=i + 1,
            layout=layouts[i],
            view_probs=_layout_views(rng, layouts[i]),
            horizon=_u(rng, 0.45, 0.6),
            tilt=_u(rng, 0.95, 1.4),
            gains=gains,
            brightness=brightness,
            contrast=contrast,
            gamma=gamma,
            vertical_light=around(0.0, -0.12, 0.12),
            side_light=side_light,
            drift=_u(rng, 0.02, 0.08) * v,
            drift_period=_u(rng, 3000, 12000),
            drift_phase=_u(rng, 0, 2 * np.pi),
            blur=max(0.0, blur),
            noise=max(0.0, noise),
            resolution=float(np.clip(res, 0.3, 1.0)),
            jpeg_quality=int(np.clip(quality, 50, 95)),
            indoor=indoor,
            wall=walls[int(wall_order[i % len(walls)])],
            floor=floors[int(floor_order[i % len(floors)])],
            floor_kind=floor_kind,
            wall_kind=wall_kind,
            accent=_ACCENTS[int(rng.integers(len(_ACCENTS)))],
            wall_depth=_u(rng, 1.8, 3.0),
            occluders=tuple(occluders),
            detect_phase=0,
            background_seed=int(rng.integers(2**31 - 1)),
        ))
    return cams


# ----------------------------------------------------------------------------- scenes
def pano_px(x: float, y: float) -> tuple[float, float]:
    """Scene units -> panorama pixels."""
    return (x - PANO_X0) * PPU, (y - PANO_Y0) * PPU


def pano_size(cam: CameraSpec) -> tuple[int, int]:
    """(width, height) in pixels of the camera's background panorama."""
    y1 = cam.horizon + cam.tilt / 0.55 + 0.6
    return int((PANO_X1 - PANO_X0) * PPU), int((y1 - PANO_Y0) * PPU)


def _shade(c: tuple[int, int, int], f: float) -> tuple[int, int, int]:
    return tuple(int(np.clip(x * f, 0, 255)) for x in c)  # type: ignore[return-value]


def _random_colour(rng: np.random.Generator, indoor: bool,
                   bright: float = 0.3) -> tuple[int, int, int]:
    """A plausible colour of a scene object: muted for most, bright with chance ``bright``."""
    if rng.random() < bright:
        return _ACCENTS[int(rng.integers(len(_ACCENTS)))]
    base = (_INDOOR_WALLS + _INDOOR_FLOORS) if indoor else (_OUTDOOR_WALLS + _OUTDOOR_FLOORS)
    c = base[int(rng.integers(len(base)))]
    return _shade(c, rng.uniform(0.55, 1.25))


def _floor_sections(dr: ImageDraw.ImageDraw, cam: CameraSpec, rng: np.random.Generator,
                    W: int, H: int, floor_top: int) -> None:
    """Sections of the floor in the network's shared materials (not one per camera)."""
    floors = _INDOOR_FLOORS if cam.indoor else _OUTDOOR_FLOORS
    x = -rng.uniform(0, 200)
    while x < W:
        w = rng.uniform(120, 380)
        if rng.random() < SHARED_MATERIALS:
            c = _shade(floors[int(rng.integers(len(floors)))], rng.uniform(0.8, 1.15))
            dr.rectangle([x, floor_top, x + w, H], fill=c + (int(rng.uniform(150, 255)),))
        x += w


def _facade_segments(dr: ImageDraw.ImageDraw, cam: CameraSpec, rng: np.random.Generator,
                     W: int, wall_top: float, floor_top: int) -> None:
    """The facade every few metres: its own shade, a door or a shop window, a poster, a
    sign or a banner."""
    walls = _INDOOR_WALLS if cam.indoor else _OUTDOOR_WALLS
    x = -rng.uniform(0, 120)
    while x < W:
        w = rng.uniform(70, 220)
        if rng.random() < SHARED_MATERIALS:
            c = walls[int(rng.integers(len(walls)))]
            dr.rectangle([x, wall_top, x + w, floor_top], fill=_shade(c, rng.uniform(0.7, 1.2)))
        kind = rng.random()
        if kind < 0.3:  # a door or a shop window
            dw = rng.uniform(0.35, 0.8) * w
            dx = x + rng.uniform(0, w - dw)
            dr.rectangle([dx, floor_top - rng.uniform(0.5, 0.95) * (floor_top - wall_top), dx + dw,
                          floor_top], fill=_random_colour(rng, cam.indoor, 0.05),
                         outline=_shade(cam.wall, 0.5), width=3)
        elif kind < 0.6:  # a poster, a sign or a banner
            pw, ph = rng.uniform(25, 80), rng.uniform(25, 90)
            px = x + rng.uniform(0, max(1.0, w - pw))
            py = rng.uniform(wall_top, max(wall_top + 1, floor_top - ph - 10))
            dr.rectangle([px, py, px + pw, py + ph], fill=_random_colour(rng, cam.indoor))
            if rng.random() < 0.5:
                dr.rectangle([px + 4, py + ph * 0.3, px + pw - 4, py + ph * 0.5],
                             fill=_random_colour(rng, cam.indoor))
        x += w


def _floor_object(dr: ImageDraw.ImageDraw, cam: CameraSpec, rng: np.random.Generator,
                  ox: float, base_y: float, s: float) -> None:
    """One thing standing or lying on the floor at ``(ox, base_y)``, ``s`` pixels a unit:
    a planter or box, a sign post, a bicycle or trolley, a shadow or light patch, a mat."""
    col = _random_colour(rng, cam.indoor)
    kind = int(rng.integers(5))
    if kind == 0:  # planter / box
        w, h = rng.uniform(0.25, 0.6) * s, rng.uniform(0.2, 0.5) * s
        dr.rectangle([ox, base_y - h, ox + w, base_y], fill=col, outline=_shade(col, 0.6))
        if not cam.indoor or rng.random() < 0.5:
            dr.ellipse([ox - 0.1 * w, base_y - h - 0.5 * w, ox + 1.1 * w, base_y - h + 0.2 * w],
                       fill=_shade((60, 115, 50), rng.uniform(0.7, 1.3)))
    elif kind == 1:  # sign post
        dr.rectangle([ox, base_y - 1.1 * s, ox + 0.03 * s, base_y], fill=(90, 90, 95))
        dr.rectangle([ox - 0.12 * s, base_y - 1.1 * s, ox + 0.15 * s, base_y - 0.85 * s],
                     fill=col)
    elif kind == 2:  # bicycle / trolley
        r = 0.13 * s
        for cx in (ox, ox + 0.45 * s):
            dr.ellipse([cx - r, base_y - 2 * r, cx + r, base_y], outline=col, width=3)
        dr.line([ox, base_y - r, ox + 0.22 * s, base_y - 2.4 * r, ox + 0.45 * s, base_y - r],
                fill=col, width=3)
    elif kind == 3:  # shadow or light patch on the floor
        w = rng.uniform(0.5, 1.5) * s
        tone = (0, 0, 0, int(rng.uniform(30, 80))) if rng.random() < 0.6 else (
            255, 255, 240, int(rng.uniform(20, 50)))
        dr.ellipse([ox - w, base_y - 0.08 * w, ox + w, base_y + 0.12 * w], fill=tone)
    else:  # a mat, a drain, a painted marking
        w = rng.uniform(0.3, 0.9) * s
        dr.rectangle([ox - w / 2, base_y - 0.04 * w, ox + w / 2, base_y + 0.06 * w],
                     fill=col + (int(rng.uniform(90, 200)),))


def _scene_clutter(dr: ImageDraw.ImageDraw, cam: CameraSpec, rng: np.random.Generator,
                   W: int, H: int, wall_top: float, floor_top: int) -> None:
    """What makes one part of a scene look unlike another part of it: the facade changes
    every few metres (shade, a door, a window, a poster, a sign), and things stand or lie
    about (planters, bicycles, sign posts, boxes, shadows, patches on the floor). A crop
    sees the part of the scene behind its person, so a camera's crops differ from each
    other as much as their places in the scene do."""
    _floor_sections(dr, cam, rng, W, H, floor_top)
    _facade_segments(dr, cam, rng, W, wall_top, floor_top)
    for _ in range(int(rng.integers(6, 12))):  # objects on the floor, along the scene
        ox = rng.uniform(0, W)
        d = rng.uniform(D_NEAR * 0.9, cam.wall_depth)
        base_y = pano_px(0, cam.horizon + cam.tilt / d)[1]
        _floor_object(dr, cam, rng, ox, base_y, PPU / d)


def _light_field(rng: np.random.Generator, W: int, H: int) -> np.ndarray:
    """A smooth random light-and-colour field over the scene (H x W x 3, around 1): sun and
    shade, stains, weathering. Real backgrounds spread over many colours and vary from
    one part of a scene to the next; flat paint would not."""
    field = np.zeros((H, W, 3), dtype=np.float32)
    for cell, amp in ((160, SCENE_LIGHT), (40, SCENE_LIGHT * 0.6)):
        gh, gw = max(2, H // cell + 2), max(2, W // cell + 2)
        lum = rng.normal(0.0, amp, (gh, gw, 1))
        chroma = rng.normal(0.0, amp * SCENE_CHROMA, (gh, gw, 3))
        grid = (lum + chroma).astype(np.float32)
        up = np.stack([np.asarray(Image.fromarray(grid[..., c]).resize(
            (W, H), Image.Resampling.BICUBIC)) for c in range(3)], axis=-1)
        field += up
    return np.clip(1.0 + field, 0.4, 1.8)


def _far_background(dr: ImageDraw.ImageDraw, cam: CameraSpec, W: int, wall_base: float) -> None:
    """Behind everything: the back wall indoors, a sky gradient outdoors."""
    if cam.indoor:
        dr.rectangle([0, 0, W, wall_base], fill=cam.wall)
        return
    for y in range(0, int(wall_base) + 1, 4):
        t = y / max(wall_base, 1)
        dr.rectangle([0, y, W, y + 4], fill=_shade((150, 185, 225), 1.1 - 0.25 * t))


def _shop_fronts(dr: ImageDraw.ImageDraw, cam: CameraSpec, rng: np.random.Generator, W: int,
                 top: float, wall_base: float) -> None:
    """A row of shops: sign, shop window with goods behind the glass, a pillar between."""
    x = -rng.uniform(0, 200)
    while x < W:
        w = rng.uniform(160, 300)
        dr.rectangle([x, top, x + w, wall_base], fill=_shade(cam.wall, rng.uniform(0.85, 1.05)))
        sign = _ACCENTS[int(rng.integers(len(_ACCENTS)))]
        dr.rectangle([x + 8, top + 8, x + w - 8, top + 30], fill=sign)
        glass = tuple(int(rng.uniform(lo, lo + 45)) for lo in (110, 130, 150))
        dr.rectangle([x + 12, top + 40, x + w - 12, wall_base - 4], fill=glass,
                     outline=(70, 70, 75), width=4)
        for _ in range(int(rng.integers(2, 6))):  # goods / people behind the glass
            gx = rng.uniform(x + 16, x + w - 30)
            gy = rng.uniform(top + 60, max(top + 60, wall_base - 30))
            col = _ACCENTS[int(rng.integers(len(_ACCENTS)))]
            dr.rectangle([gx, gy, gx + rng.uniform(8, 25), wall_base - 6], fill=col + (120,))
        dr.line([x + 20, top + 45, x + w * 0.5, wall_base - 10], fill=(255, 255, 255, 60),
                width=6)
        x += w + rng.uniform(20, 90)
        dr.rectangle([x - 18, top - 40, x - 4, wall_base], fill=_shade(cam.wall, 0.75))


def _plain_wall(dr: ImageDraw.ImageDraw, cam: CameraSpec, rng: np.random.Generator, W: int,
                top: float, wall_base: float) -> None:
    """A painted wall with posters and a door or two."""
    dr.rectangle([0, top, W, wall_base], fill=cam.wall)
    for _ in range(int(rng.integers(3, 7))):
        px = rng.uniform(0, W)
        pw, ph = rng.uniform(30, 70), rng.uniform(40, 90)
        py = rng.uniform(top + 20, max(top + 20, wall_base - ph - 20))
        poster = _ACCENTS[int(rng.integers(len(_ACCENTS)))]
        dr.rectangle([px, py, px + pw, py + ph], fill=poster)
    for _ in range(int(rng.integers(1, 3))):  # doors
        px = rng.uniform(0, W - 90)
        dr.rectangle([px, wall_base - 170, px + 80, wall_base], fill=_shade(cam.wall, 0.6),
                     outline=(60, 60, 60), width=3)


def _brick_wall(dr: ImageDraw.ImageDraw, cam: CameraSpec, rng: np.random.Generator, W: int,
                top: float, wall_base: float) -> None:
    """A brick wall: courses of bricks, every other one offset by half a brick."""
    dr.rectangle([0, top, W, wall_base], fill=cam.wall)
    row = 10
    for j, y in enumerate(np.arange(top, wall_base, row)):
        off = 0 if j % 2 else 14
        dr.line([0, y, W, y], fill=_shade(cam.wall, 0.7), width=2)
        for x in np.arange(off, W, 28):
            dr.line([x, y, x, y + row], fill=_shade(cam.wall, 0.7), width=2)


def _building(dr: ImageDraw.ImageDraw, cam: CameraSpec, rng: np.random.Generator, W: int,
              top: float, wall_base: float) -> None:
    """A building's facade with rows of windows."""
    dr.rectangle([0, top - 120, W, wall_base], fill=cam.wall)
    for y in np.arange(top - 100, wall_base - 40, 70):
        for x in np.arange(rng.uniform(0, 40), W, 60):
            dr.rectangle([x, y, x + 34, y + 44], fill=(90, 110, 130),
                         outline=_shade(cam.wall, 0.6))


def _hedge(dr: ImageDraw.ImageDraw, cam: CameraSpec, rng: np.random.Generator, W: int,
           top: float, wall_base: float) -> None:
    """A hedge of leafy blobs, with a few trees above it."""
    dr.rectangle([0, top + 20, W, wall_base], fill=(55, 105, 50))
    for _ in range(int(W / 18)):
        hx, hy = rng.uniform(0, W), rng.uniform(top + 10, max(top + 10, wall_base - 5))
        r = rng.uniform(8, 20)
        dr.ellipse([hx - r, hy - r, hx + r, hy + r],
                   fill=_shade((60, 115, 50), rng.uniform(0.7, 1.2)))
    for _ in range(int(rng.integers(2, 5))):
        tx = rng.uniform(0, W)
        dr.rectangle([tx - 8, top - 60, tx + 8, top + 60], fill=(80, 60, 40))
        for _ in range(8):
            ox, oy, r = rng.uniform(-60, 60), rng.uniform(-150, -40), rng.uniform(25, 50)
            dr.ellipse([tx + ox - r, top + oy - r, tx + ox + r, top + oy + r],
                       fill=_shade((50, 110, 45), rng.uniform(0.7, 1.2)))


#: the scene's back, drawn between its top edge and the floor, by ``CameraSpec.wall_kind``
_WALLS = {"shops": _shop_fronts, "plain": _plain_wall, "brick": _brick_wall,
          "building": _building, "hedge": _hedge}


def _checker(dr: ImageDraw.ImageDraw, cam: CameraSpec, depths: np.ndarray) -> None:
    """Every other floor tile a shade darker, in perspective."""
    alt = _shade(cam.floor, 0.82)
    Xs = np.arange(-12, 12.01, 0.35)
    for j in range(len(depths) - 1):
        d0, d1 = depths[j], depths[j + 1]
        for i in range(len(Xs) - 1):
            if (i + j) % 2:
                continue
            corners = ((Xs[i], d0), (Xs[i + 1], d0), (Xs[i + 1], d1), (Xs[i], d1))
            quad = [pano_px(FOV / 2 + X / d, cam.horizon + cam.tilt / d) for X, d in corners]
            dr.polygon(quad, fill=alt)


def _floor_joints(dr: ImageDraw.ImageDraw, cam: CameraSpec, W: int, depths: np.ndarray) -> None:
    """The joints of tiles or paving: lines across at each depth, lines towards the horizon."""
    line = _shade(cam.floor, 0.78)
    ys = [pano_px(0, cam.horizon + cam.tilt / d)[1] for d in depths]
    if cam.floor_kind == "checker":
        _checker(dr, cam, depths)
    for y in ys:
        dr.line([0, y, W, y], fill=line, width=2)
    step = 0.35 if cam.floor_kind != "paving" else 0.25
    for X in np.arange(-12, 12.01, step):
        xa, ya = pano_px(FOV / 2 + X / cam.wall_depth, cam.horizon + cam.tilt / cam.wall_depth)
        xb, yb = pano_px(FOV / 2 + X / 0.5, cam.horizon + cam.tilt / 0.5)
        dr.line([xa, ya, xb, yb], fill=line, width=2)


def _floor(dr: ImageDraw.ImageDraw, cam: CameraSpec, W: int, H: int, floor_top: int) -> None:
    """The floor by ``CameraSpec.floor_kind``: tiles, checker, paving, grass or asphalt."""
    dr.rectangle([0, floor_top, W, H], fill=cam.floor)
    depths = np.arange(0.4, cam.wall_depth, 0.35 if cam.floor_kind != "paving" else 0.18)
    if cam.floor_kind in ("tiles", "checker", "paving"):
        _floor_joints(dr, cam, W, depths)
    elif cam.floor_kind == "grass":
        dr.rectangle([0, floor_top, W, floor_top + (H - floor_top) * 0.25], fill=(80, 125, 60))
        y0 = floor_top + (H - floor_top) * 0.25
        dr.rectangle([0, y0, W, H], fill=(120, 118, 112))
    else:  # asphalt with lane markings
        for X in (-1.5, 1.5):
            pts = [pano_px(FOV / 2 + X / dd, cam.horizon + cam.tilt / dd)
                   for dd in (cam.wall_depth, 0.5)]
            dr.line([pts[0], pts[1]], fill=(215, 210, 190), width=6)


def _skirting_and_reflections(dr: ImageDraw.ImageDraw, cam: CameraSpec,
                              rng: np.random.Generator, W: int, floor_top: int) -> None:
    """The wall's bottom edge (skirting) over the floor lines; indoors, reflections of the
    ceiling lights on a polished floor."""
    dr.rectangle([0, floor_top - 3, W, floor_top + 2], fill=_shade(cam.wall, 0.55))
    if cam.indoor:
        for _ in range(6):
            lx = rng.uniform(0, W)
            dr.ellipse([lx - 60, floor_top + 20, lx + 60, floor_top + 60], fill=(255, 255, 255, 25))


def _texture_and_light(img: Image.Image, cam: CameraSpec, rng: np.random.Generator) -> Image.Image:
    """Fine noise, the smooth light field, the light's fall-off across the scene, and a
    slight softening."""
    W, H = img.size
    arr = np.asarray(img, dtype=np.float32)
    arr += rng.normal(0.0, 6.0 if not cam.indoor else 3.0, arr.shape[:2])[..., None]
    arr *= _light_field(rng, W, H)
    cols = np.linspace(-1.0, 1.0, W, dtype=np.float32)
    arr *= (1.0 + cam.side_light * cols)[None, :, None]
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    return img.filter(ImageFilter.GaussianBlur(0.8))


def render_background(cam: CameraSpec) -> Image.Image:
    """The camera's empty scene as one wide panorama: the far background and the wall
    (``_WALLS``), the floor, the clutter of things along both, then texture and light."""
    rng = np.random.default_rng(cam.background_seed)
    W, H = pano_size(cam)
    img = Image.new("RGB", (W, H), cam.floor)
    dr = ImageDraw.Draw(img, "RGBA")
    _, wall_base = pano_px(0, cam.horizon + cam.tilt / cam.wall_depth)
    _far_background(dr, cam, W, wall_base)
    top = wall_base - (rng.uniform(1.2, 2.0) / cam.wall_depth) * PPU * 2.0
    _WALLS.get(cam.wall_kind, _hedge)(dr, cam, rng, W, top, wall_base)
    floor_top = int(wall_base)
    _floor(dr, cam, W, H, floor_top)
    _scene_clutter(dr, cam, rng, W, H, top, floor_top)
    _skirting_and_reflections(dr, cam, rng, W, floor_top)
    return _texture_and_light(img, cam, rng)
