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


def batch_token_starts(weights: Sequence, n_frames: Sequence[int], first: int) -> list[list[float]]:
    """Where each token from ``first`` on starts (seconds), and where the last one ends,
    for many clips at once: the matrices built where the weights are, the warps run side
    by side on the CPU's cores (warp.py).

    ``weights``: per clip, the alignment heads' cross-attention of one forced pass, a
    tensor of heads x tokens x encoder frames; ``n_frames``: the clip's mel frames (10 ms
    each); ``first``: how many start-of-transcript tokens precede the text. The last row
    (the end-of-text token) marks where the last word ends.
    """
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
    """For each cost matrix (tokens x frames, float64 tensors on any device), the frame
    where the cheapest monotonic path first reaches each token.

    transformers' (and openai-whisper's) path, every window of the batch at once (warp.py).
    """
    from .warp import first_frames

    if not matrices:
        return []
    rows = np.array([m.shape[0] for m in matrices], dtype=np.int64)
    cols = np.array([m.shape[1] for m in matrices], dtype=np.int64)
    packed = np.zeros((len(matrices), rows.max(), cols.max()), dtype=np.float64)
    for k, m in enumerate(matrices):
        packed[k, : rows[k], : cols[k]] = m.cpu().numpy()
    out = np.zeros((len(matrices), rows.max()), dtype=np.int64)
    first_frames(packed, rows, cols, out)
    return [out[k, : rows[k]].tolist() for k in range(len(matrices))]


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
