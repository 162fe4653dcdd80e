"""Wiring: video in, subtitle files out. Each stage lives in its own module.

listen (media, voice activity, Whisper) -> cues (shaping) -> translate -> formats (files),
with the judge of the rules (rules.py) counting what an editor must look at.
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable, Mapping, Sequence

from .asr import Progress
from .asr.device import placed
from .bilingual import bilingual_tracks
from .cache import StageCache, file_identity, key_of
from .config import Config
from .cues import ShapeResult, shape
from .digest import sha256_file
from .errors import InputError, OutputError, SubpipeError, UsageError
from .findings import Finding, record
from .formats import FORMATS, Delivery, Format, chosen
from .formats.names import review_name, split_track, track_name
from .formats.srt import laid_out
from .glossary import Glossary, load_glossary
from .listen import Heard, Sound, TranscriberFactory, listen, load_transcriber
from .media import MediaInfo, check_readable, probe
from .outputs import OutputSet
from .review import write_review
from .rules import Rules, judge_track, rule_breaks
from .translate.engine import Hearing
from .translate.routes import bilingual_pairs, check_models, check_targets, directions, make_translator, target_langs
from .translate.track import findings as translation_findings
from .translate.track import translate_tracks
from .types import LANGUAGES, Cue, Track

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class RunRequest:
    video: Path
    lang: str = "auto"  # ur | zh | en | auto
    audio_stream: int | None = None
    out_dir: Path | None = None
    force: bool = False
    targets: tuple[str, ...] = ()
    review: bool = False  # also write <stem>.review.html and its proxy beside the tracks


@dataclass(frozen=True)
class RunResult:
    """What a run wrote and what it found for an editor: rule breaks in the written
    tracks, untranscribed speech, damaged audio, timing and script findings from cue
    shaping, the translation's flags (findings.CATEGORIES counts them)."""

    lang: str
    outputs: tuple[Path, ...]
    cues: int
    duration: float
    findings: tuple[Finding, ...] = field(default_factory=tuple)
    warnings: tuple[str, ...] = field(default_factory=tuple)
    notices: tuple[str, ...] = field(default_factory=tuple)

    def counts(self) -> dict[str, int]:
        """Findings per category, in ``findings.CATEGORIES`` order, those with none left out."""
        return record(self.findings)["counts"]


@dataclass(frozen=True)
class _Translation:
    """Every track a run makes (plain text, by language) and what the translation said:
    its flags (findings), the glossary terms it carried (for -v), its notices, and the
    engine of each direction (recorded in the manifest: routing decides it per machine)."""

    tracks: dict[str, Track]
    findings: list[Finding]
    uses: list[str]
    notices: list[str]
    engines: dict[str, str] = field(default_factory=dict)


def output_dir(video: Path, out_dir: Path | None) -> Path:
    """Where outputs go; created when asked for and missing, and checked writable."""
    return writable_folder(out_dir or video.parent, create=out_dir is not None, what="output folder")


def writable_folder(folder: Path, *, create: bool, what: str) -> Path:
    """``folder``, made when ``create`` and missing, once the file system lets us write there."""
    if create and not folder.exists():
        try:
            folder.mkdir(parents=True)
        except OSError as exc:
            raise OutputError(f"cannot create {what} {folder}: {exc.strerror}") from None
    if not folder.is_dir():
        state = "does not exist" if not folder.exists() else "is not a folder"
        raise OutputError(f"{what} {folder} {state}")
    try:
        # Ask the file system itself: permission bits say nothing for root or read-only mounts.
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise OutputError(f"{what} {folder} is not writable ({exc.strerror}): choose another with --out") from None
    return folder


def track_path(out_dir: Path, stem: str, lang: str, fmt: Format = FORMATS["srt"]) -> Path:
    return out_dir / track_name(stem, lang, fmt.extension)


def delivery_of(config: Config, info: MediaInfo | None, lang: str) -> Delivery:
    """What the files are made for: the film's picture (its size and frame rate, else the
    rules' frame rate) and the house style of ``[output]``."""
    fps = info.fps if info is not None and info.fps else config.rules_for(lang.split("-")[0]).fps
    size = info.size if info is not None and info.size else (Delivery.width, Delivery.height)
    o = config.output
    return Delivery(width=size[0], height=size[1], fps=fps, fonts=dict(o.fonts), font_scale=dict(o.font_scale),
                    target_scale=o.target_scale, target_above=o.target_above)


def run(
    request: RunRequest,
    config: Config,
    *,
    load: TranscriberFactory = load_transcriber,
    progress: Callable[[float], Progress | None] = lambda total: None,
    cache: StageCache | None = None,
) -> RunResult:
    """Transcribe ``request.video``, translate it, and write every track; returns what was written.

    The outputs are locked for the whole run (a second run into the same folder stops at
    once) and refused before the transcription when they may not be replaced.
    """
    # First of all: a GPU asked for and missing is a usage error before any work.
    config = place(config)
    glossary, out = prepare(request, config)
    with OutputSet(out, request.video.stem, inputs=(request.video,)) as outputs:
        made = make(request, config, glossary, guard=guard_of(outputs, request, config), load=load,
                    progress=progress, cache=cache)
        return write(made, request, config, glossary, outputs)


def place(config: Config) -> Config:
    """``config`` on the device the work runs on (``auto`` resolved where the film is
    made, a GPU asked for and missing a usage error): once, before a film's work."""
    return replace(config, asr=placed(config.asr))


def prepare(request: RunRequest, config: Config) -> tuple[Glossary, Path]:
    """What is checked before a film is opened: its language among the project's, the
    targets, the file itself, the glossary; returns the glossary and the output folder."""
    if request.lang != "auto" and request.lang not in config.project.languages:
        raise UsageError(f"language '{request.lang}' is not among this project's languages")
    check_targets(request.targets)
    check_readable(request.video)
    glossary = load_glossary(config.translate.glossary_path)
    return glossary, output_dir(request.video, request.out_dir)


@dataclass(frozen=True)
class Made:
    """One film's work before anything is written: every track as it will be written (by
    name: a language or a pair) with what the judge of the rules finds in it, what the
    run found, and the record its files will carry.
    A worker makes it; whoever holds the outputs writes it (``write``)."""

    lang: str
    tracks: dict[str, Track]
    judged: dict[str, list[Finding]]
    cues: int
    duration: float
    findings: tuple[Finding, ...]
    warnings: tuple[str, ...]
    notices: tuple[str, ...]
    uses: tuple[str, ...]
    meta: dict
    info: MediaInfo
    source: str = ""  # the input's sha256, when it was computed


def guard_of(outputs: OutputSet, request: RunRequest, config: Config) -> Callable[[str], None]:
    """The outputs' guard once the language is known: raises when they may not be replaced."""

    def guard(lang: str) -> None:
        outputs.guard(planned_outputs(outputs.folder, outputs.stem, lang, request.targets, config), request.force)

    return guard


@dataclass(frozen=True)
class Refusals:
    """The outputs' guard answered ahead for every language the film may turn out to be
    in, for a worker that can't see the outputs: it raises what the guard would have."""

    errors: dict[str, SubpipeError]

    def __call__(self, lang: str) -> None:
        if lang in self.errors:
            raise self.errors[lang]


def refusals(outputs: OutputSet, request: RunRequest, config: Config) -> Refusals:
    """``guard_of``'s answer for each possible language (the one asked for, else the project's)."""
    guard = guard_of(outputs, request, config)
    errors: dict[str, SubpipeError] = {}
    for lang in (config.project.languages if request.lang == "auto" else (request.lang,)):
        try:
            guard(lang)
        except SubpipeError as exc:
            errors[lang] = exc
    return Refusals(errors)


def make(request: RunRequest, config: Config, glossary: Glossary, *, guard: Callable[[str], None],
         load: TranscriberFactory = load_transcriber, progress: Callable[[float], Progress | None] = lambda t: None,
         cache: StageCache | None = None, source: str = "") -> Made:
    """Listen, shape, translate: every track of ``request.video`` in memory, nothing written.
    ``config`` is placed on its device (``place``), where the work is.

    ``guard`` hears the language as soon as it is known (at once when given, else when
    detected) and raises when the outputs may not be replaced, before minutes of work;
    ``source`` is the input's sha256 when the caller already knows it.
    """
    cache = cache or StageCache(enabled=False)

    def ready(lang: str) -> None:
        guard(lang)
        check_models(lang, request.targets, config)

    if request.lang != "auto":
        ready(request.lang)
    heard, sound = listen(request.video, request.lang, config, glossary, audio_stream=request.audio_stream,
                          load=load, progress=progress, cache=cache, on_detected=ready, source=source)
    lang = heard.transcript.lang
    rules = config.rules_at(heard.info.fps)
    shaped = subtitle(heard, rules[lang], config)
    source_track = Track(lang=lang, cues=shaped.cues)

    warnings = []
    if heard.silent:
        warnings.append(f"{request.video.name}: audio stream {heard.stream.index} is silent; writing an empty {lang} track")
    elif not source_track.cues:
        warnings.append(f"{request.video.name}: no speech was recognised; writing an empty {lang} track")
    warnings += [f"{request.video.name}: {d.message}" for d in heard.damage]
    done = _translated_cached(source_track, request.targets, config, glossary, heard, sound, cache, rules)
    tracks = _written(done.tracks, bilingual_pairs(lang, request.targets, config), config)
    judged = {name: judge_track(track, rules, audio_end=heard.info.audio_end) for name, track in tracks.items()}
    findings = (list(shaped.problems) + _rule_breaks(judged, skip=lang) + list(heard.untranscribed)
                + list(heard.damage) + done.findings)
    meta = {"model": config.asr.model, "backend": heard.backend,
            "settings": {**_settings(config, lang), **_engines(done)}}
    return Made(lang, tracks, judged, len(source_track.cues), heard.transcript.duration, tuple(findings),
                tuple(warnings), tuple(done.notices), tuple(done.uses), meta, heard.info, heard.source)


def write(made: Made, request: RunRequest, config: Config, glossary: Glossary, outputs: OutputSet) -> RunResult:
    """Commit what ``make`` made into the locked ``outputs`` (the overwrite rules hold
    here), with the review page when asked for; logs what an editor should know."""
    out, stem = outputs.folder, outputs.stem
    outputs.manifest.extra["findings"] = record(made.findings)
    if made.source:
        outputs.manifest.extra["source"] = source_record(request, config, glossary, made.source)
    paths = write_tracks(made.tracks, outputs, made.meta, request.force, chosen(config.output.formats),
                         delivery_of(config, made.info, made.lang))
    if request.review:
        # The page and proxy are made from the film here, wherever it was heard.
        info = replace(made.info, path=request.video)
        named = {track_path(out, stem, name).name: track for name, track in made.tracks.items()}
        judged = {track_path(out, stem, name).name: found for name, found in made.judged.items()}
        paths += tuple(write_review(info, named, judged, glossary, out / review_name(stem),
                                    outputs.manifest_path, record(made.findings)["untranscribed"]))
    for warning in made.warnings:
        log.warning(warning)
    for line in [f.described() for f in made.findings] + list(made.uses):
        log.info("%s", line)
    for notice in made.notices:
        log.warning(notice)
    return RunResult(made.lang, paths, made.cues, made.duration, made.findings, made.warnings, made.notices)


def source_record(request: RunRequest, config: Config, glossary: Glossary, sha256: str) -> dict:
    """What the manifest keeps of the input and the request that made its outputs, so
    that a rerun can tell they are already done (``done_before``)."""
    stat = request.video.stat()
    return {"sha256": sha256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
            "identity": list(file_identity(stat)), "request": _request_key(request, config, glossary, sha256)}


def done_before(outputs: OutputSet, request: RunRequest, config: Config, glossary: Glossary) -> bool:
    """Whether the outputs on disk were made from this very input with these settings,
    are all there and unchanged, and were committed whole: then there is nothing to redo."""
    recorded = outputs.manifest.extra.get("source")
    manifest = outputs.manifest
    if request.force or not isinstance(recorded, dict) or manifest.damage or manifest.pending or not manifest.records:
        return False
    stat = request.video.stat()
    # A file of the same identity (inode, size, times) is the one hashed then (as the stage cache trusts).
    same_file = recorded.get("identity") == list(file_identity(stat))
    sha = recorded.get("sha256") if same_file else sha256_file(request.video)
    if recorded.get("request") != _request_key(request, config, glossary, sha):
        return False
    paths = [outputs.folder / name for name in manifest.records]
    page = outputs.folder / review_name(outputs.stem)
    return all(p.is_file() for p in paths) and not manifest.refusals(paths) and (page.is_file() or not request.review)


def _request_key(request: RunRequest, config: Config, glossary: Glossary, sha256: str) -> str:
    """Everything that decides a film's outputs but the code: its bytes and what was asked."""
    return key_of("made-1", sha256, request.lang, request.audio_stream, request.targets, request.review,
                  asdict(config), asdict(glossary))


def translate_file(
    srt_path: Path,
    lang: str | None,
    targets: tuple[str, ...],
    config: Config,
    *,
    out_dir: Path | None = None,
    force: bool = False,
) -> RunResult:
    """``film.ur.srt`` (typically corrected by an editor) in other languages, same cue times."""
    stem, src = _split_track_name(srt_path, lang)
    check_targets(targets)
    if not targets or set(targets) == {src}:
        raise UsageError("give at least one target language other than the source with --to")
    glossary = load_glossary(config.translate.glossary_path)
    out = output_dir(srt_path, out_dir)
    meta = {"model": "", "backend": "translate", "settings": {"source": srt_path.name, **_translate_settings(config)}}
    formats = chosen(config.output.formats)
    # The editor's SRT is the source: never written over; its other formats are.
    kept = track_path(out, stem, src)
    with OutputSet(out, stem, inputs=(srt_path,)) as outputs:
        outputs.guard([p for p in planned_outputs(out, stem, src, targets, config) if p != kept], force)
        source = FORMATS["srt"].read(srt_path, src)
        _require_in_order(source, srt_path)
        check_models(src, targets, config, can_listen=False)
        rules = config.rules_at(None)
        done = translated(source, targets, config, glossary, rules, None)
        meta["settings"].update(_engines(done))
        tracks = _written(done.tracks, bilingual_pairs(src, targets, config), config)
        judged = {name: judge_track(track, rules) for name, track in tracks.items() if name != src}
        findings = _rule_breaks(judged, skip=src) + done.findings
        paths = write_tracks(tracks, outputs, meta, force, formats, delivery_of(config, None, src), skip=kept)
    for line in [f.described() for f in findings] + done.uses:
        log.info("%s", line)
    return RunResult(src, paths, len(source.cues), 0.0, tuple(findings), (), tuple(done.notices))


def export_file(srt_path: Path, lang: str | None, formats: Sequence[Format], config: Config, *,
                out_dir: Path | None = None, video: Path | None = None, force: bool = False) -> tuple[Path, ...]:
    """``film.ur.srt`` (an editor's corrected track) as ``film.ur.<ext>`` in each of
    ``formats``, beside it or in ``out_dir``, under the outputs' lock and overwrite rules.
    The language comes from the name (``ur``, or a pair such as ``ur-zh``), else ``lang``;
    the picture's size and frame rate from ``video`` when given."""
    stem, code = _export_name(srt_path, lang)
    info = probe(video) if video is not None else None
    out = output_dir(srt_path, out_dir)
    source = FORMATS["srt"].read(srt_path, code)
    _require_in_order(source, srt_path)
    track = laid_out(source, config.output.urdu_direction_marks)
    meta = {"model": "", "backend": "export",
            "settings": {"source": srt_path.name, "source_sha256": sha256_file(srt_path),
                         "urdu_direction_marks": config.output.urdu_direction_marks}}
    with OutputSet(out, stem) as outputs:
        if srt_path.resolve() in [track_path(out, stem, code, fmt).resolve() for fmt in formats]:
            raise UsageError(f"{srt_path.name} would be written over itself: export it to another format")
        return write_tracks({code: track}, outputs, meta, force, formats, delivery_of(config, info, code))


def _export_name(path: Path, lang: str | None) -> tuple[str, str]:
    """``film.ur-zh.srt`` -> (``film``, ``ur-zh``): the language from the name, else ``lang``."""
    split = split_track(path.name)
    if split is not None:
        if lang is not None and lang != split[1]:
            raise UsageError(f"{path.name} is named as a {split[1]} track, but --lang says {lang}")
        return split[0], split[1]
    if lang is None:
        raise UsageError(f"can't tell the language of {path.name}: name it <film>.<lang>.srt or give --lang")
    parts = lang.split("-")
    if len(parts) > 2 or len(set(parts)) != len(parts) or not set(parts) <= set(LANGUAGES):
        raise UsageError(f"--lang {lang}: give ur, zh, en or a pair such as ur-zh")
    return path.stem, lang


def _require_in_order(track: Track, path: Path) -> None:
    """Translation keeps every cue's times, so they must be ones a file can hold."""
    try:
        FORMATS["srt"].compose(track, Delivery())
    except ValueError as exc:
        raise InputError(f"{path}: {exc}: correct it first ('subpipe check {path}' lists every such cue)") from None


def planned_outputs(out: Path, stem: str, src: str, targets: tuple[str, ...], config: Config) -> list[Path]:
    """Every file a run will write: source, targets, the English pivot, bilingual pairs,
    each in every format of ``[output] formats``."""
    langs = [src, *target_langs(src, targets)]
    pairs = bilingual_pairs(src, targets, config)
    return [track_path(out, stem, code, fmt) for code in [*langs, *pairs] for fmt in chosen(config.output.formats)]


def subtitle(heard: Heard, rules: Rules, config: Config) -> ShapeResult:
    """Cues shaped to the language's ``rules`` (at the video's frame rate)."""
    return shape(
        heard.transcript.words,
        heard.transcript.lang,
        rules,
        speech=heard.speech,
        audio_end=heard.transcript.duration,
        blocklist=config.cues.blocklist,
        close_gaps_frames=config.cues.close_gaps_frames,
        hold_in_sentence_frames=config.cues.hold_in_sentence_frames,
    )


def translated(source: Track, targets: tuple[str, ...], config: Config, glossary: Glossary,
               rules: Mapping[str, Rules], sound: Sound | None) -> _Translation:
    """The source track and its translations (pivot included), by language, with what to report."""
    tracks: dict[str, Track] = {source.lang: source}
    wanted = target_langs(source.lang, targets)
    if not wanted:
        return _Translation(tracks, [], [], [])
    engine, audio = (sound.engine, sound.samples) if sound is not None else (None, None)
    translator, notices = make_translator(source.lang, wanted, config, Hearing(engine is not None, engine, audio))
    results = translate_tracks(source, wanted, translator, rules, glossary, options=config.translate)
    findings, uses = [], []
    for lang, result in results.items():
        tracks[lang] = result.track
        # Rule breaks are judged on the written tracks; flags are the translation's own.
        findings += translation_findings(result)
        uses += [f"{lang}: glossary term {u.term!r} used" for u in result.glossary_uses]
    engines = {pair: translator.engine_for(*pair.split("-")) for pair in directions(source.lang, wanted)}
    return _Translation(tracks, findings, uses, notices, engines)


def _engines(done: _Translation) -> dict[str, dict[str, str]]:
    """The settings' record of which engine translated each direction (none when nothing was)."""
    return {"translation_engines": done.engines} if done.engines else {}


def write_tracks(tracks: dict[str, Track], outputs: OutputSet, meta: dict, force: bool,
                 formats: Sequence[Format], delivery: Delivery, *, skip: Path | None = None) -> tuple[Path, ...]:
    """Every track in every format, and their record, committed as one set (outputs.py);
    ``skip`` is a file not to write (the source an editor gave)."""
    texts = {path: fmt.compose(track, delivery) for name, track in tracks.items() for fmt in formats
             if (path := track_path(outputs.folder, outputs.stem, name, fmt)) != skip}
    return outputs.commit(texts, meta, force)


def _written(tracks: dict[str, Track], pairs: tuple[str, ...], config: Config) -> dict[str, Track]:
    """The tracks as they are written, and the bilingual ones made from them, by name."""
    shown = {lang: laid_out(track, config.output.urdu_direction_marks) for lang, track in tracks.items()}
    shown.update(bilingual_tracks(shown, pairs))
    return shown


def _rule_breaks(judged: Mapping[str, Sequence[Finding]], skip: str) -> list[Finding]:
    """The rule breaks ``subpipe check`` reports in each single-language track but
    ``skip`` (the shaped source, whose shaping said why), each with its track."""
    return [replace(f, track=name) for name, found in judged.items() if name != skip and "-" not in name
            for f in rule_breaks(found)]


def _translated_cached(source: Track, targets: tuple[str, ...], config: Config, glossary: Glossary,
                       heard: Heard, sound: Sound, cache: StageCache, rules: Mapping[str, Rules]) -> _Translation:
    """``translated`` through the stage cache, keyed on the source track and the settings."""
    if not target_langs(source.lang, targets):
        return _Translation({source.lang: source}, [], [], [])
    key = key_of(
        "translation-6", track_json(source), targets, heard.info.fps, _translate_settings(config), asdict(glossary),
        # The Whisper fallback listens to the audio again: its English depends on both.
        sound.key, sound.engine.identity if sound.engine else heard.backend,
    )

    def dump(value: _Translation) -> bytes:
        return json.dumps({"tracks": {k: track_json(t) for k, t in value.tracks.items()},
                           "findings": [asdict(f) for f in value.findings],
                           "uses": value.uses, "notices": value.notices, "engines": value.engines},
                          ensure_ascii=False).encode()

    def load(data: bytes) -> _Translation:
        raw = json.loads(data)
        return _Translation({k: track_from_json(t) for k, t in raw["tracks"].items()},
                            [Finding(**f) for f in raw["findings"]], raw["uses"], raw["notices"], raw["engines"])

    return cache.get_or_make("translation", key,
                             lambda: translated(source, targets, config, glossary, rules, sound), dump, load)


def track_json(track: Track) -> dict:
    """A track as plain JSON values (the stage cache, the desk's record of a source)."""
    return {"lang": track.lang, "cues": [[c.start, c.end, list(c.lines)] for c in track.cues]}


def track_from_json(data: dict) -> Track:
    return Track(data["lang"], tuple(Cue(a, b, tuple(lines)) for a, b, lines in data["cues"]))


def _split_track_name(path: Path, lang: str | None) -> tuple[str, str]:
    """``film.ur.srt`` -> (``film``, ``ur``); ``--lang`` wins over the name."""
    stem, _, tag = path.stem.rpartition(".")
    if tag in LANGUAGES and stem:
        return stem, lang or tag
    if lang is None:
        raise UsageError(f"can't tell the language of {path.name}: name it <film>.<lang>.srt or give --lang")
    return path.stem, lang


def _settings(config: Config, lang: str) -> dict:
    asr = asdict(config.asr)
    asr["temperatures"] = list(config.asr.temperatures)
    return {
        "asr": asr,
        "rules": asdict(config.rules[lang]) if lang in config.rules else {},
        "vad": asdict(config.vad),
        "blocklist": list(config.cues.blocklist),
        "urdu_direction_marks": config.output.urdu_direction_marks,
        **_translate_settings(config),
    }


def _translate_settings(config: Config) -> dict:
    return {"translate": asdict(config.translate), "bilingual": list(config.bilingual.pairs)}
