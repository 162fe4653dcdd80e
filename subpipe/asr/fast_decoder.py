"""Greedy decoding for Whisper with a static KV cache, one step that a CUDA graph replays.

transformers' ``generate`` spends a GPU's time on the host: per token a Python loop of
logits processors, cache objects and a hundred small kernels, for a step that computes
little. Here one step is a fixed sequence of kernels on fixed buffers: a key/value cache
of Whisper's 448 positions, the cross-attention keys and values computed once per batch,
and the forced tokens (a prompt, the start of transcript, or a whole transcript to align)
fed through the same step as the chosen ones. On CUDA the step is captured once per batch
size as a graph and replayed (bench/gpu_speed.py: about 15x generate's speed on an H100);
on the CPU the same step runs as it is, which is how the tests hold its tokens to
``generate``'s.

Each step also keeps the alignment heads' cross-attention of the token it fed: the rows a
forced alignment pass would compute, so word timing needs no second pass.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Sequence

log = logging.getLogger(__name__)

HOST_CHECK_EVERY = 16  # steps between looks at "every row has ended" (each look waits for the device)


@dataclass(frozen=True)
class Suppression:
    """Tokens greedy decoding never picks (openai-whisper's "-1" and the special tokens),
    and those it does not pick first (blank, end of text): what ``generate`` suppresses."""

    always: tuple[int, ...]
    at_start: tuple[int, ...]


@dataclass(frozen=True)
class Decoded:
    """One row of a batch.

    ``tokens``: what followed the forced tokens, end of text left out (everything
    ``generate`` returns); ``reached_limit``: the row used every position without its
    end of text being fed, a loop by Whisper's own measure; ``fed``: positions fed, end
    of text included, the rows of its attention.
    """

    tokens: tuple[int, ...]
    reached_limit: bool
    fed: int


@dataclass(frozen=True)
class _Layer:
    ln1: tuple
    q: tuple
    k: object
    v: tuple
    out: tuple
    ln2: tuple
    cq: tuple
    ck: object
    cv: tuple
    cout: tuple
    ln3: tuple
    fc1: tuple
    fc2: tuple


class _State:
    """Every tensor one step reads or writes, at fixed addresses, so a graph can replay it."""

    def __init__(self, d: "FastDecoder", batch: int):
        import torch

        dev, dt = d.device, d.dtype
        self.k_cache = torch.zeros((d.n_layers, batch, d.n_heads, d.positions_max, d.head_dim), device=dev, dtype=dt)
        self.v_cache = torch.zeros_like(self.k_cache)
        self.cross_k = torch.zeros((d.n_layers, batch, d.n_heads, d.n_audio, d.head_dim), device=dev, dtype=dt)
        self.cross_v = torch.zeros_like(self.cross_k)
        self.ids = torch.zeros((batch, d.positions_max), device=dev, dtype=torch.long)  # the rows' tokens
        self.n_forced = torch.ones(batch, device=dev, dtype=torch.long)
        self.step = torch.zeros((), device=dev, dtype=torch.long)  # the position fed next
        self.finished = torch.zeros(batch, device=dev, dtype=torch.bool)  # end of text chosen
        self.done = torch.zeros(batch, device=dev, dtype=torch.bool)  # end of text fed
        self.attention = torch.zeros((batch, len(d.alignment_heads), d.positions_max, d.n_audio), device=dev, dtype=dt)
        self.graph = None


class FastDecoder:
    """Greedy decoding on the weights of transformers' ``WhisperForConditionalGeneration``.

    ``alignment_heads``: (layer, head) pairs whose cross-attention times words;
    ``graphs``: capture the step as a CUDA graph (on a GPU; the CPU runs it plainly).
    """

    def __init__(self, model, suppression: Suppression, eot: int, alignment_heads: Sequence[Sequence[int]],
                 *, graphs: bool):
        import torch

        dec, cfg = model.model.decoder, model.config
        if cfg.scale_embedding:  # Whisper's checkpoints don't scale embeddings; this step would not either
            raise ValueError("FastDecoder does not scale embeddings (config.scale_embedding is set)")
        self.device, self.dtype = dec.embed_tokens.weight.device, dec.embed_tokens.weight.dtype
        self.n_layers, self.n_heads, self.d_model = cfg.decoder_layers, cfg.decoder_attention_heads, cfg.d_model
        self.head_dim = self.d_model // self.n_heads
        self.scale = self.head_dim ** -0.5
        self.positions_max, self.n_audio = cfg.max_target_positions, cfg.max_source_positions
        self.embed, self.positions = dec.embed_tokens.weight, dec.embed_positions.weight
        self.final_ln = (dec.layer_norm.weight, dec.layer_norm.bias)
        self.layers = [self._weights(layer) for layer in dec.layers]
        self.eot = eot
        self.alignment_heads = [tuple(h) for h in alignment_heads]
        vocab = self.embed.shape[0]
        self.always = self._mask(vocab, suppression.always)
        self.at_start = self._mask(vocab, suppression.at_start)
        self.slots = torch.arange(self.positions_max, device=self.device)
        self.graphs = graphs
        self.graph_error: str | None = None  # why capture failed, if it did: steps then run plainly
        self.states: dict[int, _State] = {}

    @staticmethod
    def _weights(layer) -> _Layer:
        def wb(m):
            return m.weight, m.bias

        sa, ca = layer.self_attn, layer.encoder_attn
        return _Layer(ln1=wb(layer.self_attn_layer_norm), q=wb(sa.q_proj), k=sa.k_proj.weight, v=wb(sa.v_proj),
                      out=wb(sa.out_proj), ln2=wb(layer.encoder_attn_layer_norm), cq=wb(ca.q_proj),
                      ck=ca.k_proj.weight, cv=wb(ca.v_proj), cout=wb(ca.out_proj), ln3=wb(layer.final_layer_norm),
                      fc1=wb(layer.fc1), fc2=wb(layer.fc2))

    def _mask(self, vocab: int, ids: Sequence[int]):
        import torch

        mask = torch.zeros(vocab, dtype=torch.bool, device=self.device)
        if ids:
            mask[list(ids)] = True
        return mask

    def _heads(self, x):
        b, t, _ = x.shape
        return x.view(b, t, self.n_heads, self.head_dim).transpose(1, 2)

    def run(self, encoded, forced: Sequence[Sequence[int]], batch: int | None = None):
        """Decode each row of ``encoded`` (the encoder's output) after its ``forced`` tokens.

        A forced row that ends in end of text is fed whole (an alignment pass); otherwise
        greedy decoding goes on until end of text or the last position. Rows are padded to
        ``batch`` (repeating the last) so that one captured graph serves every batch.
        Returns each row's ``Decoded`` and the alignment heads' attention, rows x heads x
        positions x frames: a view, valid until the next ``run``.
        """
        import torch

        with torch.inference_mode():  # whoever calls: no autograd in a captured graph
            return self._run(encoded, forced, batch)

    def _run(self, encoded, forced: Sequence[Sequence[int]], batch: int | None):
        import torch

        n = encoded.shape[0]
        if n == 0:
            return [], None
        if any(not 1 <= len(row) < self.positions_max for row in forced) or len(forced) != n:
            raise ValueError(f"each of the {n} rows needs 1 to {self.positions_max - 1} forced tokens")
        batch = max(n, batch or n)
        rows = [list(r) for r in forced] + [list(forced[-1])] * (batch - n)
        if batch > n:  # the last row again: it ends when its twin does, unlike silence
            encoded = torch.cat([encoded, encoded[-1:].expand(batch - n, -1, -1)])
        s = self._ready(batch, encoded, rows)
        self._reset(s, encoded, rows)
        for p in range(self.positions_max - 1):  # position 447 is never fed: nothing may follow it
            if s.graph is not None:
                s.graph.replay()
            else:
                self._step(s)
            if (p + 1) % HOST_CHECK_EVERY == 0 and bool(s.done[:n].all()):
                break
        ids, done = s.ids[:n].tolist(), s.done[:n].tolist()
        return [self._decoded(row, len(forced[r]), done[r]) for r, row in enumerate(ids)], s.attention[:n]

    def _decoded(self, row: list[int], n_forced: int, done: bool) -> Decoded:
        end = row.index(self.eot, n_forced - 1) if self.eot in row[n_forced - 1:] else len(row)
        if end < n_forced:  # an alignment pass: the forced row itself ended in end of text
            return Decoded((), False, end + 1)
        return Decoded(tuple(row[n_forced:end]), not done, end + 1 if done else self.positions_max - 1)

    def _ready(self, batch: int, encoded, rows: list[list[int]]) -> _State:
        s = self.states.get(batch) or self.states.setdefault(batch, _State(self, batch))
        if self.graphs and s.graph is None:
            self._reset(s, encoded, rows)  # capture runs steps: they need real buffers
            self._capture(s)
        return s

    def release(self) -> None:
        """Drop every batch's buffers and graph (after running out of memory)."""
        self.states.clear()

    def _reset(self, s: _State, encoded, rows: list[list[int]]) -> None:
        import torch
        import torch.nn.functional as F

        for i, w in enumerate(self.layers):  # cross-attention keys and values: once per batch
            s.cross_k[i].copy_(self._heads(F.linear(encoded, w.ck)))
            s.cross_v[i].copy_(self._heads(F.linear(encoded, *w.cv)))
        # Unwritten cache slots are masked, but must hold finite numbers: 0 * NaN is NaN.
        s.k_cache.zero_()
        s.v_cache.zero_()
        ids = torch.full(tuple(s.ids.shape), self.eot, dtype=torch.long)
        for r, row in enumerate(rows):
            ids[r, : len(row)] = torch.tensor(row, dtype=torch.long)
        s.ids.copy_(ids)
        s.n_forced.copy_(torch.tensor([len(row) for row in rows], dtype=torch.long))
        s.step.zero_()
        s.finished.zero_()
        s.done.zero_()

    def _step(self, s: _State) -> None:
        """Feed the token at ``s.step``; write the next one (chosen or forced); advance."""
        import torch
        import torch.nn.functional as F

        b = s.ids.shape[0]
        where = s.step.view(1)
        # index_select, never [] or int(): reading the step back to the host would break the graph.
        fed = s.ids.index_select(1, where).view(b)
        x = (F.embedding(fed, self.embed) + self.positions.index_select(0, where)).unsqueeze(1)  # (b, 1, d)
        visible = (self.slots <= s.step).view(1, 1, 1, -1)
        scores = []
        for i, w in enumerate(self.layers):
            h = F.layer_norm(x, (self.d_model,), *w.ln1)
            q = self._heads(F.linear(h, *w.q))
            s.k_cache[i].index_copy_(2, where, self._heads(F.linear(h, w.k)))
            s.v_cache[i].index_copy_(2, where, self._heads(F.linear(h, *w.v)))
            a = F.scaled_dot_product_attention(q, s.k_cache[i], s.v_cache[i], attn_mask=visible)
            x = x + F.linear(a.transpose(1, 2).reshape(b, 1, self.d_model), *w.out)
            h = F.layer_norm(x, (self.d_model,), *w.ln2)
            q = self._heads(F.linear(h, *w.cq))
            # The alignment heads' weights, as an eager attention would return them.
            scores += [q[:, head] @ s.cross_k[i][:, head].transpose(-1, -2)
                       for layer, head in self.alignment_heads if layer == i]
            a = F.scaled_dot_product_attention(q, s.cross_k[i], s.cross_v[i])
            x = x + F.linear(a.transpose(1, 2).reshape(b, 1, self.d_model), *w.cout)
            h = F.layer_norm(x, (self.d_model,), *w.ln3)
            x = x + F.linear(F.gelu(F.linear(h, *w.fc1)), *w.fc2)
        if scores:
            weights = torch.softmax((torch.stack(scores, 1) * self.scale).float(), dim=-1)  # (b, heads, 1, frames)
            s.attention.index_copy_(2, where, weights.to(s.attention.dtype))
        x = F.layer_norm(x[:, 0], (self.d_model,), *self.final_ln)
        logits = F.linear(x, self.embed).float()
        first = (s.step == s.n_forced - 1).view(b, 1)
        logits = logits.masked_fill(self.always | (self.at_start & first), -math.inf)
        following = (where + 1).clamp(max=self.positions_max - 1)
        chosen = torch.where(s.step + 1 < s.n_forced, s.ids.index_select(1, following).view(b), logits.argmax(-1))
        chosen = torch.where(s.finished, torch.full_like(chosen, self.eot), chosen)
        s.done |= fed == self.eot
        s.finished |= chosen == self.eot
        s.ids.index_copy_(1, following, chosen.view(b, 1))
        s.step.add_(1)

    def _capture(self, s: _State) -> None:
        import torch

        try:
            # Kernels must have run once (library handles, autotuning) before capture; a side
            # stream keeps that warm-up off the default stream, as torch.cuda.graphs advises.
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for _ in range(3):
                    self._step(s)
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                self._step(s)
            s.graph = graph
        except RuntimeError as exc:  # a slower run is worth more than none
            self.graph_error, self.graphs = f"{exc}"[:500], False
            log.warning("CUDA graph capture failed, decoding step by step: %s", self.graph_error)
