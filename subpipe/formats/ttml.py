"""TTML for broadcasters and platforms: an IMSC 1.1 Text document, and its EBU-TT-D
variant for European-style online delivery; read back through ttconv.

Written with the standard library's ElementTree (names, escaping and namespaces are
its business, not string pasting). ttconv (BSD-2) reads: it turns any TTML, whoever
wrote it, into its model (timing inherited through div and p, referential styles
resolved), and ``check`` measures the cues of that model. ttconv's IMSC writer could not
write these documents: it puts ``xml:lang`` on the root only (never per ``p``, as a
bilingual file needs) and every style inline, which EBU-TT-D forbids on content.

One layout serves both: a region over the title-safe area (10 % in from each edge),
text at its bottom, centred; a style per language naming its font, Urdu's with
``tts:direction="rtl"`` and ``tts:unicodeBidi="embed"``, so the paragraph and each line
run right to left (TTML says so itself: no direction marks in the text); each line a
``span`` on a translucent black box, lines parted by ``br``. A bilingual cue is two
``p`` with the same times, each with its ``xml:lang``, the target's smaller, below the
source (``[output] target_scale``, ``target_above``). IMSC documents say their profile
(``ttp:contentProfiles``) and the film's frame rate (``ttp:frameRate``, with the
multiplier for 29.97); EBU-TT-D ones what they conform to (``ebuttm:conformsToStandard``),
in media time, styled by reference only.
"""

from __future__ import annotations

import logging
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from fractions import Fraction
from math import gcd
from pathlib import Path

from ..bilingual import split_pair
from ..findings import WARNING
from ..script import shown
from ..types import Cue, Entry, Track
from .base import (
    LANG_TAGS,
    RTL,
    Delivery,
    Parsed,
    Unreadable,
    clock,
    decode,
    defect,
    languages,
    millis,
    require_valid,
    track_from_file,
)

TT = "http://www.w3.org/ns/ttml"
TTP = "http://www.w3.org/ns/ttml#parameter"
TTS = "http://www.w3.org/ns/ttml#styling"
XML = "http://www.w3.org/XML/1998/namespace"
EBUTTM = "urn:ebu:tt:metadata"
EBUTTS = "urn:ebu:tt:style"
IMSC_11_TEXT = "http://www.w3.org/ns/ttml/profile/imsc1.1/text"
EBU_TT_D = "urn:ebu:tt:distribution:2018-04"
_PREFIXES = {"": TT, "ttp": TTP, "tts": TTS, "ebuttm": EBUTTM, "ebutts": EBUTTS}
# Cells of 1/50 of the width and 1/30 of the height (EBU-TT-D's customary grid): the
# house text is 1.6 cells high, about 5.3 % of the picture.
CELLS = "50 30"
FONT_SIZE = "160%"
GENERIC_FONT = "proportionalSansSerif"
# What XML 1.0 can't hold, whatever the escaping; never visible text.
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
# XML's white space, which TTML collapses (a no-break space is text).
_XML_SPACE = re.compile("[ \t\r\n]+")


def compose_imsc(track: Track, delivery: Delivery | None = None) -> str:
    """The track as an IMSC 1.1 Text document; raises ValueError on a bad cue."""
    return _compose(track, delivery or Delivery(), ebu=False)


def compose_ebu_tt_d(track: Track, delivery: Delivery | None = None) -> str:
    """The track as an EBU-TT-D document; raises ValueError on a bad cue."""
    return _compose(track, delivery or Delivery(), ebu=True)


def _compose(track: Track, delivery: Delivery, *, ebu: bool) -> str:
    require_valid(track)
    langs = languages(track.lang)
    root = ET.Element(_q(TT, "tt"), {_q(XML, "lang"): LANG_TAGS[langs[0]],
                                     **_root_attributes(delivery, ebu)})
    head = ET.SubElement(root, _q(TT, "head"))
    if ebu:
        metadata = ET.SubElement(ET.SubElement(head, _q(TT, "metadata")), _q(EBUTTM, "documentMetadata"))
        ET.SubElement(metadata, _q(EBUTTM, "conformsToStandard")).text = EBU_TT_D
    _styling(ET.SubElement(head, _q(TT, "styling")), langs, delivery)
    ET.SubElement(ET.SubElement(head, _q(TT, "layout")), _q(TT, "region"), {
        _q(XML, "id"): "bottom", _q(TTS, "origin"): "10% 10%", _q(TTS, "extent"): "80% 80%",
        _q(TTS, "displayAlign"): "after"})
    div = ET.SubElement(ET.SubElement(root, _q(TT, "body"), {"region": "bottom"}), _q(TT, "div"))
    for number, cue in enumerate(track.cues, start=1):
        groups = split_pair(cue.lines, langs) if len(langs) == 2 else ((langs[0], cue.lines),)
        if len(groups) == 2 and delivery.target_above:
            groups = groups[::-1]
        for lang, lines in groups:
            _paragraph(div, cue, number, lang, lines, bilingual=len(langs) == 2, target=lang == langs[-1])
    _indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _root_attributes(delivery: Delivery, ebu: bool) -> dict[str, str]:
    attributes = {_q(TTP, "timeBase"): "media", _q(TTP, "cellResolution"): CELLS}
    if ebu:
        return attributes
    rate = delivery.frame_rate
    whole = Fraction(round(rate))
    attributes[_q(TTP, "contentProfiles")] = IMSC_11_TEXT
    attributes[_q(TTP, "frameRate")] = str(int(whole))
    if rate != whole:
        ratio = rate / whole
        attributes[_q(TTP, "frameRateMultiplier")] = f"{ratio.numerator} {ratio.denominator}"
    common = gcd(delivery.width, delivery.height)
    attributes[_q(TTP, "displayAspectRatio")] = f"{delivery.width // common} {delivery.height // common}"
    return attributes


def _styling(styling: ET.Element, langs: tuple[str, ...], delivery: Delivery) -> None:
    ET.SubElement(styling, _q(TT, "style"), {
        _q(XML, "id"): "paragraph", _q(TTS, "textAlign"): "center", _q(TTS, "fontSize"): FONT_SIZE,
        _q(TTS, "fontFamily"): GENERIC_FONT, _q(EBUTTS, "linePadding"): "0.5c"})
    ET.SubElement(styling, _q(TT, "style"), {
        _q(XML, "id"): "line", _q(TTS, "color"): "#FFFFFF", _q(TTS, "backgroundColor"): "#000000C2"})
    for lang in langs:
        family = ", ".join(f for f in (delivery.font(lang), GENERIC_FONT) if f)
        style = {_q(XML, "id"): lang, _q(TTS, "fontFamily"): family}
        if lang in RTL:
            style.update({_q(TTS, "direction"): "rtl", _q(TTS, "unicodeBidi"): "embed"})
        ET.SubElement(styling, _q(TT, "style"), style)
    if len(langs) == 2:
        ET.SubElement(styling, _q(TT, "style"), {
            _q(XML, "id"): "target", _q(TTS, "fontSize"): f"{_number(delivery.target_scale * 160)}%"})


def _paragraph(div: ET.Element, cue: Cue, number: int, lang: str, lines: tuple[str, ...], *,
               bilingual: bool, target: bool) -> None:
    styles = ["paragraph", lang] + (["target"] if bilingual and target else [])
    attributes = {_q(XML, "id"): f"c{number}-{lang}" if bilingual else f"c{number}",
                  "begin": clock(cue.start, "."), "end": clock(cue.end, "."), "style": " ".join(styles)}
    if bilingual:
        attributes[_q(XML, "lang")] = LANG_TAGS[lang]
    p = ET.SubElement(div, _q(TT, "p"), attributes)
    for index, line in enumerate(line for line in lines if shown(line).strip()):
        if index:
            ET.SubElement(p, _q(TT, "br"))
        ET.SubElement(p, _q(TT, "span"), {"style": f"line {lang}"}).text = _XML_ILLEGAL.sub("", shown(line).strip())


def _indent(root: ET.Element) -> None:
    """Indented for people, but never inside a ``p``, where white space is text."""
    ET.indent(root, space="  ")
    for p in root.iter(_q(TT, "p")):
        p.text = None
        for child in p:
            child.tail = None


def _q(namespace: str, name: str) -> str:
    return f"{{{namespace}}}{name}"


def _number(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


for _prefix, _uri in _PREFIXES.items():
    ET.register_namespace(_prefix, _uri)


# ---- reading ---------------------------------------------------------------------------

def looks_like(data: bytes) -> bool:
    """Whether the bytes are XML in TTML's namespace."""
    head = data.removeprefix(b"\xef\xbb\xbf").lstrip()
    return head.startswith(b"<") and TT.encode() in head[:4096]


def read_track(path: Path, lang: str) -> Track:
    """A track from a TTML file (IMSC, EBU-TT-D, or any other): its cues as ttconv reads them."""
    return track_from_file(path, lang, read_bytes)


def read_bytes(data: bytes) -> Parsed:
    """A TTML document as ``check`` reads it, through ttconv: each ``p`` a cue, with its
    times resolved through the ``div`` and ``body`` above it; paragraphs on screen over
    the same times in other languages (a bilingual cue's) are one cue, their lines in
    document order. What
    ttconv had to forgive is a warning each. Raises ``Unreadable`` for what is not TTML."""
    _, problems = decode(data)
    try:
        root = ET.fromstring(data.removeprefix(b"\xef\xbb\xbf"))
    except ET.ParseError as exc:
        raise Unreadable(f"not well-formed XML: {exc}") from None
    if root.tag != _q(TT, "tt"):
        raise Unreadable(f"not a TTML document (its root is {root.tag!r}, not tt)")
    from ttconv.imsc.reader import to_model  # only where TTML is read

    with _ttconv_said() as said:
        try:
            doc = to_model(ET.ElementTree(root))
        except Exception as exc:  # noqa: BLE001 - ttconv raises what it meets; the file is the cause
            raise Unreadable(f"ttconv can't read it: {exc}") from None
    if doc is None:
        raise Unreadable(f"ttconv can't read it: {'; '.join(said) or 'no document'}")
    problems += [defect(None, "ttml", f"ttconv: {message}", WARNING) for message in said]
    return Parsed(tuple(_merged(_paragraphs(doc))), tuple(problems))


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


class _ttconv_said:  # noqa: N801 - used as a context manager, like a function
    """What ttconv logs while it reads (its warnings and errors), kept off stderr."""

    def __enter__(self) -> list[str]:
        self.logger = logging.getLogger("ttconv")
        self.handler = _Collect()
        self.propagate = self.logger.propagate
        self.logger.addHandler(self.handler)
        self.logger.propagate = False
        return self.handler.messages

    def __exit__(self, *exc: object) -> None:
        self.logger.removeHandler(self.handler)
        self.logger.propagate = self.propagate


def _paragraphs(doc) -> Iterator[tuple[Fraction, Fraction | None, str, tuple[str, ...]]]:  # noqa: ANN001
    """(begin, end, language, lines) of each ``p`` in document order, times on the media timeline."""
    import ttconv.model as model

    def walk(element, begin: Fraction, end: Fraction | None):  # noqa: ANN001, ANN202
        own_begin = begin + (element.get_begin() or 0)
        own_end = begin + element.get_end() if element.get_end() is not None else end
        if isinstance(element, model.P):
            yield own_begin, own_end, element.get_lang(), _lines(element)
            return
        for child in element:
            if isinstance(child, (model.Div, model.P)):
                yield from walk(child, own_begin, own_end)

    body = doc.get_body()
    if body is not None:
        yield from walk(body, Fraction(0), None)


def _lines(p) -> tuple[str, ...]:  # noqa: ANN001
    """The text of a ``p``, a line per ``br``, white space collapsed as TTML's default does."""
    import ttconv.model as model

    lines, current = [], []

    def collect(element) -> None:  # noqa: ANN001
        for child in element:
            if isinstance(child, model.Br):
                lines.append("".join(current))
                current.clear()
            elif isinstance(child, model.Text):
                current.append(child.get_text())
            else:
                collect(child)

    collect(p)
    lines.append("".join(current))
    return tuple(_XML_SPACE.sub(" ", line).strip(" ") for line in lines)


def _merged(paragraphs: Iterator[tuple[Fraction, Fraction | None, str, tuple[str, ...]]]) -> Iterator[Entry]:
    """A cue per paragraph; the paragraphs of one cue in several languages (a bilingual
    file's: same times, another ``xml:lang``) are one."""
    cues: list[tuple[float | None, float | None, tuple[str, ...]]] = []
    langs: list[set[str]] = []
    for begin, end, lang, lines in paragraphs:
        times = (_seconds(begin), _seconds(end))
        if cues and cues[-1][:2] == times and lang not in langs[-1]:
            cues[-1] = (*times, cues[-1][2] + lines)
            langs[-1].add(lang)
        else:
            cues.append((*times, lines))
            langs.append({lang})
    for number, (start, end, lines) in enumerate(cues, start=1):
        yield Entry(number, start, end, lines)


def _seconds(value: Fraction | None) -> float | None:
    return None if value is None else millis(float(value)) / 1000
