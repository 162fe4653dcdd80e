"""Text files people keep in editors (configs, manifests): UTF-8 with or without a
byte-order mark, or UTF-16 with one, as some Windows editors re-save them."""

from __future__ import annotations

import codecs

_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def decode_text(data: bytes) -> str:
    """The text of ``data``; raises UnicodeDecodeError when it is none of those encodings."""
    for bom, codec in _BOMS:
        if data.startswith(bom):
            return data.decode(codec)
    return data.decode("utf-8")
