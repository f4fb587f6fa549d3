"""Anti-aliased resampling of PCM16: a Kaiser-windowed-sinc polyphase FIR in numpy (no scipy).

:class:`Resampler` keeps filter state across frames, so streaming 20 ms frames gives exactly the whole-signal
output; it belongs to one stream (one thread) at a time. :func:`resample` is the one-shot form.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from core.errors import AudioFormatError
from core.g711 import PcmArray, pcm_1d

# ---------------------------------------------------------------------------------------------- resampling

_STOPBAND_DB = 80.0
_PASS_EDGE = 0.43  # of the lower of the two rates: 3440 Hz for 8 kHz
_STOP_EDGE = 0.50  # Nyquist of the lower rate: nothing above it survives (aliases or images)
_MAX_PHASES = 4096
_BLOCK = 4096  # outputs computed per vectorised step, bounds temporary memory


@lru_cache(maxsize=32)
def _polyphase_table(up: int, down: int) -> tuple[npt.NDArray[np.float64], int]:
    """Kaiser-windowed sinc weights, shape ``(up, 2K+1)``: row ``p`` interpolates at input time
    ``q + p/up`` from input samples ``q-K .. q+K``. Each row sums to 1 (exact DC gain)."""
    beta = 0.1102 * (_STOPBAND_DB - 8.7)
    taps_low = (_STOPBAND_DB - 7.95) / (2.285 * 2 * math.pi * (_STOP_EDGE - _PASS_EDGE))
    scale = min(1.0, up / down)  # lower rate / input rate
    cutoff = (_PASS_EDGE + _STOP_EDGE) / 2 * scale  # cycles per input sample
    half = taps_low / 2 / scale  # half-width in input samples
    k = math.ceil(half) + 1
    tau = (np.arange(up, dtype=np.float64) / up)[:, None] - np.arange(-k, k + 1, dtype=np.float64)[None, :]
    inside = np.abs(tau) <= half
    window = np.i0(beta * np.sqrt(np.clip(1.0 - (tau / half) ** 2, 0.0, None))) / np.i0(beta)
    weights = np.where(inside, 2 * cutoff * np.sinc(2 * cutoff * tau) * window, 0.0)
    weights /= weights.sum(axis=1, keepdims=True)
    weights.flags.writeable = False
    return weights, k


class Resampler:
    """Streaming int16 resampler from ``src_hz`` to ``dst_hz`` (any rational ratio, e.g. 8000↔16000,
    22050→16000, 44100→16000) with a linear-phase, anti-aliased windowed-sinc polyphase FIR (Kaiser, ~80 dB
    stopband starting at the lower rate's Nyquist, flat to 43 % of the lower rate: 3.44 kHz for 8 kHz).

    Feed mono frames of any size to :meth:`process`; filter history is kept between calls, so the
    concatenation of all outputs plus :meth:`flush` equals :func:`resample` on the whole signal (the same
    arithmetic, no clicks at frame boundaries). Output is delayed by at most :attr:`latency_samples` input
    samples: the first call yields that much less, after which each call yields ``len(frame) * dst/src``
    samples (exactly, when the frame is a multiple of ``src/gcd(src, dst)`` samples, e.g. any 20 ms frame of
    the rates above). :meth:`flush` emits the tail and resets the resampler for a new stream.

    Not thread-safe: one instance per stream, used by one thread or task at a time.
    """

    def __init__(self, src_hz: int, dst_hz: int) -> None:
        if src_hz <= 0 or dst_hz <= 0:
            raise AudioFormatError("Sample rates must be positive.")
        g = math.gcd(src_hz, dst_hz)
        self.src_hz = src_hz
        self.dst_hz = dst_hz
        self._up, self._down = dst_hz // g, src_hz // g
        if self._up > _MAX_PHASES:
            raise AudioFormatError("Unsupported resampling ratio.", src_hz=src_hz, dst_hz=dst_hz)
        self._table, self._k = _polyphase_table(self._up, self._down)
        self._taps = np.arange(self._table.shape[1], dtype=np.int64)
        self.reset()

    @property
    def latency_samples(self) -> int:
        """Look-ahead of the filter in input samples (at ``src_hz``): output is this late at most."""
        return self._k

    @property
    def latency_ms(self) -> float:
        """:attr:`latency_samples` in ms."""
        return self._k * 1000.0 / self.src_hz

    def reset(self) -> None:
        """Forget all history; the next :meth:`process` starts a new stream."""
        self._buf = np.zeros(self._k, dtype=np.float64)  # input samples from index self._buf_start on
        self._buf_start = -self._k
        self._n_in = 0
        self._n_out = 0

    def process(self, pcm: npt.NDArray[np.int16] | bytes) -> PcmArray:
        """Resample the next chunk of mono int16 PCM (array or little-endian bytes); returns the output samples
        that are complete so far (possibly none)."""
        if isinstance(pcm, np.ndarray) and pcm.ndim != 1:
            raise AudioFormatError("Resampler takes mono PCM of shape (n,).")
        x = pcm_1d(pcm)
        self._buf = np.concatenate([self._buf, x.astype(np.float64)])
        self._n_in += len(x)
        ready = self._n_in - self._k
        return self._emit(-(-ready * self._up // self._down) if ready > 0 else 0)

    def flush(self) -> PcmArray:
        """Emit the remaining output (the end of the signal filtered against silence) and reset."""
        total = -(-self._n_in * self._up // self._down)
        if total > self._n_out:
            need = (total - 1) * self._down // self._up + self._k + 1 - (self._buf_start + len(self._buf))
            if need > 0:
                self._buf = np.concatenate([self._buf, np.zeros(need, dtype=np.float64)])
        out = self._emit(total)
        self.reset()
        return out

    def _emit(self, n_end: int) -> PcmArray:
        if n_end <= self._n_out:
            return np.zeros(0, dtype=np.int16)
        parts = []
        for first in range(self._n_out, n_end, _BLOCK):
            n = np.arange(first, min(first + _BLOCK, n_end), dtype=np.int64)
            pos = n * self._down
            q, p = pos // self._up, pos % self._up
            windows = self._buf[(q - self._k - self._buf_start)[:, None] + self._taps]
            parts.append(np.einsum("ij,ij->i", windows, self._table[p]))
        self._n_out = n_end
        keep_from = n_end * self._down // self._up - self._k
        self._buf = self._buf[keep_from - self._buf_start :]
        self._buf_start = keep_from
        out: PcmArray = np.clip(np.rint(np.concatenate(parts)), -32768, 32767).astype(np.int16)
        return out


def resample(pcm: npt.NDArray[np.int16], src_hz: int, dst_hz: int) -> PcmArray:
    """Resample a whole int16 signal, mono ``(n,)`` or ``(n, channels)``, from ``src_hz`` to ``dst_hz``.

    Output has ``ceil(n * dst_hz / src_hz)`` samples, time-aligned with the input (the filter delay is
    compensated). See :class:`Resampler` for the filter. Thread-safe.
    """
    if pcm.dtype != np.int16 or pcm.ndim not in (1, 2):
        raise AudioFormatError("PCM samples must be int16 of shape (n,) or (n, channels).")
    if pcm.ndim == 2:
        return np.stack([resample(pcm[:, c], src_hz, dst_hz) for c in range(pcm.shape[1])], axis=1)
    r = Resampler(src_hz, dst_hz)
    if src_hz == dst_hz:
        return pcm.copy()
    return np.concatenate([r.process(pcm), r.flush()])
