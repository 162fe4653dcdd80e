"""Word timing from Whisper's cross-attention, as openai-whisper does it.

The alignment heads' attention over the audio frames, in a forced pass over the decoded
tokens, is normalised, median-filtered and warped (dynamic time warping) onto time:
each token starts where the warp path first reaches it. Tokens are then grouped into
words by Whisper's tokenizer, with trailing punctuation on the word before it.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..types import Word

ENCODER_FRAMES_PER_SECOND = 50  # the encoder halves the mel frames: 20 ms each
# Punctuation that joins the word after it (prepended) or before it (appended), as
# openai-whisper and faster-whisper group tokens into words.
PREPEND_PUNCTUATION = "\"'“¿([{-"
APPEND_PUNCTUATION = "\"'.。,，!！?？:：”)]}、"


def token_starts(weights, n_frames: int, first: int) -> list[float]:
    """Where each token from ``first`` on starts (seconds), and where the last one ends.

    ``weights``: the alignment heads' cross-attention of one forced pass, a tensor of
    heads x tokens x encoder frames; ``n_frames``: the clip's mel frames (10 ms each);
    ``first``: how many start-of-transcript tokens precede the text. The last row
    (the end-of-text token) marks where the last word ends.
    """
    return batch_token_starts([weights], [n_frames], first)[0]


def batch_token_starts(weights: Sequence, n_frames: Sequence[int], first: int) -> list[list[float]]:
    """``token_starts`` of many clips at once: the warps run side by side on the weights' device."""
    matrices = [_alignment_matrix(w, frames, first) for w, frames in zip(weights, n_frames)]
    return [(np.asarray(path) / ENCODER_FRAMES_PER_SECOND).tolist() for path in dtw_starts(matrices)]


def _alignment_matrix(weights, n_frames: int, first: int):
    """The cost the warp follows (as openai-whisper and transformers build it), tokens x frames."""
    import torch
    from transformers.models.whisper.generation_whisper import _median_filter

    weights = weights[:, :, : max(1, n_frames // 2)].float()
    # transformers gives softmax over all 1500 frames; openai-whisper's is over the clip's own.
    weights = weights / weights.sum(-1, keepdim=True)
    std, mean = torch.std_mean(weights, dim=-2, keepdim=True, unbiased=False)
    weights = _median_filter((weights - mean) / std, 7).mean(0)
    return -weights[first:-1].double()


def dtw_starts(matrices: Sequence) -> list[list[int]]:
    """For each cost matrix (tokens x frames, float64 tensors on one device), the frame
    where the cheapest monotonic path first reaches each token.

    The same path as transformers' (and openai-whisper's) ``dynamic_time_warping``, ties
    broken alike and costs kept in float32 as there, but the cells of one anti-diagonal
    of every matrix are filled at once: a few thousand vector steps for a batch instead
    of one Python step per cell, which took seconds per window.
    """
    import torch

    if not matrices:
        return []
    device = matrices[0].device
    rows = max(m.shape[0] for m in matrices)
    cols = max(m.shape[1] for m in matrices)
    # Cell (i, j) of the (rows+1) x (cols+1) cost grid lives at [d = i + j, i]: each
    # anti-diagonal is one contiguous row, and its cells depend on the two rows before.
    # Cells past a matrix's own size never feed its cells, so padding changes nothing.
    cost_in = torch.zeros((len(matrices), rows, cols), dtype=torch.float64, device=device)
    for k, m in enumerate(matrices):
        cost_in[k, : m.shape[0], : m.shape[1]] = m
    diagonals = rows + cols + 1
    d = torch.arange(diagonals, device=device).view(-1, 1)
    i = torch.arange(1, rows + 1, device=device).view(1, -1)
    j = d - i
    # Cells off the grid cost infinity: those at j <= 0 feed only each other and stay
    # infinite (the grid's first column), those past the last frame feed nothing.
    skewed = cost_in[:, (i - 1).expand_as(j), (j - 1).clamp(0, cols - 1)]  # batch x diagonals x rows
    skewed.masked_fill_(~((j >= 1) & (j <= cols)), float("inf"))
    cost = torch.full((len(matrices), diagonals, rows + 1), float("inf"), dtype=torch.float32, device=device)
    cost[:, 0, 0] = 0.0
    trace = torch.full((len(matrices), diagonals, rows + 1), 2, dtype=torch.int8, device=device)
    for k in range(2, diagonals):
        before, twice = cost[:, k - 1], cost[:, k - 2]
        c0, c1, c2 = twice[:, :-1], before[:, :-1], before[:, 1:]  # (i-1, j-1), (i-1, j), (i, j-1)
        t0 = (c0 < c1) & (c0 < c2)
        t1 = (c1 < c0) & (c1 < c2)
        best = torch.where(t0, c0, torch.where(t1, c1, c2))
        cost[:, k, 1:] = (skewed[:, k] + best.double()).float()  # summed in float64, kept in float32
        trace[:, k, 1:] = torch.where(t0, 0, torch.where(t1, 1, 2)).to(torch.int8)
    return _backtrace(trace.cpu().numpy(), [tuple(m.shape) for m in matrices])


def _backtrace(trace: np.ndarray, shapes: Sequence[tuple[int, int]]) -> list[list[int]]:
    """Walk every path back from its matrix's corner at once; each token's first frame."""
    # The grid's first row (0, j), at [j, 0], was never written: 2, left. Its first
    # column (i, 0), at [i, i], goes up, as transformers sets it before walking back.
    trace = trace.copy()
    edge = np.arange(1, trace.shape[2])
    trace[:, edge, edge] = 1
    count = len(shapes)
    i = np.array([s[0] for s in shapes])
    j = np.array([s[1] for s in shapes])
    longest = int((i + j).max())
    texts = np.full((count, longest), -2, dtype=np.int64)
    times = np.full((count, longest), -2, dtype=np.int64)
    at = np.arange(count)
    for step in range(longest):
        moving = (i > 0) | (j > 0)
        if not moving.any():
            break
        texts[moving, step] = i[moving] - 1
        times[moving, step] = j[moving] - 1
        move = trace[at, i + j, i]
        i = np.where(moving & (move != 2), i - 1, i)
        j = np.where(moving & (move != 1), j - 1, j)
    starts = []
    for k in range(count):
        text = texts[k][texts[k] != -2][::-1]
        time = times[k][times[k] != -2][::-1]
        jumps = np.pad(np.diff(text), (1, 0), constant_values=1).astype(bool)
        starts.append(time[jumps].tolist())
    return starts


def words_from_tokens(tokenizer, text: Sequence[int], starts: Sequence[float]) -> list[Word]:
    """The words of ``text`` (token ids, openai-whisper's ``tokenizer``) timed by ``starts``.

    As openai-whisper: token k starts at jump k; the end-of-text token's jump ends the last word.
    """
    words, word_tokens = tokenizer.split_to_word_tokens(list(text) + [tokenizer.eot])
    out, index = [], 0
    for word, tokens in zip(words[:-1], word_tokens[:-1]):
        start = starts[min(index, len(starts) - 1)]
        index += len(tokens)
        end = starts[min(index, len(starts) - 1)]
        if word.strip():
            out.append(Word(round(start, 3), round(max(end, start), 3), word))
    return merge_punctuation(out)


def merge_punctuation(words: list[Word]) -> list[Word]:
    """Trailing punctuation joins the word before it."""
    out: list[Word] = []
    for w in words:
        if out and w.text.strip() and all(ch in APPEND_PUNCTUATION for ch in w.text.strip()):
            prev = out.pop()
            out.append(Word(prev.start, prev.end, prev.text + w.text.strip(), prev.probability))
        else:
            out.append(w)
    return out
