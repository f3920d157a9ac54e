"""Scan QR codes out of uploaded images (e.g. a customer's poster photo, to find which link it points at)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

import zxingcpp

from .errors import QrDecodeError
from .images import flatten, open_image

QR_FORMATS = zxingcpp.BarcodeFormats(
    [zxingcpp.BarcodeFormat.QRCode, zxingcpp.BarcodeFormat.MicroQRCode, zxingcpp.BarcodeFormat.RMQRCode]
)
"""Only the QR family: scanning for 1D barcodes too is slower and yields false hits in busy photos."""

Point = tuple[int, int]


@dataclass(frozen=True)
class DecodedCode:
    """One code found in an image. ``corners`` are top-left, top-right, bottom-right, bottom-left in
    the symbol's own orientation, in pixels of the (EXIF-rotated) image."""

    text: str
    format: str
    """zxing-cpp format name: ``QRCode``, ``MicroQRCode`` or ``RMQRCode``."""
    corners: tuple[Point, Point, Point, Point]

    @property
    def bbox(self) -> tuple[int, int, int, int]:
        """Axis-aligned (left, top, right, bottom), handy for drawing a highlight box."""
        xs = [p[0] for p in self.corners]
        ys = [p[1] for p in self.corners]
        return min(xs), min(ys), max(xs), max(ys)

    @property
    def url(self) -> str | None:
        return extract_url(self.text)


def decode_image(data: bytes) -> list[DecodedCode]:
    """Return every QR code in a PNG/JPEG/WebP image, in reading order (top to bottom, left to right).

    Raises QrDecodeError (``field="image"``) with ``code`` ``too_large``, ``too_many_pixels``,
    ``unsupported_format``, ``corrupt`` or ``no_code_found``.
    """
    gray = flatten(open_image(data, field="image"), "L")
    found = zxingcpp.read_barcodes(gray, formats=QR_FORMATS)
    if not found:
        raise QrDecodeError("no_code_found", "no QR code could be read in this image")
    codes = []
    for barcode in found:
        pos = barcode.position
        corners = tuple((p.x, p.y) for p in (pos.top_left, pos.top_right, pos.bottom_right, pos.bottom_left))
        codes.append(DecodedCode(text=barcode.text, format=barcode.format.name, corners=corners))  # type: ignore[arg-type]
    codes.sort(key=lambda c: (c.bbox[1], c.bbox[0]))
    return codes


_BAD_URL_CHARS = re.compile(r"[\s\x00-\x1f\x7f]")


def extract_url(text: str) -> str | None:
    """Return ``text`` (trimmed) if it is a single absolute http(s) URL with a host, else None.

    Scanned codes also carry Wi-Fi credentials, vCards or ``javascript:`` payloads; only web links may be
    followed or turned into short links.
    """
    candidate = text.strip()
    if _BAD_URL_CHARS.search(candidate):
        return None
    try:
        parts = urlsplit(candidate)
        host = parts.hostname
    except ValueError:  # e.g. an unbalanced IPv6 bracket
        return None
    if parts.scheme.lower() not in ("http", "https") or not host:
        return None
    return candidate
