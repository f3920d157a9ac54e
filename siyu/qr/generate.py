"""QR code rendering (PNG, SVG, terminal) for short links.

Codes are always built with ``segno.make_qr``: ``segno.make`` may pick a Micro QR symbol for short
content, and most phone cameras cannot read Micro QR.
"""

from __future__ import annotations

import base64
import io
import re
from dataclasses import dataclass, field

import segno
from PIL import Image

from .errors import QrDecodeError, QrOptionError
from .images import open_image

SIZE_MIN, SIZE_MAX = 64, 2048
"""Output width in px: below 64 px phones struggle; above 2048 px is print territory, where SVG fits."""

BORDER_MIN, BORDER_MAX = 0, 16
"""Quiet zone in modules. The QR spec asks for 4; 0 is allowed for callers who add their own margin."""

ERROR_LEVELS = ("l", "m", "q", "h")

LOGO_AREA_RATIO = 0.25
"""Max width of the cleared logo area (logo + pad) as a share of the symbol width (quiet zone excluded).

At error level H about 30 % of codewords can be lost; a square of 25 % width covers ~6 % of the symbol,
which leaves ample margin for print defects and camera blur.
"""

LOGO_PAD_MODULES = 0.5
"""Light margin between the logo and the nearest dark module, so the logo's edge is not read as modules."""

LOGO_MAX_SIDE = 512
"""Logos are downscaled to this once validated: the largest PNG logo is 2048 * 0.25 px, and it bounds
both memory held by QrOptions and the size of the data URI embedded in SVGs."""

MIN_CONTRAST = 3.0
"""WCAG contrast ratio required between dark and light (the non-text graphics threshold); lower-contrast
codes fail on many phone cameras, so they are rejected up front rather than printed."""

TRANSPARENT = "transparent"
_HEX_COLOUR = re.compile(r"#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})")


def _normalise_colour(name: str, value: object, *, allow_transparent: bool) -> str:
    """Return ``#rrggbb`` (or ``transparent``); CSS names are refused so PNG and SVG always agree."""
    if not isinstance(value, str):
        raise QrOptionError(name, "must be a colour string such as '#000000'", "colour_not_text")
    text = value.strip().lower()
    if text == TRANSPARENT:
        if allow_transparent:
            return TRANSPARENT
        raise QrOptionError(name, "dark modules cannot be transparent", "colour_transparent")
    if not _HEX_COLOUR.fullmatch(text):
        raise QrOptionError(name, f"{value!r} is not a #RRGGBB or #RGB colour", "colour_format", {"value": value})
    if len(text) == 4:
        text = "#" + "".join(c * 2 for c in text[1:])
    return text


def _rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def _luminance(colour: str) -> float:
    """WCAG relative luminance of a ``#rrggbb`` colour."""

    def channel(v: int) -> float:
        c = v / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(v) for v in _rgb(colour))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _check_int(name: str, value: object, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise QrOptionError(name, "must be an integer", "integer_required")
    if not lo <= value <= hi:
        raise QrOptionError(
            name, f"must be between {lo} and {hi}, got {value}", "out_of_range", {"min": lo, "max": hi, "value": value}
        )


@dataclass(frozen=True)
class QrOptions:
    """Validated rendering options; constructing one with a bad value raises QrOptionError.

    ``size`` is the output width (and height) in px. ``light`` may be ``"transparent"``.
    ``error`` is a minimum: segno raises it for free when that does not grow the symbol, and it is
    forced to ``"h"`` whenever a ``logo`` (PNG/JPEG/WebP bytes) is given.
    """

    size: int = 512
    border: int = 4
    dark: str = "#000000"
    light: str = "#ffffff"
    error: str = "m"
    logo: bytes | None = field(default=None, repr=False)
    _logo_image: Image.Image | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_int("size", self.size, SIZE_MIN, SIZE_MAX)
        _check_int("border", self.border, BORDER_MIN, BORDER_MAX)
        dark = _normalise_colour("dark", self.dark, allow_transparent=False)
        light = _normalise_colour("light", self.light, allow_transparent=True)
        # A transparent background is assumed to end up on white (paper, most web pages).
        light_lum = 1.0 if light == TRANSPARENT else _luminance(light)
        dark_lum = _luminance(dark)
        if dark_lum >= light_lum:
            raise QrOptionError(
                "dark", "must be darker than light; many phone scanners skip inverted codes", "colour_inverted"
            )
        contrast = (light_lum + 0.05) / (dark_lum + 0.05)
        if contrast < MIN_CONTRAST:
            ratio, needed = f"{contrast:.1f}", f"{MIN_CONTRAST:g}"
            reason = f"contrast with light is {ratio}:1; at least {needed}:1 is needed"
            raise QrOptionError("dark", reason, "colour_contrast", {"ratio": ratio, "min": needed})
        if not isinstance(self.error, str) or self.error.lower() not in ERROR_LEVELS:
            levels = ", ".join(ERROR_LEVELS)
            raise QrOptionError("error", f"must be one of {levels}", "one_of", {"choices": levels})
        error = self.error.lower()
        logo_image = None
        if self.logo is not None:
            logo_image = _load_logo(self.logo)
            error = "h"
        object.__setattr__(self, "dark", dark)
        object.__setattr__(self, "light", light)
        object.__setattr__(self, "error", error)
        object.__setattr__(self, "_logo_image", logo_image)


def _load_logo(data: object) -> Image.Image:
    """Decode a logo with the same limits as scan uploads, as RGBA no larger than LOGO_MAX_SIDE."""
    if not isinstance(data, bytes | bytearray) or not data:
        raise QrOptionError("logo", "must be non-empty PNG, JPEG or WebP bytes", "logo_empty")
    try:
        img = open_image(bytes(data), field="logo")
    except QrDecodeError as exc:
        raise QrOptionError("logo", exc.reason, exc.code, exc.params) from exc
    img = img.convert("RGBA")
    img.thumbnail((LOGO_MAX_SIDE, LOGO_MAX_SIDE), Image.Resampling.LANCZOS)
    return img


@dataclass(frozen=True)
class QrLayout:
    """Module geometry shared by the PNG and SVG renderers. Coordinates are in modules, quiet zone
    included, so ``total`` modules span the whole output width."""

    version: int
    error: str
    """Error level actually used (segno may boost above the requested minimum)."""
    modules: int
    """Symbol width in modules, quiet zone excluded."""
    border: int
    rows: tuple[tuple[bool, ...], ...]
    """True = dark module; the logo area is already cleared."""
    logo_clear: tuple[int, int, int, int] | None
    """Cleared square (x0, y0, x1, y1), end-exclusive."""
    logo_box: tuple[float, float, float, float] | None
    """Where the logo image is drawn (x, y, width, height); aspect ratio preserved, padded inside clear."""

    @property
    def total(self) -> int:
        return self.modules + 2 * self.border


def _make(data: str, error: str) -> segno.QRCode:
    if not isinstance(data, str) or not data:
        raise QrOptionError("data", "must be a non-empty string", "data_empty")
    try:
        return segno.make_qr(data, error=error)
    except segno.DataOverflowError as exc:
        level = error.upper()
        reason = f"too long to fit in a QR code at error level {level}"
        raise QrOptionError("data", reason, "data_too_long", {"level": level}) from exc
    except ValueError as exc:
        raise QrOptionError("data", str(exc), "data_invalid", {"detail": str(exc)}) from exc


def layout(data: str, opts: QrOptions | None = None) -> QrLayout:
    """Encode ``data`` and compute where modules and the logo go (exposed so tests and UIs can check it)."""
    opts = opts or QrOptions()
    qr = _make(data, opts.error)
    modules = qr.symbol_size(scale=1, border=0)[0]
    total = modules + 2 * opts.border
    if opts.size < total:
        reason = f"{opts.size}px is too small for this content; needs at least {total}px"
        raise QrOptionError("size", reason, "size_too_small", {"size": opts.size, "min": total})
    rows = [[bool(v) for v in row] for row in qr.matrix_iter(scale=1, border=opts.border)]

    clear = box = None
    if opts._logo_image is not None:
        side = int(modules * LOGO_AREA_RATIO)
        side -= 1 - side % 2  # odd, so it centres exactly on the (odd-sized) module grid
        start = opts.border + (modules - side) // 2
        clear = (start, start, start + side, start + side)
        for y in range(start, start + side):
            for x in range(start, start + side):
                rows[y][x] = False
        inner = side - 2 * LOGO_PAD_MODULES
        w, h = opts._logo_image.size
        lw, lh = (inner, inner * h / w) if w >= h else (inner * w / h, inner)
        centre = start + side / 2
        box = (centre - lw / 2, centre - lh / 2, lw, lh)

    return QrLayout(
        version=int(qr.version),
        error=qr.error.lower(),
        modules=modules,
        border=opts.border,
        rows=tuple(tuple(r) for r in rows),
        logo_clear=clear,
        logo_box=box,
    )


def render_png(data: str, opts: QrOptions | None = None) -> bytes:
    """Render ``data`` as a ``size`` x ``size`` PNG.

    Modules are drawn at 1 px and upscaled with nearest-neighbour, so edges stay sharp; when ``size`` is
    not a multiple of the module count, modules differ by at most 1 px, which scanners tolerate.
    """
    opts = opts or QrOptions()
    lay = layout(data, opts)
    n = lay.total
    transparent = opts.light == TRANSPARENT
    light_rgb = (255, 255, 255) if transparent else _rgb(opts.light)

    img = Image.frombytes("P", (n, n), b"".join(bytes(row) for row in lay.rows))
    img.putpalette([*light_rgb, *_rgb(opts.dark)])
    img = img.resize((opts.size, opts.size), Image.Resampling.NEAREST)
    if transparent:
        img.info["transparency"] = 0  # palette index 0 (light) becomes a tRNS entry / alpha 0

    if opts._logo_image is not None and lay.logo_box is not None:
        img = img.convert("RGBA")
        scale = opts.size / n
        x, y, w, h = (v * scale for v in lay.logo_box)
        logo = opts._logo_image.resize((max(1, round(w)), max(1, round(h))), Image.Resampling.LANCZOS)
        img.alpha_composite(logo, (round(x), round(y)))
        if not transparent:
            img = img.convert("RGB")

    out = io.BytesIO()
    img.save(out, format="PNG", optimize=True)
    return out.getvalue()


def _num(v: float) -> str:
    return f"{v:.3f}".rstrip("0").rstrip(".")


def render_svg(data: str, opts: QrOptions | None = None) -> bytes:
    """Render ``data`` as a standalone SVG document (UTF-8 bytes).

    Built from the module matrix rather than segno's SVG writer so the logo area can be cleared.
    Only validated colours and numbers are interpolated, so no caller text reaches the markup. The logo
    is re-encoded as PNG before embedding, so uploaded bytes are never passed through verbatim.
    """
    opts = opts or QrOptions()
    lay = layout(data, opts)
    n = lay.total

    runs: list[str] = []
    for y, row in enumerate(lay.rows):
        x = 0
        while x < n:
            if not row[x]:
                x += 1
                continue
            start = x
            while x < n and row[x]:
                x += 1
            runs.append(f"M{start} {y}h{x - start}v1h-{x - start}z")

    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>\n',
        f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
        f'width="{opts.size}" height="{opts.size}" viewBox="0 0 {n} {n}" shape-rendering="crispEdges">',
    ]
    if opts.light != TRANSPARENT:
        parts.append(f'<rect width="{n}" height="{n}" fill="{opts.light}"/>')
    parts.append(f'<path fill="{opts.dark}" d="{"".join(runs)}"/>')
    if opts._logo_image is not None and lay.logo_box is not None:
        buf = io.BytesIO()
        opts._logo_image.save(buf, format="PNG", optimize=True)
        uri = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
        x, y, w, h = (_num(v) for v in lay.logo_box)
        # xlink:href, not SVG 2's href: every browser reads it and so do older print/vector tools.
        parts.append(
            f'<image x="{x}" y="{y}" width="{w}" height="{h}" preserveAspectRatio="xMidYMid meet" xlink:href="{uri}"/>'
        )
    parts.append("</svg>\n")
    return "".join(parts).encode("utf-8")


def render_terminal(data: str, border: int = 4) -> str:
    """Render ``data`` with Unicode half blocks for the CLI (two module rows per text line).

    segno's compact writer draws *light* modules as blocks, which reads correctly on the usual
    light-text-on-dark terminal. Error level M: terminals are screens, not print, so no need for more.
    """
    _check_int("border", border, BORDER_MIN, BORDER_MAX)
    out = io.StringIO()
    _make(data, "m").terminal(out=out, border=border, compact=True)
    return out.getvalue()
