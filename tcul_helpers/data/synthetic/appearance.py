"""What each synthetic person looks like: body, skin, hair, clothes, shoes, bags.

An identity's appearance is drawn from the preset's palette (``source``: an indoor winter
crowd in dark, muted clothes; ``target``: an outdoor summer campus in bright clothes,
shorts and skirts). A fraction of the identities come in look-alike groups that share an
outfit template (upper garment, colour, pattern, lower garment), so colour alone does not
solve re-identification: body build, hair, skin, shoes and bags tell them apart.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

Color = tuple[int, int, int]

SKIN_TONES: tuple[Color, ...] = (
    (255, 219, 180), (241, 194, 150), (224, 172, 125), (198, 134, 90),
    (165, 110, 70), (120, 78, 50), (90, 58, 38),
)
HAIR_COLORS: dict[str, Color] = {
    "black": (22, 18, 16), "dark brown": (55, 35, 22), "brown": (100, 65, 38),
    "blond": (205, 170, 110), "grey": (150, 146, 140), "red": (140, 60, 30),
}
HAIR_WEIGHTS = (0.45, 0.25, 0.12, 0.08, 0.06, 0.04)


@dataclass(frozen=True)
class Palette:
    """Clothing choices of one domain: named colours and the odds of each garment."""

    upper_colors: dict[str, Color]
    upper_types: dict[str, float]  # tshirt | longsleeve | jacket
    patterns: dict[str, float]  # solid | stripes | logo | checked | twotone
    lower_types: dict[str, float]  # trousers | shorts | skirt
    lower_colors: dict[str, dict[str, Color]]  # per lower type
    shoe_colors: dict[str, Color]
    bags: dict[str, float]  # none | backpack | shoulder | handbag
    bag_colors: dict[str, Color]
    caps: float  # probability of a cap


PALETTES: dict[str, Palette] = {
    # Indoor winter mall: dark and muted, long sleeves and jackets, long trousers.
    "source": Palette(
        upper_colors={
            "black": (28, 28, 30), "navy": (30, 40, 80), "charcoal": (60, 60, 64),
            "grey": (125, 125, 128), "brown": (95, 62, 40), "burgundy": (110, 25, 40),
            "olive": (85, 90, 45), "forest green": (30, 70, 45), "cream": (225, 215, 190),
            "camel": (180, 140, 90), "denim": (70, 95, 135), "white": (230, 230, 228),
        },
        upper_types={"longsleeve": 0.45, "jacket": 0.4, "tshirt": 0.15},
        patterns={"solid": 0.55, "stripes": 0.15, "logo": 0.12, "checked": 0.12, "twotone": 0.06},
        lower_types={"trousers": 0.86, "skirt": 0.1, "shorts": 0.04},
        lower_colors={
            "trousers": {"black": (25, 25, 28), "dark jeans": (35, 45, 75),
                         "grey": (95, 95, 100), "brown": (85, 60, 40), "khaki": (150, 130, 95)},
            "skirt": {"black": (25, 25, 28), "grey": (100, 100, 105), "burgundy": (100, 25, 35)},
            "shorts": {"black": (30, 30, 32), "khaki": (150, 130, 95)},
        },
        shoe_colors={"black": (20, 20, 20), "brown": (70, 45, 30), "white": (220, 220, 220),
                     "grey": (110, 110, 110)},
        bags={"none": 0.55, "backpack": 0.25, "shoulder": 0.14, "handbag": 0.06},
        bag_colors={"black": (25, 25, 25), "brown": (90, 55, 30), "grey": (90, 90, 95),
                    "navy": (30, 35, 70)},
        caps=0.04,
    ),
    # Outdoor summer campus (like Market-1501): bright T-shirts, shorts, skirts, backpacks.
    "target": Palette(
        upper_colors={
            "white": (238, 238, 235), "red": (200, 35, 40), "yellow": (235, 200, 50),
            "orange": (235, 120, 40), "sky blue": (110, 170, 225), "pink": (235, 140, 175),
            "green": (60, 160, 70), "purple": (120, 70, 160), "black": (30, 30, 32),
            "grey": (150, 150, 152), "teal": (30, 140, 140), "light blue": (170, 200, 235),
        },
        upper_types={"tshirt": 0.7, "longsleeve": 0.2, "jacket": 0.1},
        patterns={"solid": 0.45, "stripes": 0.2, "logo": 0.2, "checked": 0.08, "twotone": 0.07},
        lower_types={"trousers": 0.5, "shorts": 0.35, "skirt": 0.15},
        lower_colors={
            "trousers": {"blue jeans": (60, 90, 150), "black": (28, 28, 30),
                         "beige": (200, 180, 140), "grey": (120, 120, 125)},
            "shorts": {"khaki": (170, 150, 105), "blue": (60, 90, 150), "black": (30, 30, 32),
                       "white": (230, 230, 225), "grey": (130, 130, 135)},
            "skirt": {"white": (232, 230, 225), "black": (30, 30, 32), "pink": (230, 150, 180),
                      "blue": (70, 100, 170), "red": (190, 40, 50)},
        },
        shoe_colors={"white": (235, 235, 235), "black": (25, 25, 25), "red": (190, 40, 40),
                     "blue": (50, 80, 160), "grey": (140, 140, 140)},
        bags={"none": 0.45, "backpack": 0.4, "shoulder": 0.1, "handbag": 0.05},
        bag_colors={"black": (25, 25, 25), "blue": (40, 70, 150), "red": (170, 35, 40),
                    "grey": (120, 120, 125), "green": (50, 110, 60), "pink": (220, 130, 170)},
        caps=0.08,
    ),
}


@dataclass(frozen=True)
class Appearance:
    """One person's look. Colours are RGB; ``group`` is the look-alike group (-1: none)."""

    height: float  # body height relative to an average person (0.9 .. 1.1)
    build: float  # body width relative to average (0.85 .. 1.2)
    skin: Color
    hair: Color
    hair_name: str
    hair_style: str  # short | long | bun | bald
    cap: Color | None
    upper_type: str  # tshirt | longsleeve | jacket
    upper: Color
    upper_name: str
    pattern: str  # solid | stripes | logo | checked | twotone
    upper2: Color  # pattern / logo / second colour
    inner: Color  # shirt under an open jacket
    logo_shape: str  # circle | square | triangle
    lower_type: str  # trousers | shorts | skirt
    lower: Color
    lower_name: str
    shoes: Color
    bag: str  # none | backpack | shoulder | handbag
    bag_color: Color
    bag_side: int  # -1 left, +1 right (for shoulder bags and handbags)
    stride: float  # frames per walking cycle
    group: int

    def summary(self) -> dict:
        """A short JSON-ready description for the manifest."""
        d = asdict(self)
        keep = ("height", "build", "hair_name", "hair_style", "upper_type", "upper_name",
                "pattern", "lower_type", "lower_name", "bag", "group")
        out = {k: d[k] for k in keep}
        out["height"] = round(out["height"], 3)
        out["build"] = round(out["build"], 3)
        out["cap"] = self.cap is not None
        return out


def _pick(rng: np.random.Generator, odds: dict[str, float]) -> str:
    names = list(odds)
    p = np.array([odds[n] for n in names], dtype=float)
    return names[int(rng.choice(len(names), p=p / p.sum()))]


def _jitter(rng: np.random.Generator, c: Color, sd: float) -> Color:
    v = np.clip(np.asarray(c, dtype=float) + rng.normal(0.0, sd, 3), 0, 255)
    return (int(v[0]), int(v[1]), int(v[2]))


def _outfit(rng: np.random.Generator, pal: Palette) -> dict:
    """The shared part of a look: upper garment and pattern, lower garment."""
    upper_name = str(rng.choice(list(pal.upper_colors)))
    others = [n for n in pal.upper_colors if n != upper_name]
    second = str(rng.choice(others))
    lower_type = _pick(rng, pal.lower_types)
    lower_name = str(rng.choice(list(pal.lower_colors[lower_type])))
    return dict(
        upper_type=_pick(rng, pal.upper_types),
        upper=pal.upper_colors[upper_name],
        upper_name=upper_name,
        pattern=_pick(rng, pal.patterns),
        upper2=pal.upper_colors[second],
        inner=pal.upper_colors[str(rng.choice(others))],
        logo_shape=str(rng.choice(["circle", "square", "triangle"])),
        lower_type=lower_type,
        lower=pal.lower_colors[lower_type][lower_name],
        lower_name=lower_name,
    )


def random_appearance(
    rng: np.random.Generator, palette: str, outfit: dict | None = None, group: int = -1
) -> Appearance:
    """One person drawn from ``palette``; ``outfit`` (a look-alike template) if given."""
    pal = PALETTES[palette]
    fit = dict(outfit) if outfit is not None else _outfit(rng, pal)
    # members of a look-alike group wear the same colours up to small dye differences
    for key in ("upper", "upper2", "inner", "lower"):
        fit[key] = _jitter(rng, fit[key], 7.0)
    hair_name = str(rng.choice(list(HAIR_COLORS), p=np.array(HAIR_WEIGHTS) / sum(HAIR_WEIGHTS)))
    hair_style = _pick(rng, {"short": 0.5, "long": 0.3, "bun": 0.1, "bald": 0.1})
    bag = _pick(rng, pal.bags)
    bag_name = str(rng.choice(list(pal.bag_colors)))
    shoe_name = str(rng.choice(list(pal.shoe_colors)))
    skin = SKIN_TONES[int(rng.integers(len(SKIN_TONES)))]
    return Appearance(
        height=float(np.clip(rng.normal(1.0, 0.05), 0.88, 1.12)),
        build=float(np.clip(rng.normal(1.0, 0.1), 0.82, 1.25)),
        skin=_jitter(rng, skin, 6.0),
        hair=_jitter(rng, HAIR_COLORS[hair_name], 6.0),
        hair_name=hair_name,
        hair_style=hair_style,
        cap=_jitter(rng, pal.upper_colors[str(rng.choice(list(pal.upper_colors)))], 5.0)
        if rng.random() < pal.caps else None,
        shoes=_jitter(rng, pal.shoe_colors[shoe_name], 6.0),
        bag=bag,
        bag_color=_jitter(rng, pal.bag_colors[bag_name], 6.0),
        bag_side=int(rng.choice([-1, 1])),
        stride=float(rng.uniform(18.0, 28.0)),
        group=group,
        **fit,
    )


def sample_appearances(
    rng: np.random.Generator,
    n: int,
    palette: str,
    group_frac: float,
    group_size: tuple[int, int],
) -> list[Appearance]:
    """``n`` appearances; about ``group_frac`` of them in look-alike groups.

    Group sizes are drawn uniformly in ``group_size``; the order is shuffled so that group
    members get unrelated identity numbers (and land in train or test independently).
    """
    pal = PALETTES[palette]
    n_grouped = int(round(group_frac * n))
    outfits: list[tuple[dict | None, int]] = []
    group = 0
    while len(outfits) < n_grouped:
        size = int(rng.integers(group_size[0], group_size[1] + 1))
        size = min(size, n_grouped - len(outfits))
        if size < 2:
            break
        template = _outfit(rng, pal)
        outfits.extend((template, group) for _ in range(size))
        group += 1
    outfits.extend((None, -1) for _ in range(n - len(outfits)))
    order = rng.permutation(n)
    return [random_appearance(rng, palette, outfits[i][0], outfits[i][1]) for i in order]
