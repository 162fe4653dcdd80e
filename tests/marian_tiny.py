"""Build tiny random-weight MarianMT models that load like the real opus-mt ones.

The tokenizers are real SentencePiece models trained on the UDHR dev lines, so the
loading, tokenising, batching and decoding paths are the real ones; only the weights
are random. ``vocab_size`` lets the bench map the small tokenizer into an opus-mt-sized
vocabulary (extra ids are filler pieces).
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

# A copy of shared/data/dev/udhr_dev.tsv (25 UDHR paragraphs in en, ur, zh), kept with the tests.
UDHR = Path(__file__).resolve().parent / "data" / "udhr_dev.tsv"
COLUMNS = {"en": "eng", "ur": "urd", "zh": "cmn"}
LANG_TOKENS = (">>cmn_Hans<<",)


@dataclass(frozen=True)
class Dims:
    d_model: int = 16
    layers: int = 1
    heads: int = 2
    ffn: int = 32
    max_positions: int = 256


TINY = Dims()
OPUS = Dims(d_model=512, layers=6, heads=8, ffn=2048, max_positions=512)


def udhr_lines(lang: str, path: Path = UDHR) -> list[str]:
    with open(path, encoding="utf-8", newline="") as f:
        return [row[COLUMNS[lang]] for row in csv.DictReader(f, delimiter="\t")]


def train_spm(lang: str, folder: Path, vocab: int = 300) -> Path:
    """A SentencePiece model for ``lang`` trained on the UDHR lines, at ``folder/<lang>.spm``."""
    import sentencepiece as spm

    folder.mkdir(parents=True, exist_ok=True)
    text = folder / f"{lang}.txt"
    text.write_text("\n".join(udhr_lines(lang)) + "\n", encoding="utf-8")
    prefix = folder / lang
    spm.SentencePieceTrainer.train(
        input=str(text), model_prefix=str(prefix), vocab_size=max(vocab, 420) if lang == "zh" else vocab, model_type="unigram",
        # Chinese has more distinct characters than a tiny vocabulary holds: rare ones become <unk>.
        character_coverage=0.98 if lang == "zh" else 1.0, hard_vocab_limit=False,
        bos_id=-1, eos_id=-1, unk_id=0, minloglevel=2, num_threads=1,
    )
    out = folder / f"{lang}.spm"
    (folder / f"{lang}.model").replace(out)
    return out


def build_marian(
    folder: Path,
    src_spm: Path,
    tgt_spm: Path,
    *,
    dims: Dims = TINY,
    vocab_size: int = 0,
    seed: int = 0,
    init_std: float | None = 0.5,
) -> Path:
    """Save a random-weight MarianMT model plus tokenizer files into ``folder``.

    ``init_std`` widens the random weights: at the library's default a tiny model writes
    the same tokens whatever the input, which would hide a batching or ordering bug.
    """
    import shutil

    import sentencepiece as spm
    import torch
    from transformers import MarianConfig, MarianMTModel

    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(src_spm, folder / "source.spm")
    shutil.copy(tgt_spm, folder / "target.spm")
    vocab = _vocab([spm.SentencePieceProcessor(model_file=str(p)) for p in (src_spm, tgt_spm)], vocab_size)
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False, indent=1), encoding="utf-8")
    (folder / "tokenizer_config.json").write_text(json.dumps({"model_max_length": dims.max_positions}))
    pad = vocab["<pad>"]
    config = MarianConfig(
        vocab_size=len(vocab), d_model=dims.d_model, encoder_layers=dims.layers, decoder_layers=dims.layers,
        encoder_attention_heads=dims.heads, decoder_attention_heads=dims.heads,
        encoder_ffn_dim=dims.ffn, decoder_ffn_dim=dims.ffn, max_position_embeddings=dims.max_positions,
        pad_token_id=pad, eos_token_id=0, decoder_start_token_id=pad, forced_eos_token_id=0,
    )
    torch.manual_seed(seed)
    model = MarianMTModel(config).eval()
    if init_std is not None:
        _widen(model, init_std, seed)
    model.generation_config.bad_words_ids = [[pad]]
    model.save_pretrained(folder)
    return folder


def _widen(model, std: float, seed: int) -> None:  # type: ignore[no-untyped-def]
    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, weight in model.named_parameters():
            # Positions are fixed sinusoids in Marian; everything else may be random.
            if weight.dim() == 2 and "embed_positions" not in name:
                weight.normal_(0.0, std, generator=generator)


def _vocab(processors: list, size: int) -> dict[str, int]:
    """Marian's layout: ``</s>`` 0, ``<unk>`` 1, pieces of both sides, ``<pad>`` last."""
    vocab = {"</s>": 0, "<unk>": 1}
    for token in LANG_TOKENS:
        vocab[token] = len(vocab)
    for sp in processors:
        for i in range(sp.get_piece_size()):
            piece = sp.id_to_piece(i)
            if piece not in vocab and not sp.is_unknown(i) and not sp.is_control(i):
                vocab[piece] = len(vocab)
    for filler in range(len(vocab), max(size - 1, len(vocab))):
        vocab[f"<fill{filler}>"] = filler
    vocab["<pad>"] = len(vocab)
    return vocab


def build_pairs(root: Path, pairs: tuple[str, ...] = ("ur-en", "en-ur", "zh-en", "en-zh"), **kwargs) -> dict[str, Path]:
    """One tiny model per pair under ``root/<pair>``, sharing one tokenizer per language."""
    spms: dict[str, Path] = {}
    out: dict[str, Path] = {}
    for pair in pairs:
        src, tgt = pair.split("-")
        for lang in (src, tgt):
            if lang not in spms:
                spms[lang] = train_spm(lang, root / "spm")
        out[pair] = build_marian(root / pair, spms[src], spms[tgt], **kwargs)
    return out
