"""QR codes: what we render must scan back to the exact link, and scanning must be safe on hostile uploads.

Every rendering test decodes its own output with zxing-cpp (the same decoder the upload scanner uses), so
"it decodes" here means a real reader recovered the exact text, not that a function ran.
"""

from __future__ import annotations

import base64
import io
import os
import re
import struct
import xml.etree.ElementTree as ET
import zlib

import pytest
import segno
from PIL import Image, ImageChops, ImageFile

from siyu.qr import (
    MAX_PIXELS,
    MAX_UPLOAD_BYTES,
    QrDecodeError,
    QrOptionError,
    QrOptions,
    decode_image,
    extract_url,
    layout,
    render_png,
    render_svg,
    render_terminal,
)
from siyu.qr.generate import LOGO_AREA_RATIO

URL = "https://s.siyu.example/Ab3xK9"
SVG_NS = "{http://www.w3.org/2000/svg}"


# --- helpers -------------------------------------------------------------------------------------------


def encode(img: Image.Image, fmt: str, **kw: object) -> bytes:
    out = io.BytesIO()
    img.save(out, format=fmt, **kw)
    return out.getvalue()


def only_text(image_bytes: bytes) -> str:
    """Decode and insist on exactly one code, returning its text."""
    codes = decode_image(image_bytes)
    assert len(codes) == 1, codes
    return codes[0].text


def solid_logo(colour: tuple[int, int, int] = (255, 0, 0), size: tuple[int, int] = (300, 300)) -> bytes:
    return encode(Image.new("RGB", size, colour), "PNG")


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_claiming(width: int, height: int) -> bytes:
    """A ~60-byte, checksum-valid PNG whose header claims width x height (a decompression bomb shape)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(b"\0" * 16))
        + png_chunk(b"IEND", b"")
    )


def webp_claiming(width: int, height: int) -> bytes:
    """A WebP (extended VP8X) header claiming a width x height canvas."""
    payload = b"\0\0\0\0" + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    body = b"WEBP" + b"VP8X" + struct.pack("<I", len(payload)) + payload
    return b"RIFF" + struct.pack("<I", len(body)) + body


def rasterise_svg(svg: bytes, px_per_module: int = 8) -> tuple[Image.Image, set[tuple[int, int]]]:
    """Minimal rasteriser for the SVG subset render_svg emits (no SVG library is installed).

    Returns the picture and the set of dark module coordinates read from the path data.
    """
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG_NS}svg"
    n = int(root.get("viewBox", "").split()[2])
    img = Image.new("RGB", (n * px_per_module,) * 2, "white")
    dark: set[tuple[int, int]] = set()
    path = root.find(f"{SVG_NS}path")
    assert path is not None
    for x, y, w in re.findall(r"M(\d+) (\d+)h(\d+)v1h-\d+z", path.get("d", "")):
        x, y, w = int(x), int(y), int(w)
        dark.update((x + i, y) for i in range(w))
        img.paste(
            path.get("fill"),
            (x * px_per_module, y * px_per_module, (x + w) * px_per_module, (y + 1) * px_per_module),
        )
    for image in root.findall(f"{SVG_NS}image"):
        uri = image.get("{http://www.w3.org/1999/xlink}href", "")
        assert uri.startswith("data:image/png;base64,")
        logo = Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))).convert("RGBA")
        box = [float(image.get(k, "0")) * px_per_module for k in ("x", "y", "width", "height")]
        logo = logo.resize((round(box[2]), round(box[3])))
        img.paste(logo, (round(box[0]), round(box[1])), logo)
    return img, dark


# --- rendering round trips -----------------------------------------------------------------------------


def test_default_png_is_512px_and_decodes_to_the_exact_url() -> None:
    png = render_png(URL)
    assert Image.open(io.BytesIO(png)).size == (512, 512)
    assert only_text(png) == URL


def test_codes_are_always_full_qr_never_micro_qr() -> None:
    # segno.make("1") would pick a Micro QR symbol, which most phone cameras cannot read.
    assert segno.make("1").is_micro
    assert layout("1").version == 1
    assert decode_image(render_png("1"))[0].format == "QRCode"


@pytest.mark.parametrize(
    "url",
    [
        "https://s.siyu.example/r?utm_source=wechat&utm_medium=poster&ref=a%20b#top",
        "https://例子.测试/活动/春节?券=满100减20",
        "https://s.siyu.example/ü?q=Zürich",  # Latin-1 range: encoded without ECI, must not be mangled
    ],
)
def test_unicode_and_query_strings_survive_exactly(url: str) -> None:
    assert only_text(render_png(url)) == url


def test_custom_colours_still_decode() -> None:
    opts = QrOptions(dark="#1A237E", light="#FFF8E1")
    png = render_png(URL, opts)
    colours = {rgb for _, rgb in Image.open(io.BytesIO(png)).convert("RGB").getcolors()}
    assert colours == {(0x1A, 0x23, 0x7E), (0xFF, 0xF8, 0xE1)}
    assert only_text(png) == URL


def test_short_hex_colours_are_expanded() -> None:
    assert QrOptions(dark="#123", light="#fEa").dark == "#112233"


def test_transparent_background_png_decodes() -> None:
    png = render_png(URL, QrOptions(light="transparent"))
    img = Image.open(io.BytesIO(png)).convert("RGBA")
    assert img.getpixel((0, 0))[3] == 0  # the quiet zone is see-through
    assert only_text(png) == URL


def test_smallest_size_still_decodes() -> None:
    png = render_png(URL, QrOptions(size=64))
    assert Image.open(io.BytesIO(png)).size == (64, 64)
    assert only_text(png) == URL


def test_border_zero_puts_the_symbol_at_the_edge_and_still_decodes() -> None:
    png = render_png(URL, QrOptions(border=0))
    assert Image.open(io.BytesIO(png)).convert("L").getpixel((0, 0)) == 0  # finder pattern corner
    assert only_text(png) == URL


def test_logo_forces_error_level_h_and_still_decodes() -> None:
    opts = QrOptions(error="l", logo=solid_logo())
    assert opts.error == "h"
    assert layout(URL, opts).error == "h"
    png = render_png(URL, opts)
    assert (255, 0, 0) in {rgb for _, rgb in Image.open(io.BytesIO(png)).convert("RGB").getcolors(1 << 16)}
    assert only_text(png) == URL


@pytest.mark.parametrize("size", [128, 512, 2048])
def test_logo_is_at_most_a_quarter_of_the_code_width_and_sits_on_a_light_pad(size: int) -> None:
    opts = QrOptions(size=size, logo=solid_logo())
    lay = layout(URL, opts)
    px_per_module = size / lay.total
    symbol_px = lay.modules * px_per_module

    # Geometry as computed by the renderer.
    assert lay.logo_box is not None and lay.logo_clear is not None
    assert lay.logo_box[2] <= LOGO_AREA_RATIO * lay.modules
    x0, y0, x1, y1 = lay.logo_clear
    assert x1 - x0 <= LOGO_AREA_RATIO * lay.modules
    assert not any(lay.rows[y][x] for y in range(y0, y1) for x in range(x0, x1))

    # ...and as actually drawn: measure the red pixels (R minus G is high only for red).
    png = render_png(URL, opts)
    img = Image.open(io.BytesIO(png)).convert("RGB")
    r, g, _ = img.split()
    red_bbox = ImageChops.subtract(r, g).point(lambda v: 255 if v > 150 else 0).getbbox()
    assert red_bbox is not None
    assert 0.15 * symbol_px <= red_bbox[2] - red_bbox[0] <= 0.25 * symbol_px

    # The cleared square around the logo holds no dark module pixels: that is the light pad.
    # (Inset by 1 px: nearest-neighbour scaling may shift a module edge by a pixel.)
    left, top, right, bottom = (round(v * px_per_module) for v in lay.logo_clear)
    pad = img.crop((left + 1, top + 1, right - 1, bottom - 1))
    assert (0, 0, 0) not in {rgb for _, rgb in pad.getcolors(1 << 16)}
    assert only_text(png) == URL


def test_wide_logo_keeps_its_aspect_ratio() -> None:
    lay = layout(URL, QrOptions(logo=solid_logo(size=(400, 100))))
    assert lay.logo_box is not None
    _, _, w, h = lay.logo_box
    assert w == pytest.approx(4 * h)


def test_jpeg_and_webp_logos_are_accepted() -> None:
    logo = Image.new("RGB", (120, 120), (0, 90, 200))
    for fmt in ("JPEG", "WEBP"):
        assert only_text(render_png(URL, QrOptions(logo=encode(logo, fmt)))) == URL


def test_svg_has_an_svg_root_matches_segno_and_decodes_when_rasterised() -> None:
    svg = render_svg(URL)
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG_NS}svg"
    assert (root.get("width"), root.get("height")) == ("512", "512")

    picture, dark = rasterise_svg(svg)
    border = 4
    expected = {
        (x, y)
        for y, row in enumerate(segno.make_qr(URL, error="m").matrix_iter(border=border))
        for x, v in enumerate(row)
        if v
    }
    assert dark == expected
    assert only_text(encode(picture, "PNG")) == URL


def test_svg_with_logo_embeds_a_png_data_uri_and_decodes() -> None:
    svg = render_svg(URL, QrOptions(logo=solid_logo(), dark="#222222", light="transparent"))
    text = svg.decode()
    assert "<rect" not in text  # transparent: no background
    assert text.count('xlink:href="data:image/png;base64,') == 1
    picture, _ = rasterise_svg(svg)
    assert only_text(encode(picture, "PNG")) == URL


def test_terminal_rendering_is_scannable_half_block_art() -> None:
    art = render_terminal(URL)
    lines = art.rstrip("\n").split("\n")
    assert len({len(line) for line in lines}) == 1
    assert set(art) <= {" ", "\u2580", "\u2584", "\u2588", "\n"}
    # Blocks are *light* modules (for dark terminals); rebuild the picture and scan it.
    halves = {" ": (0, 0), "\u2580": (255, 0), "\u2584": (0, 255), "\u2588": (255, 255)}
    img = Image.new("L", (len(lines[0]), 2 * len(lines)))
    for y, line in enumerate(lines):
        for x, ch in enumerate(line):
            top, bottom = halves[ch]
            img.putpixel((x, 2 * y), top)
            img.putpixel((x, 2 * y + 1), bottom)
    img = img.resize((img.width * 8, img.height * 8), Image.Resampling.NEAREST)
    assert only_text(encode(img, "PNG")) == URL


# --- option validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"dark": "red!!"}, "dark"),
        ({"light": "#12345"}, "light"),
        ({"dark": "transparent"}, "dark"),
        ({"dark": "#ffffff", "light": "#000000"}, "dark"),  # inverted
        ({"dark": "#aaaaaa", "light": "#ffffff"}, "dark"),  # too little contrast to scan
        ({"size": 5}, "size"),
        ({"size": 4096}, "size"),
        ({"size": True}, "size"),
        ({"border": 99}, "border"),
        ({"border": -1}, "border"),
        ({"error": "x"}, "error"),
        ({"logo": b"definitely not an image"}, "logo"),
        ({"logo": b""}, "logo"),
    ],
)
def test_bad_options_name_the_offending_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(QrOptionError) as info:
        QrOptions(**kwargs)  # type: ignore[arg-type]
    assert info.value.field == field
    assert info.value.reason
    assert isinstance(info.value, ValueError)


def test_logo_uses_the_upload_limits() -> None:
    gif = encode(Image.new("RGB", (50, 50)), "GIF")
    with pytest.raises(QrOptionError) as info:
        QrOptions(logo=gif)
    assert (info.value.field, info.value.code) == ("logo", "unsupported_format")
    with pytest.raises(QrOptionError) as info:
        QrOptions(logo=png_claiming(7_000, 7_000))
    assert (info.value.field, info.value.code) == ("logo", "too_many_pixels")


def test_size_too_small_for_long_content_names_size() -> None:
    with pytest.raises(QrOptionError) as info:
        render_png("https://example.com/" + "a" * 500, QrOptions(size=64))
    assert info.value.field == "size"


def test_empty_or_oversized_data_names_data() -> None:
    with pytest.raises(QrOptionError) as info:
        render_png("")
    assert info.value.field == "data"
    with pytest.raises(QrOptionError) as info:
        render_svg("https://example.com/" + "a" * 3000)
    assert info.value.field == "data"


# --- decoding uploads ----------------------------------------------------------------------------------


def test_every_code_in_one_image_is_returned_in_reading_order() -> None:
    urls = [f"https://s.siyu.example/{slug}" for slug in ("one", "two", "three")]
    canvas = Image.new("RGB", (1500, 1200), "white")
    for i, url in enumerate(urls):  # a staircase, so reading order is unambiguous
        tile = Image.open(io.BytesIO(render_png(url, QrOptions(size=300))))
        canvas.paste(tile, (100 + i * 450, 100 + i * 350))
    codes = decode_image(encode(canvas, "PNG"))
    assert [c.text for c in codes] == urls
    assert all(c.format == "QRCode" and c.url == c.text for c in codes)
    left, top, right, bottom = codes[0].bbox
    assert 100 <= left < right <= 400 and 100 <= top < bottom <= 400


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP"])
def test_jpeg_and_webp_uploads_decode(fmt: str) -> None:
    photo = Image.open(io.BytesIO(render_png(URL))).convert("RGB")
    assert only_text(encode(photo, fmt, quality=80)) == URL


def test_transparent_upload_is_flattened_onto_white() -> None:
    # Transparent pixels whose hidden colour is black: a naive convert("L") turns the image solid black.
    code = Image.open(io.BytesIO(render_png(URL))).convert("L")
    alpha = code.point(lambda v: 0 if v > 128 else 255)
    rgba = Image.merge("RGBA", (Image.new("L", code.size, 0),) * 3 + (alpha,))
    assert only_text(encode(rgba, "PNG")) == URL


def test_image_without_a_code_is_no_code_found() -> None:
    with pytest.raises(QrDecodeError) as info:
        decode_image(encode(Image.new("RGB", (400, 300), (200, 220, 240)), "PNG"))
    assert (info.value.field, info.value.code) == ("image", "no_code_found")


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (os.urandom(4096), "unsupported_format"),
        (b"", "corrupt"),
        (render_png(URL)[:300], "corrupt"),  # truncated PNG
        (b"\xff\xd8\xff\xe0" + os.urandom(2000), "corrupt"),  # JPEG magic, garbage body
        (encode(Image.new("RGB", (64, 64)), "GIF"), "unsupported_format"),
        (encode(Image.new("RGB", (64, 64)), "BMP"), "unsupported_format"),
        (encode(Image.new("RGB", (64, 64)), "TIFF"), "unsupported_format"),
    ],
)
def test_unreadable_or_unsupported_uploads_are_rejected_clearly(data: bytes, code: str) -> None:
    with pytest.raises(QrDecodeError) as info:
        decode_image(data)
    assert (info.value.field, info.value.code) == ("image", code)


@pytest.mark.parametrize("width", [7_000, 20_000])  # 49 MP trips our limit; 400 MP also Pillow's own
def test_huge_dimension_png_is_refused_before_any_pixel_is_decoded(
    width: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert width * width > MAX_PIXELS

    def no_decoding(self: object) -> None:
        raise AssertionError("pixel data must not be decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    bomb = png_claiming(width, width)
    assert len(bomb) < 100
    with pytest.raises(QrDecodeError) as info:
        decode_image(bomb)
    assert info.value.code == "too_many_pixels"


def test_huge_webp_is_refused_before_pillow_allocates_its_canvas(monkeypatch: pytest.MonkeyPatch) -> None:
    # Pillow's WebP reader allocates the canvas inside Image.open, so the check must come earlier.
    def no_open(*args: object, **kwargs: object) -> None:
        raise AssertionError("Image.open must not be reached")

    monkeypatch.setattr(Image, "open", no_open)
    with pytest.raises(QrDecodeError) as info:
        decode_image(webp_claiming(12_000, 12_000))  # 144 MP: below Pillow's own bomb limit
    assert info.value.code == "too_many_pixels"


def test_oversized_upload_is_too_large_without_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "open", lambda *a, **k: pytest.fail("must not parse"))
    with pytest.raises(QrDecodeError) as info:
        decode_image(b"\x89PNG\r\n\x1a\n" + bytes(MAX_UPLOAD_BYTES))
    assert (info.value.field, info.value.code) == ("image", "too_large")


# --- URL extraction ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("https://s.siyu.example/x?a=1", "https://s.siyu.example/x?a=1"),
        ("  http://example.com/path \n", "http://example.com/path"),
        ("HTTPS://EXAMPLE.COM", "HTTPS://EXAMPLE.COM"),
        ("https://例子.测试/路径", "https://例子.测试/路径"),
        ("WIFI:T:WPA;S:cafe;P:secret;;", None),
        ("javascript:alert(1)", None),
        ("ftp://example.com/file", None),
        ("https://", None),
        ("https://[::1", None),
        ("https://example.com/a b", None),
        ("see https://example.com", None),
        ("", None),
    ],
)
def test_extract_url_accepts_only_single_http_urls(text: str, expected: str | None) -> None:
    assert extract_url(text) == expected
