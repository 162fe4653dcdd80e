#!/usr/bin/env python3
"""GPU throughput of Whisper base on an hour of speech: VAD, log-mel, encoder, greedy decoder.

    python3 bench/gpu_speed.py --data DIR [--hours 1.0] [--batch-size 128] [--dtype float16]
                               [--out gpu_speed.json] [--ref-windows N] [--check] [--eager]
                               [--random-weights]
    .venv/bin/python bench/gpu_speed.py --data DIR --device cpu --hours 0.02 --dtype float32 --check

``DIR`` is what bench/gpu_stage.py staged (bench/gpu_device.sh joins it on the device):
audio.pcm (16 kHz mono s16le), ref.txt, config.json, tokenizer.json, model.safetensors,
silero_vad_v6.onnx, mel_filters.npy, suppress.json. Nothing else is read, nothing is fetched.

What it measures, on the PCM repeated to at least ``--hours`` (reading and repeating it is not
timed, as if a decoder had handed over samples):

1. VAD: Silero v6 (ONNX, CPU) on independent pieces in a thread pool, probabilities stitched
   and turned into regions by faster-whisper's rules (min silence 160 ms, pad 200 ms, 30 s max).
2. Windows: regions glued end to end into windows of at most 30 s, silence left out, sorted
   by length so that a batch's sequences end together.
3. Features: Whisper's log-mel on the GPU with torch.stft.
4. Encoder: transformers' WhisperEncoder in float16 (or bfloat16).
5. Decoder: our own greedy loop in plain torch on the same weights (static KV cache, cross
   K/V once per batch, one step captured in a CUDA graph), openai-whisper's suppression.
6. Detokenize with tokenizers; CER against the reference repeated as often as the audio.

A warm-up pass (graph capture, kernel selection) on one batch runs first and is not timed.
The reference is transformers' ``generate`` (greedy, zh, transcribe, no timestamps) on
``--ref-windows`` windows: its time against ours on the same windows, and how often the
tokens agree. ``--check`` also compares the features with WhisperFeatureExtractor and fails
(exit 1) unless the tokens agree exactly: use it in float32 on CPU.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
import unicodedata
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

SAMPLE_RATE = 16000
N_FFT, HOP = 400, 160
WINDOW_SAMPLES = 30 * SAMPLE_RATE
MAX_NEW_TOKENS = 224  # openai-whisper's sample_len: half the text context
HOST_CHECK_EVERY = 16  # decoder steps between looks at "all finished" (each look is a sync)

VAD_FRAME, VAD_CONTEXT = 512, 64
VAD_WARMUP_FRAMES = 160  # 5 s before each piece, dropped: the LSTM state mostly settles by then


# ---------------------------------------------------------------- data

def load_audio(data: Path, hours: float) -> tuple[np.ndarray, int]:
    """The staged PCM repeated to at least ``hours``; returns (int16 samples, repeats)."""
    one = np.fromfile(data / "audio.pcm", dtype=np.int16)
    repeats = max(1, math.ceil(hours * 3600 * SAMPLE_RATE / len(one)))
    return np.tile(one, repeats), repeats


def normalise(text: str) -> str:
    # CER counts characters that are spoken: drop spaces, punctuation and symbols only.
    return "".join(c for c in text if not c.isspace() and unicodedata.category(c)[0] not in "PSZ")


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance, one numpy row per character of ``a``."""
    if len(a) < len(b):
        a, b = b, a
    if not b:
        return len(a)
    target = np.frombuffer(b.encode("utf-32-le"), dtype=np.uint32)
    steps = np.arange(len(b) + 1)
    row = steps.copy()
    for i, char in enumerate(np.frombuffer(a.encode("utf-32-le"), dtype=np.uint32), 1):
        best = np.empty_like(row)
        best[0] = i
        np.minimum(row[:-1] + (target != char), row[1:] + 1, out=best[1:])
        # Insertions chain along the row: cur[j] = min_k<=j (best[k] + j - k), a running minimum.
        row = np.minimum.accumulate(best - steps) + steps
    return int(row[-1])


def cer(hypothesis: str, reference: str) -> float:
    ref = normalise(reference)
    return edit_distance(normalise(hypothesis), ref) / max(1, len(ref))


# ---------------------------------------------------------------- voice activity

@dataclass(frozen=True)
class VadSettings:
    """faster-whisper's VadOptions as its batched pipeline uses them, with a 200 ms pad."""

    threshold: float = 0.5
    neg_threshold: float = 0.35  # faster-whisper's default: threshold - 0.15
    min_speech_ms: int = 0
    max_speech_s: float = 30.0
    min_silence_ms: int = 160
    speech_pad_ms: int = 200


class SileroVad:
    """Silero v6 speech probabilities, one per 512 samples, from pieces run side by side.

    The ONNX graph carries one LSTM state (batch 1), so the parallelism is across pieces:
    each piece starts ``VAD_WARMUP_FRAMES`` early with a zero state, and those first
    probabilities are dropped; what remains is stitched back in order.
    """

    def __init__(self, model: Path, threads: int, pieces: int):
        import onnxruntime

        opts = onnxruntime.SessionOptions()
        # One thread per run: the pool gives the parallelism, and runs share the session.
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 4
        self.session = onnxruntime.InferenceSession(str(model), sess_options=opts,
                                                    providers=["CPUExecutionProvider"])
        self.threads, self.pieces = max(1, threads), max(1, pieces)

    def probabilities(self, audio: np.ndarray) -> np.ndarray:
        # faster-whisper pads to a whole frame, adding a frame when the length already is one.
        n_frames = len(audio) // VAD_FRAME + 1
        bounds = np.linspace(0, n_frames, self.pieces + 1).astype(int)
        spans = [(lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:]) if hi > lo]
        with ThreadPoolExecutor(self.threads) as pool:
            parts = list(pool.map(lambda span: self._piece(audio, *span), spans))
        return np.concatenate(parts)

    def _piece(self, audio: np.ndarray, lo: int, hi: int) -> np.ndarray:
        first = max(0, lo - VAD_WARMUP_FRAMES)
        rows = model_rows(audio, first, hi)
        state = np.zeros((1, 1, 128), dtype=np.float32)
        probs, _, _ = self.session.run(None, {"input": rows, "h": state, "c": state})
        return probs.reshape(-1)[lo - first:]


def model_rows(audio: np.ndarray, first: int, end: int) -> np.ndarray:
    """Frames ``first``..``end`` as Silero v6 takes them: 64 samples of context, then 512."""
    start = first * VAD_FRAME - VAD_CONTEXT
    span = np.zeros((end - first) * VAD_FRAME + VAD_CONTEXT, dtype=np.float32)
    lo, hi = max(0, start), min(len(audio), end * VAD_FRAME)
    if hi > lo:
        span[lo - start:hi - start] = audio[lo:hi] / np.float32(32768)
    windows = np.lib.stride_tricks.sliding_window_view(span, VAD_FRAME + VAD_CONTEXT)
    return np.ascontiguousarray(windows[::VAD_FRAME])


def speech_regions(probs: np.ndarray, n_samples: int, vad: VadSettings) -> list[tuple[int, int]]:
    """Speech (start, end) samples from frame probabilities, by faster-whisper's rules."""
    regions = _raw_regions(probs, n_samples, vad)
    return _padded(regions, n_samples, vad.speech_pad_ms * SAMPLE_RATE // 1000)


def _raw_regions(probs: np.ndarray, n_samples: int, vad: VadSettings) -> list[list[int]]:
    pad = vad.speech_pad_ms * SAMPLE_RATE / 1000
    max_speech = SAMPLE_RATE * vad.max_speech_s - VAD_FRAME - 2 * pad
    min_silence = SAMPLE_RATE * vad.min_silence_ms / 1000
    min_speech = SAMPLE_RATE * vad.min_speech_ms / 1000
    # A long region is cut at the latest silence longer than this (98 ms), if it has one.
    cut_silence = SAMPLE_RATE * 98 / 1000
    regions: list[list[int]] = []
    start = None  # start of the region in progress
    silence_from = 0  # where the current silence began (0: none); 0 doubles as "unset", as upstream
    last_cut = next_start = 0  # a usable cut in the region, and where speech resumed after it
    for i, p in enumerate(probs.tolist()):
        here = VAD_FRAME * i
        if p >= vad.threshold and silence_from:
            silence_from = 0
            if next_start < last_cut:
                next_start = here
        if p >= vad.threshold and start is None:
            start = here
            continue
        if start is not None and here - start > max_speech:
            if last_cut:
                regions.append([start, last_cut])
                start = None if next_start < last_cut else next_start
            else:
                regions.append([start, here])
                start = None
            last_cut = next_start = silence_from = 0
            if start is None:
                continue
        if p < vad.neg_threshold and start is not None:
            silence_from = silence_from or here
            if here - silence_from > cut_silence:
                last_cut = silence_from
            if here - silence_from < min_silence:
                continue
            if silence_from - start > min_speech:
                regions.append([start, silence_from])
            start = None
            last_cut = next_start = silence_from = 0
    if start is not None and n_samples - start > min_speech:
        regions.append([start, n_samples])
    return regions


def _padded(regions: list[list[int]], n_samples: int, pad: int) -> list[tuple[int, int]]:
    # Pad each side; where two regions are closer than two pads, split the gap between them.
    for i, region in enumerate(regions):
        if i == 0:
            region[0] = max(0, region[0] - pad)
        if i + 1 < len(regions):
            after = regions[i + 1]
            gap = after[0] - region[1]
            share = gap // 2 if gap < 2 * pad else pad
            region[1] = min(n_samples, region[1] + share)
            after[0] = max(0, after[0] - share)
        else:
            region[1] = min(n_samples, region[1] + pad)
    return [(int(a), int(b)) for a, b in regions]


# ---------------------------------------------------------------- windows

@dataclass(frozen=True)
class Window:
    """Speech regions glued together, at most 30 s; ``index`` is its place in time."""

    index: int
    pieces: tuple[tuple[int, int], ...]

    @property
    def samples(self) -> int:
        return sum(b - a for a, b in self.pieces)


def plan_windows(regions: list[tuple[int, int]]) -> list[Window]:
    """Fill each window with whole regions in time order (faster-whisper's collect_chunks)."""
    windows, current, used = [], [], 0
    for a, b in _at_most(regions, WINDOW_SAMPLES):
        if current and used + (b - a) > WINDOW_SAMPLES:
            windows.append(Window(len(windows), tuple(current)))
            current, used = [], 0
        current.append((a, b))
        used += b - a
    if current:
        windows.append(Window(len(windows), tuple(current)))
    return windows


def _at_most(regions: list[tuple[int, int]], size: int):
    # The VAD already caps regions at 30 s; this keeps a window from ever overflowing anyway.
    for a, b in regions:
        for s in range(a, b, size):
            yield s, min(b, s + size)


def plan_batches(windows: list[Window], batch_size: int) -> tuple[list[list[Window]], int]:
    """Longest first, in equal batches; returns (batches, the one batch size all run at).

    Equal sizes mean one captured decoder graph; a short batch is padded by the decoder.
    """
    ordered = sorted(windows, key=lambda w: -w.samples)
    n_batches = max(1, math.ceil(len(ordered) / batch_size))
    size = math.ceil(len(ordered) / n_batches)
    return [ordered[i:i + size] for i in range(0, len(ordered), size)], size


# ---------------------------------------------------------------- features

class LogMel:
    """Whisper's log-mel spectrogram of 30 s windows, computed where the tensors live."""

    def __init__(self, filters: np.ndarray, device: torch.device):
        self.filters = torch.from_numpy(filters).to(device).T.contiguous()  # (80, 201)
        self.window = torch.hann_window(N_FFT, device=device)

    def __call__(self, audio: torch.Tensor) -> torch.Tensor:
        """(batch, 480000) float32 samples -> (batch, 80, 3000) features."""
        stft = torch.stft(audio, N_FFT, HOP, window=self.window, return_complex=True)
        power = stft[..., :-1].abs().square()  # Whisper drops the last of 3001 frames
        mel = torch.clamp(self.filters @ power, min=1e-10).log10()
        floor = mel.amax(dim=(1, 2), keepdim=True) - 8.0  # per window, as Whisper's batches do
        return (torch.maximum(mel, floor) + 4.0) / 4.0


def gather_windows(audio: torch.Tensor, batch: list[Window]) -> torch.Tensor:
    """The batch's windows as zero-padded 30 s rows, copied on the device from the long audio."""
    out = torch.zeros(len(batch), WINDOW_SAMPLES, device=audio.device, dtype=torch.float32)
    for row, window in enumerate(batch):
        at = 0
        for a, b in window.pieces:
            out[row, at:at + b - a] = audio[a:b]
            at += b - a
    return out


# ---------------------------------------------------------------- model

def load_model(data: Path, device: torch.device, dtype: torch.dtype, random_weights: bool = False):
    """transformers' Whisper from config.json and the joined safetensors, no hub, no files elsewhere.

    ``random_weights`` skips the safetensors: a smoke test of the code before the weights arrive.
    """
    from safetensors.torch import load_file
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    config = WhisperConfig.from_dict(json.loads((data / "config.json").read_text()))
    config._attn_implementation = "sdpa"
    torch.manual_seed(0)  # random weights, when asked for, are the same every run
    model = WhisperForConditionalGeneration(config)
    if not random_weights:
        state = load_file(str(data / "model.safetensors"))
        missing, unexpected = model.load_state_dict(state, strict=False)
        if unexpected or set(missing) - {"proj_out.weight"}:
            raise SystemExit(f"weights do not fit the config: missing {missing}, unexpected {unexpected}")
    # The output projection is the token embedding (tied); make sure it is, whatever the version.
    model.proj_out.weight = model.model.decoder.embed_tokens.weight
    return model.to(device=device, dtype=dtype).eval()


@dataclass(frozen=True)
class Tokens:
    """The ids the decoder needs, read from tokenizer.json and suppress.json."""

    prompt: tuple[int, ...]
    eot: int
    suppress: tuple[int, ...]
    begin_suppress: tuple[int, ...]
    no_timestamps: int
    sot_prev: int
    transcribe: int
    translate: int
    languages: dict


def read_tokens(data: Path, language: str) -> Tokens:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(data / "tokenizer.json"))

    def one(text: str) -> int:
        found = tok.token_to_id(text)
        if found is None:
            raise SystemExit(f"{text} is not in tokenizer.json")
        return found

    sot, lang, task, nots = (one(t) for t in ("<|startoftranscript|>", f"<|{language}|>",
                                                "<|transcribe|>", "<|notimestamps|>"))
    ids = json.loads((data / "suppress.json").read_text())
    eot = one("<|endoftext|>")
    vocab = tok.get_vocab(with_added_tokens=True)
    # Language tokens sit between <|startoftranscript|> and <|translate|>.
    languages = {t: i for t, i in vocab.items() if sot < i < one("<|translate|>")}
    return Tokens(prompt=(sot, lang, task, nots), eot=eot, suppress=tuple(ids["suppress_tokens"]),
                  begin_suppress=tuple(ids["begin_suppress_tokens"]), no_timestamps=nots,
                  sot_prev=one("<|startofprev|>"), transcribe=task, translate=one("<|translate|>"),
                  languages=languages)


# ---------------------------------------------------------------- our greedy decoder

@dataclass
class _Layer:
    ln1: tuple
    q: tuple
    k: torch.Tensor
    v: tuple
    out: tuple
    ln2: tuple
    cq: tuple
    ck: torch.Tensor
    cv: tuple
    cout: tuple
    ln3: tuple
    fc1: tuple
    fc2: tuple


class _State:
    """Every tensor one decoder step reads or writes: fixed addresses, so a graph can replay it."""

    def __init__(self, decoder: "GreedyDecoder", batch: int):
        d, dev, dt = decoder, decoder.device, decoder.dtype
        shape = (d.n_layers, batch, d.n_heads, d.cache_len, d.head_dim)
        self.k_cache = torch.zeros(shape, device=dev, dtype=dt)
        self.v_cache = torch.zeros(shape, device=dev, dtype=dt)
        cross = (d.n_layers, batch, d.n_heads, d.n_audio, d.head_dim)
        self.cross_k = torch.zeros(cross, device=dev, dtype=dt)
        self.cross_v = torch.zeros(cross, device=dev, dtype=dt)
        self.tokens = torch.zeros(batch, device=dev, dtype=torch.long)
        self.step = torch.zeros((), device=dev, dtype=torch.long)
        self.finished = torch.zeros(batch, device=dev, dtype=torch.bool)
        self.out = torch.zeros(batch, d.n_prompt + MAX_NEW_TOKENS, device=dev, dtype=torch.long)
        self.graph = None

    def reset(self, decoder: "GreedyDecoder", cross_k: torch.Tensor, cross_v: torch.Tensor) -> None:
        self.cross_k.copy_(cross_k)
        self.cross_v.copy_(cross_v)
        # Unwritten cache slots are masked, but must hold finite numbers: 0 * NaN is NaN.
        self.k_cache.zero_()
        self.v_cache.zero_()
        self.tokens.fill_(decoder.prompt[0])
        self.step.zero_()
        self.finished.zero_()
        self.out.fill_(decoder.eot)
        self.out[:, 0] = decoder.prompt[0]


class GreedyDecoder:
    """Greedy decoding on the weights of transformers' WhisperDecoder, one token per step.

    Logit filtering is openai-whisper's without timestamps: ``suppress`` always, and at the
    first sampled step ``begin_suppress`` (blank and EOT) too. The prompt is fed one token
    per step through the same step, so one captured graph serves the whole sequence.
    """

    def __init__(self, model, tokens: Tokens, *, use_graph: bool):
        dec = model.model.decoder
        cfg = model.config
        if cfg.scale_embedding:  # Whisper's checkpoints don't scale; this step would not either
            raise SystemExit("config.scale_embedding is set: GreedyDecoder does not scale embeddings")
        self.device, self.dtype = dec.embed_tokens.weight.device, dec.embed_tokens.weight.dtype
        self.n_layers, self.n_heads = cfg.decoder_layers, cfg.decoder_attention_heads
        self.d_model = cfg.d_model
        self.head_dim = self.d_model // self.n_heads
        self.cache_len, self.n_audio = cfg.max_target_positions, cfg.max_source_positions
        self.embed, self.positions = dec.embed_tokens.weight, dec.embed_positions.weight
        self.final_ln = (dec.layer_norm.weight, dec.layer_norm.bias)
        self.layers = [self._weights(layer) for layer in dec.layers]
        self.prompt = torch.tensor(tokens.prompt, device=self.device)
        self.n_prompt, self.eot = len(tokens.prompt), tokens.eot
        vocab = self.embed.shape[0]
        self.suppress = self._mask(vocab, tokens.suppress)
        self.begin_suppress = self._mask(vocab, tokens.begin_suppress)
        self.slots = torch.arange(self.cache_len, device=self.device)
        self.use_graph = use_graph
        self.graph_error: str | None = None  # why capture failed, if it did: then steps run plainly
        self.states: dict[int, _State] = {}

    @staticmethod
    def _weights(layer) -> _Layer:
        def wb(m):
            return m.weight, m.bias

        sa, ca = layer.self_attn, layer.encoder_attn
        return _Layer(ln1=wb(layer.self_attn_layer_norm), q=wb(sa.q_proj), k=sa.k_proj.weight,
                      v=wb(sa.v_proj), out=wb(sa.out_proj), ln2=wb(layer.encoder_attn_layer_norm),
                      cq=wb(ca.q_proj), ck=ca.k_proj.weight, cv=wb(ca.v_proj), cout=wb(ca.out_proj),
                      ln3=wb(layer.final_layer_norm), fc1=wb(layer.fc1), fc2=wb(layer.fc2))

    def _mask(self, vocab: int, ids) -> torch.Tensor:
        mask = torch.zeros(vocab, dtype=torch.bool, device=self.device)
        mask[list(ids)] = True
        return mask

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        return x.view(b, t, self.n_heads, self.head_dim).transpose(1, 2)

    def cross_kv(self, encoded: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Cross-attention keys and values of every layer, once per batch."""
        k = [self._heads(F.linear(encoded, w.ck)) for w in self.layers]
        v = [self._heads(F.linear(encoded, *w.cv)) for w in self.layers]
        return torch.stack(k), torch.stack(v)

    def _step(self, s: _State) -> None:
        """Feed ``s.tokens`` at position ``s.step``; write the next tokens and advance the step."""
        b = s.tokens.shape[0]
        where = s.step.view(1)
        x = F.embedding(s.tokens, self.embed) + self.positions.index_select(0, where)
        x = x.unsqueeze(1)  # (b, 1, d)
        visible = (self.slots <= s.step).view(1, 1, 1, -1)
        for i, w in enumerate(self.layers):
            h = F.layer_norm(x, (self.d_model,), *w.ln1)
            q = self._heads(F.linear(h, *w.q))
            s.k_cache[i].index_copy_(2, where, self._heads(F.linear(h, w.k)))
            s.v_cache[i].index_copy_(2, where, self._heads(F.linear(h, *w.v)))
            a = F.scaled_dot_product_attention(q, s.k_cache[i], s.v_cache[i], attn_mask=visible)
            x = x + F.linear(a.transpose(1, 2).reshape(b, 1, self.d_model), *w.out)
            h = F.layer_norm(x, (self.d_model,), *w.ln2)
            q = self._heads(F.linear(h, *w.cq))
            a = F.scaled_dot_product_attention(q, s.cross_k[i], s.cross_v[i])
            x = x + F.linear(a.transpose(1, 2).reshape(b, 1, self.d_model), *w.cout)
            h = F.layer_norm(x, (self.d_model,), *w.ln3)
            x = x + F.linear(F.gelu(F.linear(h, *w.fc1)), *w.fc2)
        x = F.layer_norm(x[:, 0], (self.d_model,), *self.final_ln)
        logits = F.linear(x, self.embed).float()
        first_sampled = s.step == self.n_prompt - 1
        logits = logits.masked_fill(self.suppress | (self.begin_suppress & first_sampled), -math.inf)
        chosen = logits.argmax(dim=-1)
        # While the prompt lasts, the next token is the prompt's, whatever the model says.
        # index_select, not [], which would read the 0-d step back to the host (a sync).
        forced = self.prompt.index_select(0, (where + 1).clamp(max=self.n_prompt - 1))
        chosen = torch.where(s.step < self.n_prompt - 1, forced, chosen)
        chosen = torch.where(s.finished, torch.full_like(chosen, self.eot), chosen)
        s.finished |= chosen == self.eot
        s.out.index_copy_(1, where + 1, chosen.view(b, 1))
        s.tokens.copy_(chosen)
        s.step.add_(1)

    def _state(self, batch: int) -> _State:
        if batch not in self.states:
            self.states[batch] = _State(self, batch)
        return self.states[batch]

    def _capture(self, s: _State) -> None:
        # Kernels must have run once (library handles, autotuning) before capture; a side
        # stream keeps that warm-up out of the default stream, as torch.cuda.graphs advises.
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                self._step(s)
        torch.cuda.current_stream().wait_stream(side)
        s.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(s.graph):
            self._step(s)

    def decode(self, encoded: torch.Tensor, batch: int | None = None) -> list[list[int]]:
        """Text tokens (no prompt, no EOT) of each row of ``encoded``, padded to ``batch`` rows."""
        n = encoded.shape[0]
        batch = max(n, batch or n)
        if batch > n:  # repeat the last window: it ends when its twin does, unlike silence
            encoded = torch.cat([encoded, encoded[-1:].expand(batch - n, -1, -1)])
        s = self._state(batch)
        k, v = self.cross_kv(encoded)
        if self.use_graph and s.graph is None:
            s.reset(self, k, v)
            try:
                self._capture(s)
            except RuntimeError as exc:  # a slower run is worth more than none
                self.graph_error, self.use_graph, s.graph = f"{exc}"[:500], False, None
        s.reset(self, k, v)
        for i in range(self.n_prompt - 1 + MAX_NEW_TOKENS):
            if self.use_graph:
                s.graph.replay()
            else:
                self._step(s)
            if (i + 1) % HOST_CHECK_EVERY == 0 and bool(s.finished.all()):
                break
        return [_until_eot(row[self.n_prompt:], self.eot) for row in s.out[:n].tolist()]


def _until_eot(row: list[int], eot: int) -> list[int]:
    return row[:row.index(eot)] if eot in row else row


# ---------------------------------------------------------------- transformers' generate

def generation_config(tokens: Tokens):
    """What Whisper's generate needs to force zh/transcribe/no timestamps and suppress as we do."""
    from transformers import GenerationConfig

    return GenerationConfig(
        decoder_start_token_id=tokens.prompt[0], eos_token_id=tokens.eot, pad_token_id=tokens.eot,
        bos_token_id=tokens.eot, lang_to_id=tokens.languages,
        task_to_id={"transcribe": tokens.transcribe, "translate": tokens.translate},
        no_timestamps_token_id=tokens.no_timestamps, prev_sot_token_id=tokens.sot_prev,
        is_multilingual=True, suppress_tokens=list(tokens.suppress),
        begin_suppress_tokens=list(tokens.begin_suppress), max_initial_timestamp_index=50,
        max_new_tokens=MAX_NEW_TOKENS, do_sample=False, num_beams=1,
    )


def hf_generate(model, gen_config, features: torch.Tensor, tokens: Tokens, language: str) -> list[list[int]]:
    # Greedy and the length live in gen_config: generate warns when they come as arguments too.
    out = model.generate(input_features=features, generation_config=gen_config, language=language,
                         task="transcribe", return_timestamps=False)
    rows = (out if isinstance(out, torch.Tensor) else out["sequences"]).tolist()
    # Depending on the version the prompt is or is not part of the output; cut it either way.
    prompt = list(tokens.prompt)
    return [_until_eot(r[len(prompt):] if r[:len(prompt)] == prompt else r, tokens.eot) for r in rows]


def agreement(ours: list[list[int]], theirs: list[list[int]]) -> dict:
    """Same sequences, and the share of tokens before the first difference."""
    same_prefix = total = 0
    for a, b in zip(ours, theirs):
        k = 0
        while k < min(len(a), len(b)) and a[k] == b[k]:
            k += 1
        same_prefix += k
        total += max(len(a), len(b))
    return {"windows": len(ours), "identical_windows": sum(a == b for a, b in zip(ours, theirs)),
            "token_prefix_agreement": same_prefix / max(1, total)}


# ---------------------------------------------------------------- the run

class Clock:
    """Seconds per stage, with the device drained at both ends so GPU work is counted."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"
        self.seconds: dict[str, float] = {}
        self.regions = 0

    def sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()

    def stage(self, name: str):
        clock = self

        class _Timer:
            def __enter__(self):
                clock.sync()
                self.t0 = time.perf_counter()

            def __exit__(self, *exc):
                clock.sync()
                clock.seconds[name] = clock.seconds.get(name, 0.0) + time.perf_counter() - self.t0

        return _Timer()


@dataclass
class Engine:
    """The loaded pieces, shared by the warm-up, the timed run and the reference."""

    model: object
    mel: LogMel
    decoder: GreedyDecoder
    dtype: torch.dtype
    batch: int

    def encode(self, rows: torch.Tensor, clock: Clock | None = None) -> torch.Tensor:
        with _maybe(clock, "features"):
            feats = self.mel(rows).to(self.dtype)
        with _maybe(clock, "encoder"):
            return self.model.model.encoder(input_features=feats).last_hidden_state

    def transcribe(self, audio: torch.Tensor, batches: list[list[Window]], clock: Clock | None = None):
        """Token rows of every window, keyed by the window's place in time."""
        found = {}
        for batch in batches:
            with _maybe(clock, "gather"):
                rows = gather_windows(audio, batch)
            encoded = self.encode(rows, clock)
            with _maybe(clock, "decoder"):
                for window, row in zip(batch, self.decoder.decode(encoded, self.batch)):
                    found[window.index] = row
        return found


class _Null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _maybe(clock: Clock | None, name: str):
    return clock.stage(name) if clock else _Null()


def check_features(mel: LogMel, rows: torch.Tensor, windows: list[Window], audio: np.ndarray) -> float:
    """Largest difference between our features and WhisperFeatureExtractor's on the same windows."""
    from transformers import WhisperFeatureExtractor

    ours = mel(rows).float().cpu().numpy()
    clips = [np.concatenate([audio[a:b] for a, b in w.pieces]).astype(np.float32) / 32768 for w in windows]
    theirs = WhisperFeatureExtractor(feature_size=80)(clips, sampling_rate=SAMPLE_RATE, return_tensors="np")
    return float(np.abs(ours - theirs["input_features"]).max())


@dataclass
class Setup:
    """What the warm-up and the timed run share."""

    device: torch.device
    pcm: np.ndarray
    repeats: int
    tokens: Tokens
    engine: Engine
    vad: SileroVad
    detok: object
    probe: list[Window] | None = None  # one repeat's windows, for warm-ups
    probe_audio: torch.Tensor | None = None
    audio: torch.Tensor | None = None  # the whole run's audio on the device, once uploaded


def setup(args, result: dict) -> Setup:
    """Load audio, tokens, weights, VAD and tokenizer (untimed)."""
    device = torch.device(args.device)
    dtype = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}[args.dtype]
    if device.type == "cuda":
        result["gpu"] = torch.cuda.get_device_name(device)
    t0 = time.perf_counter()
    pcm, repeats = load_audio(args.data, args.hours)
    tokens = read_tokens(args.data, args.language)
    model = load_model(args.data, device, dtype, random_weights=args.random_weights)
    engine = Engine(model, LogMel(np.load(args.data / "mel_filters.npy"), device),
                    GreedyDecoder(model, tokens, use_graph=device.type == "cuda" and not args.eager),
                    dtype, args.batch_size)
    threads = args.vad_threads or usable_cpus()
    vad = SileroVad(args.data / "silero_vad_v6.onnx", threads, args.vad_pieces or 2 * threads)
    result.update(setup_s=time.perf_counter() - t0, vad_threads=vad.threads, vad_pieces=vad.pieces,
                  audio_s=len(pcm) / SAMPLE_RATE, repeats=repeats,
                  attn_implementation=model.config._attn_implementation)
    return Setup(device, pcm, repeats, tokens, engine, vad, detokenizer(args.data))


def warm_up(s: Setup, args, result: dict) -> None:
    """VAD on one repeat, then one full batch of its windows (two on CPU) through the GPU stages.

    Graph capture and kernel choice happen here, untimed; on CUDA the graph's tokens are
    also checked against plain steps.
    """
    t0 = time.perf_counter()
    one = s.pcm[:len(s.pcm) // s.repeats]
    s.probe = plan_windows(speech_regions(s.vad.probabilities(one), len(one), VadSettings()))
    size = args.batch_size if s.device.type == "cuda" else min(args.batch_size, 2)
    batch = (s.probe * size)[:size]
    with torch.inference_mode():
        s.probe_audio = _upload(one, s.device)
        s.engine.batch = size
        s.engine.transcribe(s.probe_audio, [batch])
        if s.engine.decoder.use_graph:
            result["graph_check"] = graph_check(s.engine, s.probe_audio, batch)
    Clock(s.device).sync()
    result.update(warmup_s=time.perf_counter() - t0, graph_error=s.engine.decoder.graph_error)


def timed_run(s: Setup, args, clock: Clock) -> tuple[list[Window], list[list[Window]], dict, list[str], float]:
    """The measured pipeline; returns (windows, batches, tokens by window, texts, wall seconds)."""
    wall0 = time.perf_counter()
    with clock.stage("vad"):
        regions = speech_regions(s.vad.probabilities(s.pcm), len(s.pcm), VadSettings())
    with clock.stage("windows"):
        windows = plan_windows(regions)
        batches, size = plan_batches(windows, args.batch_size)
        s.engine.batch = size
    if s.engine.decoder.use_graph and size not in s.engine.decoder.states:
        # The plan's batch differs from the warm-up's: capture its graph now, timed apart
        # and taken out of the wall time.
        with clock.stage("capture"), torch.inference_mode():
            s.engine.transcribe(s.probe_audio, [(s.probe * size)[:size]])
    with torch.inference_mode():
        with clock.stage("upload"):
            audio = _upload(s.pcm, s.device)
        found = s.engine.transcribe(audio, batches, clock)
    with clock.stage("detokenize"):
        texts = s.detok.decode_batch([found[w.index] for w in windows], skip_special_tokens=True)
    clock.regions = len(regions)
    s.audio = audio
    return windows, batches, found, texts, time.perf_counter() - wall0 - clock.seconds.get("capture", 0.0)


def run(args, result: dict) -> None:
    """Everything, filling ``result`` as it goes so that a failure still leaves what was found."""
    s = setup(args, result)
    warm_up(s, args, result)
    clock = Clock(s.device)
    windows, batches, found, texts, wall = timed_run(s, args, clock)
    gpu_part = sum(clock.seconds.get(k, 0.0) for k in ("upload", "gather", "features", "encoder", "decoder"))
    audio_s = result["audio_s"]
    result.update(
        regions=clock.regions, windows=len(windows), speech_s=sum(w.samples for w in windows) / SAMPLE_RATE,
        batch_size=s.engine.batch, batches=len(batches), stages_s=clock.seconds, wall_s=wall,
        x_realtime=audio_s / wall, x_realtime_gpu_part=audio_s / gpu_part, gpu_part_s=gpu_part,
        new_tokens=sum(len(r) for r in found.values()),
    )
    t0 = time.perf_counter()
    reference = (args.data / "ref.txt").read_text(encoding="utf-8") * s.repeats
    result["cer"] = cer("".join(texts), reference)
    result["cer_s"] = time.perf_counter() - t0
    result["sample_text"] = texts[:2]
    if args.ref_windows:
        result["reference"] = reference_run(args, s.engine, s.tokens, s.audio, batches, found, s.pcm)


def usable_cpus() -> int:
    # A container may report the host's CPUs; the ones this process may run on are what count.
    try:
        return max(1, min(len(os.sched_getaffinity(0)), 64))
    except AttributeError:
        return os.cpu_count() or 1


def graph_check(engine: Engine, audio: torch.Tensor, batch: list[Window]) -> dict:
    """Do graph replays give what plain steps give? Same kernels, so they should, bit for bit."""
    encoded = engine.encode(gather_windows(audio, batch))
    graphed = engine.decoder.decode(encoded, engine.batch)
    engine.decoder.use_graph = False
    try:
        plain = engine.decoder.decode(encoded, engine.batch)
    finally:
        engine.decoder.use_graph = engine.decoder.graph_error is None
    return {"windows": len(batch), "identical": graphed == plain, **agreement(graphed, plain)}


def _upload(pcm: np.ndarray, device: torch.device) -> torch.Tensor:
    # int16 over the bus (half the bytes), float on the device.
    return torch.from_numpy(pcm).to(device).float().div_(32768)


def detokenizer(data: Path):
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(data / "tokenizer.json"))


def reference_run(args, engine: Engine, tokens: Tokens, audio: torch.Tensor, batches: list[list[Window]],
                  found: dict, pcm: np.ndarray) -> dict:
    """transformers' generate on the first batch's windows (or fewer): time, agreement, check."""
    subset = batches[0][:args.ref_windows]
    report: dict = {"windows": len(subset)}
    device = audio.device
    clock = Clock(device)
    try:
        gen_config = generation_config(tokens)
        with torch.inference_mode():
            rows = gather_windows(audio, subset)
            feats = engine.mel(rows).to(engine.dtype)
            hf_generate(engine.model, gen_config, feats[:2], tokens, args.language)  # warm-up
            with clock.stage("generate"):
                theirs = hf_generate(engine.model, gen_config, feats, tokens, args.language)
            with clock.stage("ours"):
                engine.decoder.decode(engine.model.model.encoder(input_features=feats).last_hidden_state,
                                      engine.batch)
            if args.check:
                report["features_max_abs_diff"] = check_features(engine.mel, rows, subset, pcm)
    except Exception as exc:  # the reference must not sink the measurement it accompanies
        report["error"] = f"{type(exc).__name__}: {exc}"
        return report
    ours = [found[w.index] for w in subset]
    report.update(agreement(ours, theirs))
    report["generate_s"] = clock.seconds["generate"]
    report["ours_encoder_decoder_s"] = clock.seconds["ours"]
    report["speedup"] = clock.seconds["generate"] / clock.seconds["ours"]
    report["audio_s"] = sum(w.samples for w in subset) / SAMPLE_RATE
    report["generate_x_realtime_of_speech"] = report["audio_s"] / clock.seconds["generate"]
    return report


def versions() -> dict:
    found = {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
             "cuda": torch.version.cuda}
    for name in ("transformers", "tokenizers", "onnxruntime", "safetensors"):
        try:
            found[name] = __import__(name).__version__
        except ImportError:
            found[name] = None
    return found


def table(r: dict) -> str:
    s = r["stages_s"]
    lines = [
        f"GPU {r.get('gpu', '-')}  device {r['device']}  dtype {r['dtype']}"
        + ("  RANDOM WEIGHTS (smoke test)" if r.get("random_weights") else ""),
        f"audio {r['audio_s']:.0f} s ({r['repeats']} x zh_dev), speech {r['speech_s']:.0f} s, "
        f"{r['regions']} regions, {r['windows']} windows, batch {r['batch_size']} x {r['batches']}",
        "stage seconds: " + ", ".join(f"{k} {v:.3f}" for k, v in s.items()),
        f"wall {r['wall_s']:.3f} s  ->  {r['x_realtime']:.0f}x real time (whole pipeline), "
        f"{r['x_realtime_gpu_part']:.0f}x (GPU part {r['gpu_part_s']:.3f} s)",
        f"CER {r['cer']:.4f} ({r['new_tokens']} tokens)  warm-up {r['warmup_s']:.1f} s and setup "
        f"{r['setup_s']:.1f} s excluded",
    ]
    if r.get("graph_error"):
        lines.append(f"CUDA graph capture FAILED, the decoder ran plain steps: {r['graph_error']}")
    if r.get("graph_check"):
        g = r["graph_check"]
        lines.append(f"CUDA graph vs plain steps on {g['windows']} warm-up windows: identical "
                     f"{g['identical_windows']}/{g['windows']}, token agreement {g['token_prefix_agreement']:.4f}")
    if "capture" in s:
        lines.append("(capture: a second graph for the plan's batch size, not counted in the wall time)")
    ref = r.get("reference")
    if ref and "error" in ref:
        lines.append(f"reference: {ref['error']}")
    elif ref:
        lines.append(
            f"reference generate on {ref['windows']} windows: {ref['generate_s']:.3f} s vs ours "
            f"{ref['ours_encoder_decoder_s']:.3f} s (x{ref['speedup']:.1f}); identical "
            f"{ref['identical_windows']}/{ref['windows']}, token agreement {ref['token_prefix_agreement']:.4f}"
            + (f"; features max diff {ref['features_max_abs_diff']:.2e}" if "features_max_abs_diff" in ref else ""))
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtype", default="float16", choices=("float16", "bfloat16", "float32"))
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--language", default="zh")
    parser.add_argument("--vad-threads", type=int, default=0, help="0: one per CPU")
    parser.add_argument("--vad-pieces", type=int, default=0, help="0: two per thread")
    parser.add_argument("--ref-windows", type=int, default=128, help="0: no reference run")
    parser.add_argument("--torch-threads", type=int, default=0, help="0: torch's default")
    parser.add_argument("--eager", action="store_true", help="no CUDA graph for the decoder step")
    parser.add_argument("--check", action="store_true",
                        help="compare features with transformers and fail unless tokens agree exactly")
    parser.add_argument("--out", type=Path, default=Path("gpu_speed.json"))
    parser.add_argument("--random-weights", action="store_true",
                        help="smoke test without model.safetensors: the timings hold, the text is noise")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    result: dict = {"argv": sys.argv[1:], "device": args.device, "dtype": args.dtype,
                    "random_weights": args.random_weights, "versions": versions(),
                    "excluded": "reading and repeating the PCM, loading, the warm-up pass"}
    try:
        run(args, result)
    except BaseException as exc:
        # Device time is scarce: keep whatever was measured before the failure.
        import traceback

        result["error"] = "".join(traceback.format_exception(exc))[-4000:]
        args.out.write_text(json.dumps(result, indent=1, ensure_ascii=False, default=str))
        raise
    args.out.write_text(json.dumps(result, indent=1, ensure_ascii=False, default=str))
    print(table(result))
    ref = result.get("reference", {})
    if args.check and (ref.get("identical_windows") != ref.get("windows") or "error" in ref):
        print("check failed: our tokens differ from generate's", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
