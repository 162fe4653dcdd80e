"""Whisper's log-mel spectrogram computed where the model is (the GPU), not on the host.

The same arithmetic as transformers' ``WhisperFeatureExtractor`` (its torch path, batched:
one floor per window, 8 below the window's loudest bin), on the extractor's own filters;
only the samples cross the bus, and the host is free to prepare the next batch.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..media import SAMPLE_RATE
from .windows import MEL_FRAMES_PER_SECOND, WINDOW

N_FFT, HOP = 400, SAMPLE_RATE // MEL_FRAMES_PER_SECOND
WINDOW_SAMPLES = int(WINDOW * SAMPLE_RATE)


def padded_clips(clips: Sequence[np.ndarray]):
    """The clips as one host tensor of 30-second rows, zero-padded as the extractor pads
    them (pinned, where a GPU can copy it while it works): what ``LogMel`` reads."""
    import torch

    rows = torch.zeros((len(clips), WINDOW_SAMPLES), dtype=torch.float32,
                       pin_memory=torch.cuda.is_available())
    for row, clip in zip(rows, clips):
        clip = clip[:WINDOW_SAMPLES]
        row[: len(clip)] = torch.from_numpy(np.ascontiguousarray(clip, dtype=np.float32))
    return rows


class LogMel:
    """Log-mel features of a batch of 30-second rows, computed on ``device``."""

    def __init__(self, filters: np.ndarray, device: str):
        import torch

        self.filters = torch.from_numpy(np.asarray(filters, dtype=np.float32)).to(device).T.contiguous()
        self.window = torch.hann_window(N_FFT, device=device)
        self.device = device

    def __call__(self, rows):
        """(batch, 480000) samples (on any device) -> (batch, mels, 3000) float32 features."""
        import torch

        audio = rows.to(self.device, non_blocking=True)
        stft = torch.stft(audio, N_FFT, HOP, window=self.window, return_complex=True)
        power = (stft[..., :-1].abs() ** 2).contiguous()  # Whisper drops the last of 3001 frames
        mel = torch.clamp(self.filters @ power, min=1e-10).log10()
        floor = mel.amax(dim=(1, 2), keepdim=True) - 8.0
        return (torch.maximum(mel, floor) + 4.0) / 4.0
