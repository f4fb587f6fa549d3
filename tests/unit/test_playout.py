"""Playout: segment order, pause/resume/stop semantics, non-interruptible segments, events; the play channel."""

from __future__ import annotations

import time

import pytest
import zmq

from core.events import BotAudio
from core.media import PlayAudio, PlayControl, PlayMessage, encode_play
from telephony.play_receiver import PlayReceiver
from telephony.playout import Playout

FRAME = 320  # 20 ms of L16 at 8 kHz


def _frames(value: int, count: int) -> bytes:
    return bytes([value]) * (FRAME * count)


class _Clock:
    def __init__(self) -> None:
        self.ms = 1_000.0

    def __call__(self) -> float:
        return self.ms


def _playout() -> tuple[Playout, list[BotAudio], _Clock]:
    events: list[BotAudio] = []
    clock = _Clock()
    return Playout("call-1", FRAME, events.append, wall_ms=clock), events, clock


def _play(playout: Playout, ticks: int, clock: _Clock) -> list[int]:
    """The first byte of each frame played over ``ticks`` ticks (-1 for silence)."""
    out = []
    for _ in range(ticks):
        clock.ms += 20
        data = playout.next_frame()
        out.append(data[0] if data else -1)
    return out


def test_segments_play_in_order_back_to_back_with_events() -> None:
    playout, events, clock = _playout()
    playout.add(1, _frames(1, 2), last=True)
    playout.add(2, _frames(2, 1) + b"\x02" * 100, last=True)  # a short tail is padded to a whole frame
    assert _play(playout, 5, clock) == [1, 1, 2, 2, -1]
    assert [(e.segment, e.state, e.played_ms) for e in events] == [
        (1, "started", 0), (1, "completed", 40), (2, "started", 0), (2, "completed", 40),
    ]  # fmt: skip
    assert events[0].at_ms == 1_020.0 and events[2].at_ms == 1_060.0  # no gap tick between the two
    assert playout.drained()


def test_segment_waiting_for_synthesis_plays_silence_then_goes_on() -> None:
    playout, events, clock = _playout()
    playout.add(1, _frames(1, 1))
    assert _play(playout, 3, clock) == [1, -1, -1]
    assert playout.underruns == 2 and not playout.drained()
    playout.add(1, _frames(1, 1), last=True)
    assert _play(playout, 2, clock) == [1, -1]
    assert [e.state for e in events] == ["started", "completed"]


def test_pause_holds_and_resume_continues_where_it_stopped() -> None:
    playout, events, clock = _playout()
    playout.add(1, bytes(range(1, 5)) * (FRAME // 4) + _frames(9, 2), last=True)
    assert _play(playout, 1, clock) == [1]
    playout.control("pause")
    assert _play(playout, 3, clock) == [-1, -1, -1]
    playout.control("resume")
    assert _play(playout, 3, clock) == [9, 9, -1]
    assert [(e.state, e.played_ms) for e in events] == [
        ("started", 0), ("paused", 20), ("resumed", 20), ("completed", 60),
    ]  # fmt: skip


def test_stop_drops_interruptible_segments_and_their_late_chunks() -> None:
    playout, events, clock = _playout()
    playout.add(1, _frames(1, 3), last=True)
    playout.add(2, _frames(2, 3))
    _play(playout, 1, clock)
    playout.control("stop")
    playout.add(2, _frames(2, 3), last=True)  # late chunk of a dropped segment
    assert _play(playout, 2, clock) == [-1, -1]
    assert [(e.segment, e.state) for e in events] == [(1, "started"), (1, "stopped"), (2, "stopped")]
    assert playout.drained()


def test_non_interruptible_segment_ignores_pause_and_stop() -> None:
    playout, events, clock = _playout()
    playout.add(0, _frames(7, 2), interruptible=False, last=True)
    playout.add(1, _frames(1, 1), last=True)
    playout.control("pause")
    playout.control("stop")
    assert _play(playout, 3, clock) == [7, 7, -1]
    assert [(e.segment, e.state) for e in events] == [(1, "stopped"), (0, "started"), (0, "completed")]


def test_close_drops_everything() -> None:
    playout, events, clock = _playout()
    playout.add(0, _frames(7, 2), interruptible=False, last=True)
    _play(playout, 1, clock)
    playout.close()
    playout.add(0, _frames(7, 2), interruptible=False, last=True)
    assert _play(playout, 2, clock) == [-1, -1]
    assert events[-1].state == "stopped" and playout.drained()


def test_play_receiver_delivers_decoded_messages_and_survives_garbage(tmp_path: object) -> None:
    got: list[PlayMessage] = []
    receiver = PlayReceiver("tcp://127.0.0.1:*", got.append)
    receiver.start()
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PUSH)
    try:
        sock.connect(receiver.endpoint)
        sock.send_multipart([b"X", b"garbage"])
        sock.send_multipart(encode_play(PlayAudio("c", 3, b"\x00\x00" * 160, 8000, interruptible=False, last=True)))
        sock.send_multipart(encode_play(PlayControl("c", "pause")))
        deadline = time.monotonic() + 5
        while len(got) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        sock.close(linger=0)
        ctx.term()
        receiver.stop()
    assert got == [PlayAudio("c", 3, b"\x00\x00" * 160, 8000, False, True), PlayControl("c", "pause")]
    assert receiver.malformed == 1 and receiver.received == 3


@pytest.mark.parametrize(
    "frames",
    [
        [b"C", b'{"call_id": "c", "action": "explode"}'],
        [b"C", b"{}"],
        [b"P", b"\x00", b""],
        [b"P", b"x" * 9 + b"c", b"\x00"],
    ],
)
def test_malformed_play_messages_are_refused(frames: list[bytes]) -> None:
    from core.errors import InvalidInputError
    from core.media import decode_play

    with pytest.raises(InvalidInputError):
        decode_play(frames)
