"""QR codes for Siyu: render short links as PNG/SVG/terminal art, and scan codes out of uploaded images."""

from .decode import DecodedCode, decode_image, extract_url
from .errors import QrDecodeError, QrError, QrOptionError
from .generate import QrLayout, QrOptions, layout, render_png, render_svg, render_terminal
from .images import MAX_PIXELS, MAX_UPLOAD_BYTES

__all__ = [
    "MAX_PIXELS",
    "MAX_UPLOAD_BYTES",
    "DecodedCode",
    "QrDecodeError",
    "QrError",
    "QrLayout",
    "QrOptionError",
    "QrOptions",
    "decode_image",
    "extract_url",
    "layout",
    "render_png",
    "render_svg",
    "render_terminal",
]
