"""Names and terms with their rendering per language, enforced through translation.

A term found in the source is swapped for a placeholder (``ZXQ<n>``: plain capitals and
digits, which Marian's SentencePiece vocabularies keep and the models copy through), and
the placeholder in the output is swapped for the term's target rendering. Every
placeholder that comes back dropped, duplicated or mangled is reported, never guessed.
"""

from __future__ import annotations

import csv
import io
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from .errors import ConfigError
from .textfile import decode_text, read_small
from .types import LANGUAGES

PLACEHOLDER = "ZXQ{}"
_EXACT = re.compile(r"ZXQ(\d+)")
# What a model may make of a placeholder: other case, spaces or punctuation inside it.
_FUZZY = re.compile(r"z[\s_\-.]*x[\s_\-.]*q[\s_\-.]*(\d*)", re.IGNORECASE)
_TERM_KEYS = {"term", "note", "aliases", *LANGUAGES}
# A glossary of thousands of terms is well under this; a bigger file is none.
MAX_GLOSSARY_BYTES = 16 << 20


@dataclass(frozen=True)
class Term:
    """One glossary entry: a key, its rendering per language, and accepted variants."""

    key: str
    renderings: tuple[tuple[str, str], ...]
    aliases: tuple[tuple[str, str], ...] = ()
    note: str = ""

    def rendering(self, lang: str) -> str | None:
        return dict(self.renderings).get(lang)

    def forms(self, lang: str) -> tuple[str, ...]:
        """Every spelling to look for in ``lang`` text, the rendering first."""
        main = self.rendering(lang)
        extra = tuple(alias for code, alias in self.aliases if code == lang)
        return ((main,) if main else ()) + extra


@dataclass(frozen=True)
class Glossary:
    terms: tuple[Term, ...] = ()

    def __len__(self) -> int:
        return len(self.terms)


@dataclass(frozen=True)
class Slot:
    """One protected occurrence: placeholder ``index`` stands for ``term`` in the output."""

    index: int
    term: str
    source: str
    target: str

    @property
    def placeholder(self) -> str:
        return PLACEHOLDER.format(self.index)


@dataclass(frozen=True)
class Protected:
    text: str
    slots: tuple[Slot, ...] = ()


@dataclass(frozen=True)
class GlossaryUse:
    """A term carried through: ``how`` is ``placeholder`` or ``found`` (already in the output)."""

    term: str
    target: str
    how: str = "placeholder"
    cues: tuple[int, ...] = ()


@dataclass(frozen=True)
class GlossaryMiss:
    """A term that did not come through as it should: ``dropped``, ``duplicated`` or ``mangled``."""

    term: str
    target: str
    reason: str
    detail: str = ""
    cues: tuple[int, ...] = ()


@dataclass(frozen=True)
class Checked:
    """The model's output with only well-formed placeholders left, and what happened to each."""

    text: str
    uses: tuple[GlossaryUse, ...]
    misses: tuple[GlossaryMiss, ...]


# --- loading -------------------------------------------------------------------------

def load_glossary(path: Path) -> Glossary:
    """Read a glossary from TOML (``[[term]]`` tables) or CSV (``term,en,zh,ur[,note]``)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"glossary {path} does not exist")
    if path.suffix.lower() == ".csv":
        return _from_rows(_csv_rows(path), path)
    if path.suffix.lower() == ".toml":
        return _from_rows(_toml_rows(path), path)
    raise ConfigError(f"glossary {path}: expected a .toml or .csv file")


def _toml_rows(path: Path) -> list[dict]:
    try:
        # A byte-order mark, as editors on Windows save it, is fine.
        data = tomllib.loads(decode_text(_read(path)))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"glossary {path}: {exc}") from exc
    except ValueError:  # Python's own limit: an integer of thousands of digits
        raise ConfigError(f"glossary {path}: it holds a number thousands of digits long") from None
    except RecursionError:
        raise ConfigError(f"glossary {path}: its values are nested too deeply") from None
    unknown = set(data) - {"term"}
    if unknown:
        raise ConfigError(f"glossary {path}: unknown table {sorted(unknown)[0]!r} (expected [[term]])")
    terms = data.get("term", [])
    if not isinstance(terms, list):
        raise ConfigError(f"glossary {path}: term = {_short(terms)}: write each entry as a [[term]] table")
    return terms


def _read(path: Path) -> bytes:
    try:
        return read_small(path, MAX_GLOSSARY_BYTES)
    except OSError as exc:
        raise ConfigError(f"glossary {path} can't be read: {exc.strerror}") from None


def _csv_rows(path: Path) -> list[dict]:
    # utf-8-sig: spreadsheet editors put a BOM in front of the header.
    try:
        text = _read(path).decode("utf-8-sig")
        reader = csv.DictReader(io.StringIO(text, newline=""))
        rows = [{k.strip(): (v or "").strip() for k, v in row.items() if k} for row in reader]
    except UnicodeDecodeError:
        raise ConfigError(f"glossary {path} is not UTF-8 text") from None
    except csv.Error as exc:
        raise ConfigError(f"glossary {path} line {reader.line_num + 1}: {exc}") from None
    for row in rows:
        if "aliases" in row:
            row["aliases"] = _csv_aliases(row["aliases"], path)
    return rows


def _csv_aliases(cell: str, path: Path) -> dict[str, list[str]]:
    """``en:China-Pakistan Economic Corridor|ur:سی پیک`` -> per-language lists."""
    out: dict[str, list[str]] = {}
    for item in filter(None, (part.strip() for part in cell.split("|"))):
        lang, _, alias = item.partition(":")
        if not alias:
            raise ConfigError(f"glossary {path}: alias {item!r} should read LANG:TEXT")
        out.setdefault(lang.strip(), []).append(alias.strip())
    return out


def _from_rows(rows: Iterable[dict], path: Path) -> Glossary:
    terms = tuple(_term(row, path) for row in rows)
    keys = [t.key for t in terms]
    dupes = sorted({k for k in keys if keys.count(k) > 1})
    if dupes:
        raise ConfigError(f"glossary {path}: term {dupes[0]!r} appears twice")
    return Glossary(terms)


def _term(row: dict, path: Path) -> Term:
    if not isinstance(row, dict):
        raise ConfigError(f"glossary {path}: each entry must be a [[term]] table, not {_short(row)}")
    unknown = sorted(set(row) - _TERM_KEYS)
    if unknown:
        raise ConfigError(f"glossary {path}: unknown key {unknown[0]!r} (known: term, en, zh, ur, aliases, note)")
    # A number where a rendering goes (en = 5) is a slip, never a term to protect.
    for key in ("term", *LANGUAGES, "note"):
        if key in row and not isinstance(row[key], str):
            raise ConfigError(f"glossary {path}: {key} = {_short(row[key])} must be text in quotes")
    renderings = tuple((lang, str(row[lang]).strip()) for lang in LANGUAGES if str(row.get(lang, "")).strip())
    key = str(row.get("term") or dict(renderings).get("en") or "").strip()
    if not key or not renderings:
        raise ConfigError(f"glossary {path}: an entry needs a term and at least one rendering: {row}")
    aliases = row.get("aliases") or {}
    if not isinstance(aliases, dict) or set(aliases) - set(LANGUAGES) or not all(
            isinstance(v, list) and all(isinstance(a, str) for a in v) for v in aliases.values()):
        raise ConfigError(f"glossary {path}: aliases of {key!r} must map en/zh/ur to lists")
    flat = tuple((lang, str(a)) for lang in LANGUAGES for a in aliases.get(lang, ()))
    return Term(key, renderings, flat, str(row.get("note", "")))


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


# --- prompting -----------------------------------------------------------------------

def whisper_prompt(glossary: Glossary, lang: str, max_chars: int = 200) -> str:
    """The terms in ``lang`` as one line, for Whisper's initial prompt.

    Whisper keeps only the last 224 prompt tokens, so the list stops at ``max_chars``.
    """
    sep, end = ("、", "。") if lang == "zh" else ("، ", "۔") if lang == "ur" else (", ", ".")
    out: list[str] = []
    for term in glossary.terms:
        word = term.rendering(lang)
        if not word or word in out:
            continue
        if len(sep.join(out + [word]) + end) > max_chars:
            break
        out.append(word)
    return sep.join(out) + end if out else ""


# --- protecting and restoring --------------------------------------------------------

def protect(text: str, src: str, tgt: str, glossary: Glossary | None, start: int = 0) -> Protected:
    """Swap every glossary term of ``src`` found in ``text`` for a numbered placeholder.

    Longer forms are matched first so "Attaullah Tarar" wins over "Tarar". Terms
    without a ``tgt`` rendering are left for the model.
    """
    if not glossary:
        return Protected(text)
    forms = sorted(
        ((form, term) for term in glossary.terms if term.rendering(tgt) for form in term.forms(src)),
        key=lambda pair: -len(pair[0]),
    )
    if not forms:
        return Protected(text)
    pattern = re.compile("|".join(_form_pattern(form, src) for form, _ in forms))
    by_form = {form.casefold(): term for form, term in reversed(forms)}
    slots: list[Slot] = []

    def swap(match: re.Match) -> str:
        term = by_form[match.group(0).casefold()]
        slot = Slot(start + len(slots), term.key, match.group(0), term.rendering(tgt) or "")
        slots.append(slot)
        if src == "zh":
            return slot.placeholder
        # A space keeps the placeholder a word of its own where a letter touches it.
        before = " " if match.start() > 0 and text[match.start() - 1].isalnum() else ""
        after = " " if match.end() < len(text) and text[match.end()].isalnum() else ""
        return f"{before}{slot.placeholder}{after}"

    protected = pattern.sub(swap, text)
    return Protected(protected if slots else text, tuple(slots))


def _form_pattern(form: str, lang: str) -> str:
    body = re.escape(form)
    if lang == "zh":
        return body
    # Word edges: not inside a longer word (Urdu letters and marks count as word characters).
    return rf"(?<![\w\u0610-\u061A\u064B-\u065F\u0670\u06D6-\u06ED]){body}(?![\w\u0610-\u061A\u064B-\u065F\u0670\u06D6-\u06ED])"


def check(output: str, slots: Iterable[Slot]) -> Checked:
    """Judge every placeholder in ``output``; keep one clean copy of each that came through."""
    slots = tuple(slots)
    by_index = {slot.index: slot for slot in slots}
    seen: dict[int, int] = {}
    mangled: list[GlossaryMiss] = []
    mangled_slots: set[int] = set()

    def judge(match: re.Match) -> str:
        exact = _EXACT.fullmatch(match.group(0))
        index = int(match.group(1)) if match.group(1) else None
        slot = by_index.get(index) if index is not None else None
        if exact and slot is not None:
            seen[slot.index] = seen.get(slot.index, 0) + 1
            return slot.placeholder if seen[slot.index] == 1 else ""
        name = slot.term if slot else "?"
        if slot is not None:
            mangled_slots.add(slot.index)
        mangled.append(GlossaryMiss(name, slot.target if slot else "", "mangled", match.group(0)))
        return ""

    text = _tidy(_FUZZY.sub(judge, output))
    uses: list[GlossaryUse] = []
    misses: list[GlossaryMiss] = []
    for slot in slots:
        count = seen.get(slot.index, 0)
        if count == 1:
            uses.append(GlossaryUse(slot.term, slot.target))
        elif count > 1:
            misses.append(GlossaryMiss(slot.term, slot.target, "duplicated", f"{count} copies"))
        elif slot.target and slot.target in text:
            uses.append(GlossaryUse(slot.term, slot.target, how="found"))
        elif slot.index not in mangled_slots:
            misses.append(GlossaryMiss(slot.term, slot.target, "dropped"))
    return Checked(text, tuple(uses), tuple(misses) + tuple(mangled))


def fill(text: str, slots: Iterable[Slot]) -> str:
    """Swap the clean placeholders left by :func:`check` for the target renderings."""
    by_index = {slot.index: slot.target for slot in slots}
    return _EXACT.sub(lambda m: by_index.get(int(m.group(1)), m.group(0)), text)



def _tidy(text: str) -> str:
    """Close the gaps a removed placeholder leaves."""
    text = re.sub(r"[ \t]{2,}", " ", text)
    text = re.sub(r" +([,.;:!?،۔؟，。！？])", r"\1", text)
    return text.strip()
