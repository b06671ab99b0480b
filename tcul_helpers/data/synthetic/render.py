"""Pixels: draw one detector crop of a camera scene with the people in it.

Each image is drawn at twice its size (anti-aliasing), then passes through the camera:
resolution loss (down- then up-sampling; people far away lose more), blur, illumination
and colour cast, a slow brightness drift over the world clock, noise, and JPEG at the
camera's quality. Everything random in one image comes from one generator seeded by
``(seed, domain, image index)``, so images can be drawn in any order or in parallel and
stay byte-identical.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from .appearance import Appearance, random_appearance
from .cameras import (
    FOV,
    PANO_X0,
    PANO_X1,
    PANO_Y0,
    PPU,
    CameraSpec,
    pano_size,
    project,
    render_background,
)
from .timeline import ImagePlan

SS = 2  # supersampling factor of the drawing canvas
#: body width relative to the first generator's stick figures (1.0); a pedestrian's
#: shoulders are about a quarter of its height, so a walking person fills about half of a
#: tight 2:1 detector box (data/README.md, "Calibration")
BODY_GIRTH = 1.6
#: the detector's box height over the person's height, (min, max): DPM boxes are tight
BOX_MARGIN = (1.02, 1.1)
Color = tuple[int, int, int]
#: where the vertical lines of a checked top cross it (fractions of its width), front / side
#: view: the very numbers np.linspace gives, worked out once instead of for every person
_CHECK_LINES = {False: tuple(np.linspace(0.15, 0.85, 4)), True: tuple(np.linspace(0.15, 0.85, 2))}


@dataclass
class RenderContext:
    """What a renderer (or a worker process) needs to draw any image of one world."""

    seed: int
    domain: int  # 0 source, 1 target (keeps the two presets' image streams apart)
    palette: str
    image_size: tuple[int, int]  # (height, width)
    cameras: list[CameraSpec]
    people: list[Appearance]
    _panoramas: dict[int, Image.Image] = field(default_factory=dict)

    def panorama(self, camid: int) -> Image.Image:
        """The camera's background, drawn once per process."""
        if camid not in self._panoramas:
            self._panoramas[camid] = render_background(self.cameras[camid - 1])
        return self._panoramas[camid]


def _dark(c: Color, f: float = 0.7) -> Color:
    return (int(c[0] * f), int(c[1] * f), int(c[2] * f))


# ----------------------------------------------------------------------------- a person
Point = tuple[float, float]
Limb = tuple[Point, Point]  # (shoulder or hip, hand or ankle)


@dataclass(slots=True)
class _Figure:
    """One person at its size and pose: where the parts of its body are, in canvas pixels
    (``H``: its height; ``ys`` / ``yw`` / ``yl`` / ``hem``: shoulders, waist, legs' start
    and the top's hem; ``sw`` / ``hw``: half widths at shoulders and hips)."""

    app: Appearance
    view: int
    fx: float
    H: float
    side: bool
    direction: float  # -1 walking left, +1 otherwise
    ys: float
    yw: float
    yl: float
    hem: float
    sw: float
    hw: float
    lw: int  # leg width
    aw: int  # arm width
    pat_w: int  # width of the lines on the clothes
    sleeve_col: Color
    sleeve_frac: float  # how much of the arm the sleeve covers
    head_cy: float
    hr_x: float
    head: list[float]
    hair_box: list[float]
    lean: float
    legs: list[Limb]
    arms: list[Limb]

    def xl(self, y: float) -> float:
        """Left edge of the top at height ``y`` (between shoulders and hem)."""
        return self.fx - (self.sw + (self.hw - self.sw) * (y - self.ys) / (self.hem - self.ys))

    def xr(self, y: float) -> float:
        """Right edge of the top at height ``y``."""
        return self.fx + (self.sw + (self.hw - self.sw) * (y - self.ys) / (self.hem - self.ys))


def _limbs(fx: float, fy: float, H: float, b: float, ys: float, yl: float, sw: float,
           side: bool, direction: float, phase: float) -> tuple[list[Limb], list[Limb]]:
    """Legs and arms at walking ``phase``: in profile they swing back and forth, seen from
    the front or back the feet lift and the hands swing a little."""
    if side:
        leg_ang = [0.42 * math.sin(phase + k * math.pi) for k in (0, 1)]
        legs = [((fx, yl), (fx + direction * math.sin(a) * 0.5 * H, yl + math.cos(a) * 0.5 * H))
                for a in leg_ang]
        arm_ang = [-0.55 * math.sin(phase + k * math.pi) for k in (0, 1)]
        sh = (fx, ys + 0.03 * H)
        arms = [(sh, (fx + direction * math.sin(a) * 0.34 * H, sh[1] + math.cos(a) * 0.34 * H))
                for a in arm_ang]
        return legs, arms
    legs = []
    for k, sgn in enumerate((-1.0, 1.0)):
        lift = 0.03 * H * max(0.0, math.sin(phase + k * math.pi))
        x = fx + sgn * 0.048 * H * b
        legs.append(((x, yl), (x + sgn * 0.006 * H, fy - lift)))
    arms = []
    for k, sgn in enumerate((-1.0, 1.0)):
        swing = math.sin(phase + k * math.pi)
        sh = (fx + sgn * (sw - 0.02 * H), ys + 0.025 * H)
        hand = (sh[0] + sgn * 0.03 * H, sh[1] + (0.33 - 0.03 * abs(swing)) * H)
        arms.append((sh, hand))
    return legs, arms


def _figure(app: Appearance, view: int, fx: float, fy: float, H: float,
            phase: float) -> _Figure:
    """The body's proportions (the person's height and build, the top's cut) and pose."""
    H = H * app.height
    b = app.build * BODY_GIRTH
    top = fy - H
    side = view >= 2
    direction = -1.0 if view == 2 else 1.0
    ys = top + 0.17 * H  # shoulders
    yw = top + 0.47 * H  # waist
    yl = top + 0.50 * H  # legs start
    hem = top + (0.56 if app.upper_type == "jacket" else 0.52) * H
    sw = (0.068 if side else 0.115) * H * b
    hw = (0.07 if side else 0.095) * H * b
    lw = max(2, int(0.066 * H * b))
    aw = max(2, int(0.05 * H * b))
    sleeve_col = app.upper2 if app.pattern == "twotone" else app.upper
    sleeve_frac = 0.35 if app.upper_type == "tshirt" else 1.0
    legs, arms = _limbs(fx, fy, H, b, ys, yl, sw, side, direction, phase)
    head_cy = top + 0.068 * H
    hr_y = 0.068 * H
    hr_x = (0.056 if side else 0.05) * H
    head = [fx - hr_x, head_cy - hr_y, fx + hr_x, head_cy + hr_y]
    hair_box = [head[0] - 0.006 * H, head[1] - 0.008 * H, head[2] + 0.006 * H, head[3]]
    lean = direction * 0.015 * H if side else 0.0
    return _Figure(app, view, fx, H, side, direction, ys, yw, yl, hem, sw, hw, lw, aw,
                   max(1, int(0.018 * H)), sleeve_col, sleeve_frac, head_cy, hr_x, head,
                   hair_box, lean, legs, arms)


def _draw_leg(dr: ImageDraw.ImageDraw, p: _Figure, leg: Limb, shade: float = 1.0) -> None:
    """One leg: trousers, or bare skin under shorts or a skirt, and its shoe."""
    app, H = p.app, p.H
    (hx, hy), (ax, ay) = leg
    skin, low = _dark(app.skin, shade), _dark(app.lower, shade)
    if app.lower_type == "trousers":
        dr.line([hx, hy, ax, ay], fill=low, width=p.lw)
    else:
        dr.line([hx, hy, ax, ay], fill=skin, width=max(2, int(p.lw * 0.8)))
        if app.lower_type == "shorts":
            f = 0.42
            dr.line([hx, hy, hx + (ax - hx) * f, hy + (ay - hy) * f], fill=low, width=p.lw + 1)
    shoe = _dark(app.shoes, shade)
    if p.side:
        dr.ellipse([ax - 0.03 * H + p.direction * 0.02 * H, ay - 0.025 * H,
                    ax + 0.03 * H + p.direction * 0.02 * H, ay + 0.006 * H], fill=shoe)
    else:
        dr.ellipse([ax - 0.03 * H, ay - 0.026 * H, ax + 0.03 * H, ay + 0.006 * H], fill=shoe)


def _draw_arm(dr: ImageDraw.ImageDraw, p: _Figure, arm: Limb, shade: float = 1.0) -> None:
    """One arm: bare skin below a short sleeve, the sleeve, the hand."""
    app = p.app
    (sx, sy), (hx, hy) = arm
    mx, my = sx + (hx - sx) * p.sleeve_frac, sy + (hy - sy) * p.sleeve_frac
    if p.sleeve_frac < 1.0:
        dr.line([sx, sy, hx, hy], fill=_dark(app.skin, shade), width=max(2, int(p.aw * 0.85)))
    dr.line([sx, sy, mx, my], fill=_dark(p.sleeve_col, shade), width=p.aw + 1)
    r = 0.022 * p.H
    dr.ellipse([hx - r, hy - r, hx + r, hy + r], fill=_dark(app.skin, shade))


def _draw_backpack(dr: ImageDraw.ImageDraw, p: _Figure, x0: float, x1: float) -> None:
    """A backpack between ``x0`` and ``x1``, with its front pocket."""
    app, H, ys = p.app, p.H, p.ys
    dr.rounded_rectangle([x0, ys + 0.01 * H, x1, ys + 0.27 * H], radius=0.04 * H,
                         fill=app.bag_color, outline=_dark(app.bag_color, 0.6))
    dr.rectangle([x0 + 0.2 * (x1 - x0), ys + 0.16 * H, x1 - 0.2 * (x1 - x0), ys + 0.24 * H],
                 outline=_dark(app.bag_color, 0.6), width=max(1, int(0.006 * H)))


def _draw_behind(dr: ImageDraw.ImageDraw, p: _Figure) -> None:
    """What the torso hides part of: in profile the far leg and arm (in shade), the
    backpack and long hair; from the front long hair; from the front or back both legs."""
    app, H, fx = p.app, p.H, p.fx
    if p.side:
        _draw_leg(dr, p, p.legs[0], 0.75)
        _draw_arm(dr, p, p.arms[0], 0.75)
        if app.bag == "backpack":
            back = fx - p.direction * p.sw
            _draw_backpack(dr, p, min(back, back - p.direction * 0.1 * H),
                           max(back, back - p.direction * 0.1 * H))
        if app.hair_style == "long":
            hx = fx - p.direction * 0.02 * H
            dr.rectangle([hx - 0.045 * H, p.head_cy, hx + 0.045 * H, p.ys + 0.1 * H],
                         fill=app.hair)
        return
    if app.hair_style == "long" and p.view == 0:
        dr.rectangle([fx - p.hr_x * 1.05, p.head_cy, fx + p.hr_x * 1.05, p.ys + 0.07 * H],
                     fill=app.hair)
    for leg in p.legs:
        _draw_leg(dr, p, leg)


def _draw_waist(dr: ImageDraw.ImageDraw, p: _Figure) -> None:
    """The top of the trousers, shorts or skirt (a skirt flares down over the legs)."""
    app, H, fx, hw = p.app, p.H, p.fx, p.hw
    if app.lower_type == "skirt":
        dr.polygon([(fx - hw, p.yw), (fx + hw, p.yw), (fx + hw * 1.6, p.yl + 0.19 * H),
                    (fx - hw * 1.6, p.yl + 0.19 * H)], fill=app.lower)
    else:
        dr.polygon([(fx - hw, p.yw), (fx + hw, p.yw), (fx + hw, p.yl + 0.03 * H),
                    (fx - hw, p.yl + 0.03 * H)], fill=app.lower)


def _draw_pattern(dr: ImageDraw.ImageDraw, p: _Figure) -> None:
    """The top's pattern: stripes, checks (stripes crossed by lines) or a two-tone yoke."""
    app, H, ys, hem, lean = p.app, p.H, p.ys, p.hem, p.lean
    xl, xr = p.xl, p.xr
    if app.pattern in ("stripes", "checked"):
        alpha = 255 if app.pattern == "stripes" else 150
        y = ys + 0.03 * H
        while y < hem - 0.01 * H:
            y2 = y + 0.02 * H
            dr.polygon([(xl(y) + lean, y), (xr(y) + lean, y), (xr(y2), y2), (xl(y2), y2)],
                       fill=app.upper2 + (alpha,))
            y += 0.048 * H
        if app.pattern == "checked":
            for f in _CHECK_LINES[p.side]:
                xa, xb = xl(ys) + f * (xr(ys) - xl(ys)), xl(hem) + f * (xr(hem) - xl(hem))
                dr.line([xa + lean, ys, xb, hem], fill=app.upper2 + (150,), width=p.pat_w)
    elif app.pattern == "twotone":
        y2 = ys + 0.08 * H
        dr.polygon([(xl(ys) + lean, ys), (xr(ys) + lean, ys), (xr(y2), y2), (xl(y2), y2)],
                   fill=app.upper2)


def _draw_front_of_top(dr: ImageDraw.ImageDraw, p: _Figure) -> None:
    """Seen from the front: an open jacket over the inner top, and the logo."""
    app, H, fx, ys, hem = p.app, p.H, p.fx, p.ys, p.hem
    if app.upper_type == "jacket":
        iw = 0.3 * p.sw
        dr.polygon([(fx - iw, ys + 0.01 * H), (fx + iw, ys + 0.01 * H), (fx + iw * 0.8, hem),
                    (fx - iw * 0.8, hem)], fill=app.inner)
        dr.line([fx - iw, ys, fx - iw * 0.8, hem], fill=_dark(app.upper, 0.6), width=p.pat_w)
        dr.line([fx + iw, ys, fx + iw * 0.8, hem], fill=_dark(app.upper, 0.6), width=p.pat_w)
    if app.pattern == "logo":
        cy, rr = ys + 0.1 * H, 0.045 * H
        box = [fx - rr, cy - rr, fx + rr, cy + rr]
        if app.logo_shape == "circle":
            dr.ellipse(box, fill=app.upper2)
        elif app.logo_shape == "square":
            dr.rectangle(box, fill=app.upper2)
        else:
            dr.polygon([(fx, cy - rr), (fx + rr, cy + rr), (fx - rr, cy + rr)], fill=app.upper2)


def _draw_top(dr: ImageDraw.ImageDraw, p: _Figure) -> None:
    """The top: torso and shoulders, its pattern, its front, the shaded hem."""
    H, ys, hem, lean = p.H, p.ys, p.hem, p.lean
    xl, xr = p.xl, p.xr
    upper = p.app.upper
    dr.polygon([(xl(ys) + lean, ys), (xr(ys) + lean, ys), (xr(hem), hem), (xl(hem), hem)],
               fill=upper)
    r = 0.035 * H
    for x in (xl(ys) + r * 0.8 + lean, xr(ys) - r * 0.8 + lean):
        dr.ellipse([x - r, ys - 0.012 * H, x + r, ys + 2 * r - 0.012 * H], fill=upper)
    _draw_pattern(dr, p)
    if p.view == 0:
        _draw_front_of_top(dr, p)
    dr.line([xl(hem), hem, xr(hem), hem], fill=_dark(upper, 0.75), width=p.pat_w)


def _draw_bags(dr: ImageDraw.ImageDraw, p: _Figure) -> None:
    """Bags on the body: a backpack seen from the back (or its straps from the front), a
    shoulder bag on its strap."""
    app, H, fx, ys, sw = p.app, p.H, p.fx, p.ys, p.sw
    if app.bag == "backpack":
        if p.view == 1:
            _draw_backpack(dr, p, fx - 0.8 * sw, fx + 0.8 * sw)
        elif p.view == 0:
            for sgn in (-1, 1):
                dr.line([fx + sgn * 0.6 * sw, ys, fx + sgn * 0.55 * sw, ys + 0.2 * H],
                        fill=app.bag_color, width=max(2, int(0.022 * H)))
    if app.bag == "shoulder":
        bs = app.bag_side if not p.side else -p.direction
        dr.line([fx - bs * 0.6 * sw, ys, fx + bs * (p.hw + 0.02 * H), p.yw],
                fill=_dark(app.bag_color, 0.8), width=max(1, int(0.012 * H)))
        bx = fx + bs * (p.hw + 0.03 * H)
        dr.rectangle([bx - 0.05 * H, p.yw - 0.03 * H, bx + 0.05 * H, p.yw + 0.06 * H],
                     fill=app.bag_color, outline=_dark(app.bag_color, 0.6))


def _draw_in_front(dr: ImageDraw.ImageDraw, p: _Figure) -> None:
    """The limbs in front of the torso (the near leg and arm in profile, else both arms),
    and a handbag in the hand on its side."""
    if p.side:
        _draw_leg(dr, p, p.legs[1])
        _draw_arm(dr, p, p.arms[1])
    else:
        for arm in p.arms:
            _draw_arm(dr, p, arm)
    app, H = p.app, p.H
    if app.bag == "handbag":
        k = 0 if app.bag_side < 0 else 1
        hx, hy = p.arms[min(k, len(p.arms) - 1)][1]
        dr.rectangle([hx - 0.04 * H, hy, hx + 0.04 * H, hy + 0.07 * H], fill=app.bag_color,
                     outline=_dark(app.bag_color, 0.6))


def _draw_profile(dr: ImageDraw.ImageDraw, p: _Figure) -> None:
    """A face in profile: nose, hair over the back of the head, one eye."""
    app, H, head_cy = p.app, p.H, p.head_cy
    nx = p.fx + p.direction * p.hr_x
    dr.ellipse([nx - 0.012 * H, head_cy - 0.005 * H, nx + 0.012 * H, head_cy + 0.02 * H],
               fill=app.skin)
    if app.hair_style != "bald":
        start = 90 if p.direction > 0 else -90
        dr.pieslice(p.hair_box, start, start + 180, fill=app.hair)
        dr.chord(p.hair_box, 180, 360, fill=app.hair)
    ex = p.fx + p.direction * p.hr_x * 0.55
    er = max(1.0, 0.008 * H)
    dr.ellipse([ex - er, head_cy - er, ex + er, head_cy + er], fill=(30, 25, 25))


def _draw_face(dr: ImageDraw.ImageDraw, p: _Figure) -> None:
    """A face from the front: hair on top and at the temples, two eyes."""
    app, H, head_cy, hair_box = p.app, p.H, p.head_cy, p.hair_box
    if app.hair_style != "bald":
        dr.chord(hair_box, 180, 360, fill=app.hair)
        dr.rectangle([hair_box[0], head_cy - 0.01 * H, hair_box[0] + 0.014 * H,
                      head_cy + 0.03 * H], fill=app.hair)
        dr.rectangle([hair_box[2] - 0.014 * H, head_cy - 0.01 * H, hair_box[2],
                      head_cy + 0.03 * H], fill=app.hair)
    er = max(1.0, 0.008 * H)
    for sgn in (-1, 1):
        ex = p.fx + sgn * 0.021 * H
        dr.ellipse([ex - er, head_cy + 0.004 * H - er, ex + er, head_cy + 0.004 * H + er],
                   fill=(30, 25, 25))


def _draw_head(dr: ImageDraw.ImageDraw, p: _Figure) -> None:
    """Neck and head: the back of the head (hair, long hair down the back), a profile or
    a face."""
    app, H, fx, head_cy = p.app, p.H, p.fx, p.head_cy
    dr.rectangle([fx - 0.022 * H, head_cy + 0.04 * H, fx + 0.022 * H, p.ys + 0.01 * H],
                 fill=_dark(app.skin, 0.9))
    if p.view == 1:  # back of the head
        dr.ellipse(p.head, fill=app.skin if app.hair_style == "bald" else app.hair)
        if app.hair_style == "long":
            dr.rectangle([fx - p.hr_x * 1.05, head_cy, fx + p.hr_x * 1.05, p.ys + 0.12 * H],
                         fill=app.hair)
        return
    dr.ellipse(p.head, fill=app.skin)
    if p.side:
        _draw_profile(dr, p)
    else:
        _draw_face(dr, p)


def _draw_headwear(dr: ImageDraw.ImageDraw, p: _Figure) -> None:
    """On top of the head: a bun, a cap with its peak (not seen from the back)."""
    app, H, fx, hr_x, head, hair_box = p.app, p.H, p.fx, p.hr_x, p.head, p.hair_box
    if app.hair_style == "bun":
        r = 0.03 * H
        bx = fx - p.direction * hr_x * 0.8 if p.side else fx
        dr.ellipse([bx - r, head[1] - r * 0.9, bx + r, head[1] + r * 1.1], fill=app.hair)
    if app.cap is not None:
        dr.chord([hair_box[0], hair_box[1] - 0.004 * H, hair_box[2], hair_box[3]], 180, 360,
                 fill=app.cap)
        if p.view != 1:
            bx0 = fx if p.side else fx - hr_x
            bx1 = fx + p.direction * hr_x * 1.7 if p.side else fx + hr_x
            dr.rectangle([min(bx0, bx1), p.head_cy - 0.012 * H, max(bx0, bx1),
                          p.head_cy - 0.002 * H], fill=_dark(app.cap, 0.8))


def draw_person(
    dr: ImageDraw.ImageDraw,
    app: Appearance,
    view: int,
    fx: float,
    fy: float,
    H: float,
    phase: float,
) -> None:
    """Draw one walking person, feet at (fx, fy), ``H`` pixels tall, seen from ``view``.

    ``view``: 0 front (face, logo, backpack straps), 1 back (hair, backpack, no logo),
    2 / 3 walking left / right (profile: one arm and leg in front, backpack behind).
    Back to front: the shadow, what the torso hides, the clothes (waist, top), the bags,
    the limbs in front, the head and what is on it.
    """
    p = _figure(app, view, fx, fy, H, phase)
    H = p.H
    dr.ellipse([fx - 0.14 * H, fy - 0.02 * H, fx + 0.14 * H, fy + 0.025 * H], fill=(0, 0, 0, 70))
    _draw_behind(dr, p)
    _draw_waist(dr, p)
    _draw_top(dr, p)
    _draw_bags(dr, p)
    _draw_in_front(dr, p)
    _draw_head(dr, p)
    _draw_headwear(dr, p)


# ----------------------------------------------------------------------- static objects
def _draw_occluder(dr: ImageDraw.ImageDraw, cam: CameraSpec, occ, to_px, rng) -> None:
    x, y_bottom, scale = project(cam, occ.X, occ.d)
    w, h = occ.width * scale, occ.height * scale
    x0, y0 = to_px(x - w / 2, y_bottom - h)
    x1, y1 = to_px(x + w / 2, y_bottom)
    col, edge = occ.color, _dark(occ.color, 0.6)
    lw = max(2, int((y1 - y0) * 0.05))
    if occ.kind == "pole":
        dr.rectangle([x0, y0, x1, y1], fill=col, outline=edge)
        dr.line([x0 + (x1 - x0) * 0.3, y0, x0 + (x1 - x0) * 0.3, y1], fill=(200, 200, 205), width=2)
    elif occ.kind == "railing":
        for f in (0.0, 0.45):
            dr.rectangle([x0, y0 + f * (y1 - y0), x1, y0 + f * (y1 - y0) + lw], fill=col)
        for px in np.linspace(x0, x1, 7):
            dr.line([px, y0, px, y1], fill=col, width=lw)
    elif occ.kind == "bench":
        for f in (0.05, 0.25, 0.5):
            dr.rectangle([x0, y0 + f * (y1 - y0), x1, y0 + f * (y1 - y0) + lw * 1.4], fill=col,
                         outline=edge)
        for px in (x0 + (x1 - x0) * 0.1, x1 - (x1 - x0) * 0.1):
            dr.line([px, y0 + 0.5 * (y1 - y0), px, y1], fill=(50, 50, 50), width=lw)
    elif occ.kind == "bush":
        blob = np.random.default_rng(int(abs(occ.X) * 1e6) % (2**31))
        for _ in range(14):
            cx, cy = blob.uniform(x0, x1), blob.uniform(y0 + (y1 - y0) * 0.3, y1)
            r = blob.uniform(0.18, 0.32) * (y1 - y0)
            f = blob.uniform(0.7, 1.2)
            dr.ellipse([cx - r, cy - r, cx + r, cy + r], fill=_dark(col, f))
    else:  # bin
        dr.rounded_rectangle([x0, y0, x1, y1], radius=(x1 - x0) * 0.15, fill=col, outline=edge)
        dr.rectangle([x0 - 2, y0, x1 + 2, y0 + lw], fill=_dark(col, 0.8))


# ------------------------------------------------------------------------------ a crop
@functools.lru_cache(maxsize=64)
def _gamma_table(gamma: float) -> np.ndarray:
    """``table[v] = (v / 255) ** gamma`` for every byte ``v``, in float32.

    Exactly the numbers the per-pixel ``np.power(pixels_f32 * (1.0 / 255.0), gamma)`` gives,
    as both are the same float32 operations on the same inputs; worked out once per camera
    (the cache) and read-only, so that no caller can change it for the next image.
    """
    table = np.power(np.arange(256, dtype=np.float32) * (1.0 / 255.0), gamma)
    table.flags.writeable = False
    return table


@functools.lru_cache(maxsize=64)
def _row_light(vertical_light: float, height: int) -> np.ndarray:
    """The light factor of each image row (float32, top to bottom), cached per camera."""
    rows = 1.0 + vertical_light * np.linspace(-0.5, 0.5, height, dtype=np.float32)
    rows.flags.writeable = False
    return rows


@dataclass(slots=True)
class _Detection:
    """The detector's box (scene units: centre ``cx``, ``bottom``, size ``bw`` x ``bh``) and
    who it was drawn around: the subject's look, view and floor position."""

    subject: Appearance | None
    view: int
    X: float
    d: float
    cx: float
    bottom: float
    bw: float
    bh: float


def _stranger(rng: np.random.Generator, ctx: RenderContext, X: float, d: float,
              bw: float) -> tuple[Appearance | None, float, float]:
    """Whom a distractor box shows: nobody (background), a stranger half out of the box,
    or one further away; returns the look and floor position (X, d)."""
    kind = str(rng.choice(["background", "partial", "far"], p=[0.35, 0.45, 0.2]))
    subject = None if kind == "background" else random_appearance(rng, ctx.palette)
    if kind == "partial":
        X = X + rng.choice([-1, 1]) * rng.uniform(0.25, 0.4) * bw * d
    if kind == "far":
        d_far = d * rng.uniform(1.7, 2.2)
        X, d = X * d_far / d, d_far  # same place in the image, further away
    return subject, X, d


def _detect(rng: np.random.Generator, ctx: RenderContext, plan: ImagePlan, x_f: float,
            y_f: float, scale: float) -> _Detection:
    """The box the detector draws: around the subject with jitter, now and then cut or
    shifted; around a stranger or nothing (distractors); around part of someone (junk)."""
    ih, iw = ctx.image_size
    view, X, d = plan.subject[:3]
    subject: Appearance | None = None
    if plan.kind == "person":
        subject = ctx.people[plan.person]
        height = subject.height * scale
    else:
        height = scale
    bh = height * rng.uniform(*BOX_MARGIN)
    bottom = y_f + height * rng.uniform(-0.01, 0.06)
    bw = bh * iw / ih
    cx = x_f + bw * rng.normal(0.0, 0.06)
    if plan.kind == "person" and rng.random() < 0.05:  # a sloppy detection: cut or shifted
        if rng.random() < 0.5:
            bottom -= height * rng.uniform(0.08, 0.2)
        else:
            cx += bw * rng.choice([-1, 1]) * rng.uniform(0.15, 0.3)
    if plan.kind == "distractor":
        subject, X, d = _stranger(rng, ctx, X, d, bw)
    elif plan.kind == "junk":
        subject = random_appearance(rng, ctx.palette)
        part = rng.uniform(0.35, 0.6)
        bh *= part
        bw = bh * iw / ih
        bottom -= rng.uniform(0.0, 1.0 - part) * height
    return _Detection(subject, view, X, d, cx, bottom, bw, bh)


@dataclass(slots=True)
class _Canvas:
    """Where the crop lies in the scene: its top-left corner (scene units) and the canvas
    pixels per scene unit."""

    x0: float
    y0: float
    k: float

    def to_px(self, x: float, y: float) -> tuple[float, float]:
        """Scene units -> canvas pixels."""
        return (x - self.x0) * self.k, (y - self.y0) * self.k


def _crop_scene(ctx: RenderContext, cam: CameraSpec, det: _Detection, CW: int,
                CH: int) -> tuple[Image.Image, _Canvas]:
    """The camera's empty scene under the box (kept inside the panorama), at canvas size."""
    x0, y0 = det.cx - det.bw / 2, det.bottom - det.bh
    x0 = min(max(x0, PANO_X0 + 0.01), PANO_X1 - det.bw - 0.01)
    pano = ctx.panorama(cam.camid)
    pw, ph = pano_size(cam)
    y0 = min(max(y0, PANO_Y0 + 0.01), PANO_Y0 + ph / PPU - det.bh - 0.01)
    box = ((x0 - PANO_X0) * PPU, (y0 - PANO_Y0) * PPU, (x0 + det.bw - PANO_X0) * PPU,
           (y0 + det.bh - PANO_Y0) * PPU)
    img = pano.resize((CW, CH), Image.Resampling.BILINEAR, box=box)
    return img, _Canvas(x0, y0, CH / det.bh)


def _draw_people(dr: ImageDraw.ImageDraw, ctx: RenderContext, cam: CameraSpec, plan: ImagePlan,
                 det: _Detection, canvas: _Canvas) -> None:
    """Everybody in view, the subject among them, far ones first."""
    since, phase0 = plan.subject[3:]
    figures = []
    for person, v, Xo, do, since_o, ph0 in plan.neighbours:
        figures.append((do, ctx.people[person], v, Xo, since_o, ph0))
    if det.subject is not None:
        figures.append((det.d, det.subject, det.view, det.X, since, phase0))
    figures.sort(key=lambda f: -f[0])
    for do, app, v, Xo, since_o, ph0 in figures:
        _draw_at(dr, cam, canvas, app, v, Xo, do, since_o, ph0)


def _draw_at(dr: ImageDraw.ImageDraw, cam: CameraSpec, canvas: _Canvas, app: Appearance,
             view: int, X: float, d: float, since: int, phase0: float) -> None:
    """One person at floor position (X, d) of ``cam``, ``since`` frames into its walk."""
    xo, yo, so = project(cam, X, d)
    fx, fy = canvas.to_px(xo, yo)
    draw_person(dr, app, view, fx, fy, so * canvas.k, phase0 + 2 * math.pi * since / app.stride)


def _subject_mask(cam: CameraSpec, plan: ImagePlan, det: _Detection, canvas: _Canvas, CW: int,
                  CH: int, size: tuple[int, int]) -> np.ndarray:
    """The subject's own pixels at output ``size`` (w, h), drawn alone: True where it is."""
    since, phase0 = plan.subject[3:]
    layer = Image.new("RGBA", (CW, CH), (0, 0, 0, 0))
    if det.subject is not None:
        _draw_at(ImageDraw.Draw(layer, "RGBA"), cam, canvas, det.subject, det.view, det.X, det.d,
                 since, phase0)
    alpha = layer.getchannel("A").resize(size, Image.Resampling.BOX)
    return np.asarray(alpha) > 127  # the floor shadow (alpha 70) is not the person


def _lens(img: Image.Image, cam: CameraSpec, plan: ImagePlan, d: float,
          size: tuple[int, int]) -> Image.Image:
    """The camera's optics and sensor: resolution lost with distance (less still for junk),
    then blur, at output ``size`` (w, h)."""
    iw, ih = size
    r_eff = float(np.clip(cam.resolution * 0.9 / d, 0.25, 1.0))
    if plan.kind == "junk":
        r_eff *= 0.6
    small = (max(8, int(round(iw * r_eff))), max(16, int(round(ih * r_eff))))
    img = img.resize(small, Image.Resampling.BOX).resize((iw, ih), Image.Resampling.BILINEAR)
    if cam.blur > 0.05:
        img = img.filter(ImageFilter.GaussianBlur(cam.blur))
    return img


def _light(img: Image.Image, cam: CameraSpec, plan: ImagePlan, x_f: float,
           rng: np.random.Generator) -> Image.Image:
    """The camera's light and colour: gamma, brightness (drifting over the world clock,
    changing across the scene and down the crop), colour cast, contrast, noise."""
    iw, ih = img.size
    # The pixel arithmetic below is float32 throughout (numpy turns the Python floats into
    # float32 next to a float32 array), one operation after the other, mostly in place to spare
    # copies, but never re-ordered or merged: every rounding step stays what it always was, so
    # the images stay bit-identical to those of the straightforward formula
    #     ((((pixels / 255) ** gamma * gains * rows) - 0.5) * contrast + 0.5) * 255 + noise.
    # gamma: (v / 255) ** gamma depends on the byte v alone, so look it up in a 256-entry
    # table instead of raising all 3 * width * height pixels to a power
    a = _gamma_table(cam.gamma).take(np.asarray(img))  # float32, shape (ih, iw, 3)
    light = cam.brightness * (1.0 + cam.drift * math.sin(2 * math.pi * plan.t / cam.drift_period
                                                         + cam.drift_phase))
    light *= 1.0 + 0.5 * cam.side_light * (2.0 * x_f / FOV - 1.0) + rng.normal(0.0, 0.03)
    gains = np.asarray(cam.gains, dtype=np.float32) * light  # colour cast and light
    # per channel: multiply the pixels seen as (rows, width * 3), i.e. R G B R G B ... along a
    # row, by the gains repeated as often: the same products as broadcasting over the last axis,
    # but numpy's inner loop then runs along whole rows, not over 3 channels at a time
    a_rows = a.reshape(ih, iw * 3)  # a view (``a`` is contiguous): changing it changes ``a``
    a_rows *= np.tile(gains, iw)
    a *= _row_light(cam.vertical_light, ih)[:, None, None]  # brighter or darker towards the feet
    a -= 0.5  # contrast around mid-grey: (a - 0.5) * contrast + 0.5
    a *= cam.contrast
    a += 0.5
    a *= 255.0
    if cam.noise > 0:
        a += rng.normal(0.0, cam.noise, a.shape).astype(np.float32)
    a += 0.5  # round to the nearest byte: + 0.5, then astype truncates
    np.clip(a, 0, 255, out=a)
    return Image.fromarray(a.astype(np.uint8))


def render_image(ctx: RenderContext, plan: ImagePlan, *, people: bool = True,
                 with_mask: bool = False) -> tuple:
    """Draw the crop of ``plan``; returns the image and the camera's JPEG quality.

    ``people=False`` draws the same crop with nobody in view (the background alone);
    ``with_mask=True`` also returns the subject's mask at output size (bool, True where the
    subject's own pixels are, before occluders), as a third element. In order: the
    detector's box, the scene under it, the people, the occluders near the camera, then the
    camera's lens and light.
    """
    rng = np.random.default_rng([ctx.seed, ctx.domain, plan.index, 7919])
    cam = ctx.cameras[plan.cam - 1]
    ih, iw = ctx.image_size
    CH, CW = ih * SS, iw * SS
    _, X, d = plan.subject[:3]
    x_f, y_f, scale = project(cam, X, d)
    det = _detect(rng, ctx, plan, x_f, y_f, scale)
    img, canvas = _crop_scene(ctx, cam, det, CW, CH)
    dr = ImageDraw.Draw(img, "RGBA")
    if people:
        _draw_people(dr, ctx, cam, plan, det, canvas)
    mask = _subject_mask(cam, plan, det, canvas, CW, CH, (iw, ih)) if with_mask else None
    for occ in cam.occluders:
        _draw_occluder(dr, cam, occ, canvas.to_px, rng)
    img = _light(_lens(img, cam, plan, d, (iw, ih)), cam, plan, x_f, rng)
    if with_mask:
        return img, cam.jpeg_quality, mask
    return img, cam.jpeg_quality
