"""Safe loading of untrusted image bytes (QR scan uploads and logos share these limits).

Every check that can be done from the header runs before any pixel data is decoded, so a small file
claiming a huge canvas (a decompression bomb) is rejected without allocating the canvas.
"""

from __future__ import annotations

import io
import struct

from PIL import Image, ImageOps

from .errors import QrDecodeError

MAX_UPLOAD_BYTES = 10 * 1024 * 1024
"""Largest accepted file; phone photos are 2-6 MB, so 10 MB leaves headroom without inviting abuse."""

MAX_PIXELS = 40_000_000
"""Largest accepted canvas (40 MP, above any phone camera); ~160 MB as RGBA, the worst case we allow."""

ALLOWED_FORMATS = ("PNG", "JPEG", "WEBP")
"""Pillow format names we parse; other decoders are never reached, which keeps the attack surface small."""

_PARSE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError, KeyError)
"""What Pillow raises for truncated or malformed files (it is not consistent across plugins)."""


def sniff_format(data: bytes) -> str | None:
    """Return the Pillow format name implied by the magic bytes, or None when it is not one we accept.

    Sniffing first means only the matching Pillow plugin ever sees the bytes; the filename and the
    client's Content-Type are never trusted.
    """
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def _webp_canvas_size(data: bytes) -> tuple[int, int] | None:
    """Read a WebP canvas size from its header.

    Pillow's WebP plugin allocates the whole canvas inside ``Image.open`` (only refusing above its own,
    much higher, global bomb limit), so our pixel limit must be applied before calling it.
    """
    chunk = data[12:16]
    if chunk == b"VP8 " and len(data) >= 30 and data[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack_from("<HH", data, 26)
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and len(data) >= 25 and data[20] == 0x2F:
        bits = struct.unpack_from("<I", data, 21)[0]
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X" and len(data) >= 30:
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return width, height
    return None


_PIXEL_LIMIT = {"max": MAX_PIXELS // 1_000_000}
_PIXEL_LIMIT_REASON = f"image has more than {_PIXEL_LIMIT['max']} megapixels"


def _check_pixels(size: tuple[int, int], field: str) -> None:
    width, height = size
    if width * height > MAX_PIXELS:
        reason = f"{_PIXEL_LIMIT_REASON} ({width}x{height})"
        raise QrDecodeError("too_many_pixels", reason, field, _PIXEL_LIMIT)


def open_image(data: bytes, field: str = "image") -> Image.Image:
    """Validate and fully decode untrusted image bytes (PNG, JPEG or WebP) into a loaded Pillow image.

    The returned image is EXIF-orientation corrected, so coordinates match what a person sees.
    Raises QrDecodeError with ``field`` set to the caller's field name.
    """
    if not isinstance(data, bytes | bytearray):
        raise QrDecodeError("corrupt", "expected image bytes", field)
    if len(data) > MAX_UPLOAD_BYTES:
        limit_mb = MAX_UPLOAD_BYTES // (1024 * 1024)
        reason = f"file is {len(data)} bytes; the limit is {limit_mb} MB"
        raise QrDecodeError("too_large", reason, field, {"size": len(data), "max": limit_mb})
    if not data:
        raise QrDecodeError("corrupt", "file is empty", field)
    data = bytes(data)
    fmt = sniff_format(data)
    if fmt is None:
        raise QrDecodeError("unsupported_format", "only PNG, JPEG and WebP images are accepted", field)
    if fmt == "WEBP":
        size = _webp_canvas_size(data)
        if size is None:
            raise QrDecodeError("corrupt", "WebP header is unreadable", field)
        _check_pixels(size, field)

    try:
        # Lazy: Image.open parses headers only (WebP aside, handled above); no pixel data yet.
        img = Image.open(io.BytesIO(data), formats=[fmt])
    except Image.DecompressionBombError as exc:  # Pillow's own (higher, global) limit fired first
        raise QrDecodeError("too_many_pixels", _PIXEL_LIMIT_REASON, field, _PIXEL_LIMIT) from exc
    except _PARSE_ERRORS as exc:
        raise QrDecodeError("corrupt", f"not a readable {fmt} image", field) from exc
    if img.format not in ALLOWED_FORMATS:  # defence in depth: trust what Pillow parsed, not the sniff
        raise QrDecodeError("unsupported_format", "only PNG, JPEG and WebP images are accepted", field)
    _check_pixels(img.size, field)

    try:
        img.load()
        ImageOps.exif_transpose(img, in_place=True)
    except Image.DecompressionBombError as exc:
        raise QrDecodeError("too_many_pixels", _PIXEL_LIMIT_REASON, field, _PIXEL_LIMIT) from exc
    except _PARSE_ERRORS as exc:
        raise QrDecodeError("corrupt", f"{fmt} image is truncated or damaged", field) from exc
    return img


def has_alpha(img: Image.Image) -> bool:
    """True if the image carries transparency (alpha channel or a palette/tRNS transparent colour)."""
    return img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info


def flatten(img: Image.Image, mode: str, background: tuple[int, int, int] = (255, 255, 255)) -> Image.Image:
    """Convert to ``mode`` ("L" or "RGB"), compositing transparency onto ``background``.

    A plain convert() would drop alpha and expose whatever colour sits under transparent pixels
    (often black), which hides a QR code drawn on a transparent background.
    """
    if has_alpha(img):
        rgba = img.convert("RGBA")
        base = Image.new("RGBA", rgba.size, (*background, 255))
        base.alpha_composite(rgba)
        return base.convert(mode)
    return img.convert(mode)
