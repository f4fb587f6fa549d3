"""The pure parts of ``voxdesk bench calls``: RTP pcaps, sipp scenarios, call programs and the figures."""

from __future__ import annotations

import struct
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from core.audio import AudioClip, ulaw_decode, write_audio
from core.errors import InvalidInputError
from core.events import CallEnded, CallStarted, FinalTranscript, SpeechStarted
from telephony.pcap import g711_payload, rtp_packets, write_rtp_pcap
from telephony.sipp import playing_call_scenario
from voxdesk.benches.call_audio import build_program
from voxdesk.benches.calls_cli import select_result
from voxdesk.benches.calls_report import analyse, holds
from voxdesk.evals.asr import ManifestEntry

pytestmark = pytest.mark.unit


def _tone(seconds: float, rate: int = 8000, hz: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (8000 * np.sin(2 * np.pi * hz * t)).astype(np.int16)


# ------------------------------------------------------------------------------------------------ pcap


def _read_pcap(path: Path) -> list[bytes]:
    data = path.read_bytes()
    magic, major, minor, _, _, snaplen, linktype = struct.unpack("<IHHiIII", data[:24])
    assert (magic, major, minor, linktype) == (0xA1B2C3D4, 2, 4, 1)
    frames, pos = [], 24
    while pos < len(data):
        _, _, incl, orig = struct.unpack("<IIII", data[pos : pos + 16])
        assert incl == orig <= snaplen
        frames.append(data[pos + 16 : pos + 16 + incl])
        pos += 16 + incl
    return frames


def _ones_complement_ok(data: bytes) -> bool:
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total == 0xFFFF


def test_pcap_holds_paced_rtp_with_valid_checksums(tmp_path: Path) -> None:
    pcm = _tone(1.01)  # 1010 ms: 51 packets, the last one padded with silence
    info = write_rtp_pcap(tmp_path / "a.pcap", g711_payload(pcm, "pcmu"), codec="pcmu")
    frames = _read_pcap(info.path)
    assert info.packets == len(frames) == 51 and info.duration_ms == 1020
    data = info.path.read_bytes()
    stamps = [struct.unpack("<II", data[24 + i * (16 + len(frames[0])) :][:8]) for i in range(3)]
    assert [s * 1_000_000 + us for s, us in stamps] == [0, 20_000, 40_000]  # 20 ms apart: sipp's pacing
    payload = bytearray()
    for i, frame in enumerate(frames):
        ip, udp = frame[14:34], frame[34:]
        assert frame[12:14] == b"\x08\x00" and _ones_complement_ok(ip)
        pseudo = ip[12:20] + struct.pack("!BBH", 0, 17, len(udp))
        assert _ones_complement_ok(pseudo + udp)
        rtp = udp[8:]
        version, marker_pt, seq, ts, _ = struct.unpack("!BBHII", rtp[:12])
        assert version == 0x80 and marker_pt & 0x7F == 0 and (marker_pt >> 7) == (1 if i == 0 else 0)
        assert (seq, ts) == (1 + i, 160 * i)
        payload += rtp[12:]
    decoded = ulaw_decode(bytes(payload[: len(pcm)]))
    assert np.corrcoef(decoded.astype(float), pcm.astype(float))[0, 1] > 0.99


def test_rtp_packets_refuse_bad_codec_and_ptime() -> None:
    with pytest.raises(InvalidInputError):
        rtp_packets(b"\x00" * 160, codec="g729")
    with pytest.raises(InvalidInputError):
        rtp_packets(b"\x00" * 160, ptime_ms=15)
    assert [p[1] & 0x7F for p in rtp_packets(b"\x00" * 320, codec="pcma")] == [8, 8]


# ------------------------------------------------------------------------------------------------ sipp


def test_playing_call_scenario_is_valid_sipp_xml(tmp_path: Path) -> None:
    xml = playing_call_scenario(tmp_path / "zh.pcap", 12_340, codec="pcma", tail_ms=700, caller="+8613912345678")
    root = ET.fromstring(xml)
    assert root.tag == "scenario"
    steps = [child.tag for child in root]
    assert steps[0] == "send" and steps[-1] == "recv" and "pause" in steps
    assert root.find("pause").get("milliseconds") == "13040"  # type: ignore[union-attr]
    assert root.find("nop/action/exec").get("play_pcap_audio") == str(tmp_path / "zh.pcap")  # type: ignore[union-attr]
    invite = root.find("send").text or ""  # type: ignore[union-attr]
    assert "RTP/AVP 8 101" in invite and "PCMA/8000" in invite and "+8613912345678" in invite
    assert [r.get("response") for r in root.findall("recv")] == ["100", "180", "183", "200", "200"]
    with pytest.raises(InvalidInputError):
        playing_call_scenario(tmp_path / "x.pcap", 1000, codec="opus")
    with pytest.raises(InvalidInputError):
        playing_call_scenario(tmp_path / "x.pcap", 0)


# ------------------------------------------------------------------------------------------------ programs


def _entries(tmp_path: Path) -> list[ManifestEntry]:
    out = []
    for i, (lang, text, seconds) in enumerate([("en", "hello there", 2.0), ("zh", "你好", 1.0), ("en", "bye", 1.0)]):
        path = tmp_path / f"clip{i}.wav"
        write_audio(path, AudioClip(_tone(seconds, 16000), 16000, 1))
        out.append(ManifestEntry(f"clip{i}", path, text, lang))  # type: ignore[arg-type]
    return out


def test_program_strings_clips_of_one_language_to_the_length(tmp_path: Path) -> None:
    program = build_program(_entries(tmp_path), "en", 9.0, gap_ms=1000, lead_ms=500, tail_ms=1500)
    ids = [c.clip_id for c in program.clips]
    assert ids == ["clip0", "clip2", "clip0", "clip2"]  # in order, repeated, English only
    assert program.clips[0].start_ms == 500 and program.clips[0].end_ms == 2500
    assert program.clips[1].start_ms == 3500  # after a 1000 ms gap
    assert program.duration_ms >= 9000 and program.duration_ms == program.clips[-1].end_ms + 1500
    assert program.reference == "hello there bye hello there bye"
    assert program.speech_ms == 6000
    info = program.write_pcap(tmp_path / "en.pcap")
    assert info.duration_ms == pytest.approx(program.duration_ms, abs=20)


def test_program_needs_a_clip_of_the_language(tmp_path: Path) -> None:
    entries = [e for e in _entries(tmp_path) if e.lang == "en"]
    with pytest.raises(InvalidInputError):
        build_program(entries, "zh", 10)


# ------------------------------------------------------------------------------------------------ figures


def _run(tmp_path: Path, *, gap_p99: float = 21.0, missing: int = 0, late_ms: float = 900.0) -> dict[str, object]:
    program = build_program(_entries(tmp_path), "en", 4.5)  # "hello there bye"
    first = 1_000_000.0
    events = [
        (first - 500, CallStarted(call_id="c1", direction="inbound", line="navigator-en", caller="+8613800000001")),
        (first - 400, CallStarted(call_id="other", direction="inbound", line="assisted", caller="+8613912345678")),
        (first + 700, SpeechStarted(call_id="c1", leg="customer", start_ms=510)),
        (
            first + 2500 + late_ms,
            FinalTranscript(call_id="c1", leg="customer", text="hello there", start_ms=510, end_ms=2500),
        ),
        (
            first + 4000 + late_ms,
            FinalTranscript(call_id="c1", leg="customer", text="by", start_ms=3500, end_ms=4000),
        ),
        (first + 9000, CallEnded(call_id="c1", duration_ms=6000, reason="normal", sip_code=200)),
    ]
    media = [
        {
            "calls": [
                {
                    "call_id": "c1",
                    "leg": "customer",
                    "offset_ms": 0,
                    "frames": 300,
                    "first_frame_wall_ms": first,
                    "gap_p99_ms": gap_p99,
                    "gap_max_ms": 30.0,
                    "missing_frames": missing,
                    "dropped_chunks": 0,
                },
            ],
            "rtp": [{"call_id": "c1", "leg": "customer", "rx_lost": 0, "jbuf_lost": 2, "jbuf_delay_ms_mean": 40}],
        }
    ]
    speech = [{"partials": 5, "partials_skipped": 1, "max_lag_ms": 120, "errors": 0}]
    rows, summary = analyse(
        concurrent=1, seconds=4.0, events=events, media=media, speech=speech,
        programs={"+8613800000001": program},
        cpu={"cpu_percent": 40.04, "machine_cpu_percent": 55.0}, callers_ok=True,
    )  # fmt: skip
    assert [r.call_id for r in rows] == ["c1"]  # the assisted call is not one of the benchmark's
    return summary


def test_analyse_measures_latency_from_end_of_speech_and_scores_text(tmp_path: Path) -> None:
    summary = _run(tmp_path)
    assert summary["finals"] == 2
    assert summary["final_latency_p50_ms"] == pytest.approx(900.0)
    assert summary["frame_gap_p99_ms"] == 21.0 and summary["lost_frames"] == 0
    assert summary["jbuf_concealed_frames"] == 2 and summary["jbuf_delay_ms_mean"] == 40.0
    assert summary["wer_en"] == pytest.approx(1 / 3, abs=1e-3)  # "hello there by" vs "hello there bye"
    assert summary["cer_zh"] is None
    assert summary["cpu_percent"] == 40.0 and summary["partials"] == 5
    assert summary["holds"] is True


@pytest.mark.parametrize(
    ("kwargs", "why"),
    [({"gap_p99": 45.0}, "frame gaps"), ({"missing": 3}, "lost frames"), ({"late_ms": 1600.0}, "latency")],
)
def test_a_run_that_misses_a_target_does_not_hold(tmp_path: Path, kwargs: dict[str, float], why: str) -> None:
    assert _run(tmp_path, **kwargs)["holds"] is False, why  # type: ignore[arg-type]


def test_holds_needs_every_call_completed() -> None:
    good = {"callers_ok": True, "calls_completed": 4, "concurrent": 4, "lost_frames": 0, "frame_gap_p99_ms": 22.0,
            "final_latency_p95_ms": 1200.0}  # fmt: skip
    assert holds(good)
    assert not holds({**good, "calls_completed": 3})
    assert not holds({**good, "callers_ok": False})
    assert not holds({**good, "final_latency_p95_ms": None})


def test_select_result_reports_the_largest_holding_run() -> None:
    runs = [{"concurrent": n, "holds": n <= 4, "final_latency_p95_ms": 300.0 * n} for n in (2, 4, 6)]
    result = select_result(runs)
    assert result["concurrent"] == 4 and result["max_holding"] == 4 and len(result["curve"]) == 3
    none = select_result([{"concurrent": 8, "holds": False}])
    assert none["concurrent"] == 8 and none["max_holding"] == 0


def test_fitted_encoder_window_frames() -> None:
    from asr.backends.faster_whisper import fitted_frames

    assert fitted_frames(230, 3000, 5.0) == 500  # 2.3 s of audio: the 5 s minimum
    assert fitted_frames(730, 3000, 5.0) == 900  # 7.3 s + 1 s margin, rounded up to whole seconds
    assert fitted_frames(2950, 3000, 5.0) == 3000  # never beyond the model's window
    assert fitted_frames(0, 3000, 0.0) == 100


def test_dtmf_packets_give_each_key_its_own_event_timestamp_and_end_packets(tmp_path: Path) -> None:
    import struct

    from telephony.pcap import dtmf_packets, write_dtmf_pcap

    packets = dtmf_packets("11#", tone_ms=100, gap_ms=200)
    assert len(packets) == 3 * (5 + 3)
    fields = [struct.unpack("!BBHI", rtp[:8]) + struct.unpack("!BBH", rtp[12:16]) for _, rtp in packets]
    starts = [f for f in fields if f[1] & 0x80]
    assert [f[1] & 0x7F for f in fields] == [101] * len(fields)
    assert [s[3] for s in starts] == [0, 2400, 4800]  # a new RTP timestamp per key: the repeated "1" counts
    assert [s[4] for s in starts] == [1, 1, 11]
    ends = [f for f in fields if f[5] & 0x80]
    assert len(ends) == 9 and {f[6] for f in ends} == {800}
    assert [f[2] for f in fields] == list(range(1, len(fields) + 1))
    assert [t for t, _ in packets] == sorted(t for t, _ in packets)
    assert write_dtmf_pcap(tmp_path / "d.pcap", packets) == packets[-1][0] + 20
    with pytest.raises(InvalidInputError):
        dtmf_packets("1x")
