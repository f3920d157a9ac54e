"""Uploaded text files as people make them: UTF-8 (with or without BOM) or GBK from Excel in China.

Shared by the link importer and the bulk data imports, so both accept the same files and say the
same thing about the ones they cannot read.
"""

from __future__ import annotations

import codecs

from siyu.errors import InvalidInput

# GB18030 is a superset of GBK and GB2312 and decodes everything they do: asking for either gets it.
_ALIASES = {"gbk": "gb18030", "gb2312": "gb18030", "cp936": "gb18030", "utf-8": "utf-8-sig", "utf8": "utf-8-sig"}


def decode_text(data: bytes, encoding: str | None = None) -> str:
    """The file's text. Without `encoding`: UTF-16 when it starts with its BOM (Excel's "Unicode text"),
    else UTF-8 (BOM or not), else GBK, since Excel in China saves CSV that way. With an `encoding`
    (e.g. 'gbk', 'big5'): exactly that, and a clear error where the file does not fit it."""
    if encoding is None or not encoding.strip():
        utf16 = ("utf-16",) if data[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE) else ()
        for candidate in (*utf16, "utf-8-sig", "gb18030"):
            try:
                return data.decode(candidate)
            except UnicodeDecodeError:
                continue
        raise InvalidInput("file", "not UTF-8 or GBK text", code="file_encoding")
    name = _ALIASES.get(encoding.strip().lower(), encoding.strip().lower())
    try:
        codecs.lookup(name)
    except LookupError:
        raise InvalidInput(
            "encoding", f"unknown encoding '{encoding[:40]}'", code="encoding_unknown", params={"name": encoding[:40]}
        ) from None
    try:
        return data.decode(name)
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            "file",
            f"not valid {encoding} text (byte {exc.start})",
            code="encoding_mismatch",
            params={"encoding": encoding, "offset": exc.start},
        ) from None
