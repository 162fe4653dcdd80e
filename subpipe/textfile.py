"""Text files people keep in editors (configs, manifests, glossaries): UTF-8 with or
without a byte-order mark, or UTF-16 with one, as some Windows editors re-save them;
read only when they are regular files of a sane size."""

from __future__ import annotations

import codecs
import errno
import os
import stat
from pathlib import Path

_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


class NotRegularFile(OSError):
    """A named pipe, a device or a socket where a small file was expected: reading it
    could hang (a pipe with no writer) or never end (``/dev/zero``)."""

    def __init__(self, kind: str):
        super().__init__(errno.EINVAL, kind)


class TooLarge(OSError):
    """A file far larger than any of its kind: read whole, it would fill the memory."""

    def __init__(self, limit: int):
        super().__init__(errno.EFBIG, f"it is larger than {_size(limit)}")


def decode_text(data: bytes) -> str:
    """The text of ``data``; raises UnicodeDecodeError when it is none of those encodings."""
    for bom, codec in _BOMS:
        if data.startswith(bom):
            return data.decode(codec)
    return data.decode("utf-8")


def read_small(path: Path, limit: int) -> bytes:
    """The bytes of the regular file ``path``, at most ``limit`` of them; raises
    NotRegularFile, TooLarge, or the OSError of a file that can't be read."""
    kind = file_kind(os.stat(path).st_mode)
    if kind == "a folder":
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
    if kind:
        raise NotRegularFile(kind)
    # Not blocking: if a pipe took the file's place since, opening it must not wait for a writer.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as f:
        kind = file_kind(os.fstat(fd).st_mode)
        if kind:
            raise NotRegularFile(kind)
        data = f.read(limit + 1)
    if len(data) > limit:
        raise TooLarge(limit)
    return data


def file_kind(mode: int) -> str:
    """'' for a regular file, else what it is, in words."""
    if stat.S_ISREG(mode):
        return ""
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _size(limit: int) -> str:
    return f"{limit >> 20} MB" if limit >= 1 << 20 else f"{limit >> 10} KB"
