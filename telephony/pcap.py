"""RTP capture files for SIP test callers: audio → a pcap of G.711 RTP packets that sipp's ``play_pcap_audio`` plays.

One packet per ``ptime_ms`` (20 ms: 160 samples at 8 kHz), each a complete Ethernet II / IPv4 / UDP / RTP frame
(libpcap format, link type Ethernet, microsecond timestamps): the IPv4 header checksum and the UDP checksum are
computed, RTP is version 2 with the marker bit on the first packet, a sequence number that increases by one and a
timestamp that increases by the samples of each packet. The pcap timestamps are exactly ``ptime_ms`` apart, which is
what sipp paces its sending by; sipp sends the RTP payload (header included) from its media port to the peer's, so
the addresses and ports written here are only placeholders.

Pure functions and byte building; no I/O except :func:`write_rtp_pcap` / :func:`wav_to_pcap`. Any thread.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from core.audio import alaw_encode, mix_to_mono, read_audio, resample, ulaw_encode
from core.errors import InvalidInputError

__all__ = ["PAYLOAD_TYPES", "RtpPcapInfo", "dtmf_packets", "g711_payload", "rtp_packets", "wav_to_pcap",
           "write_dtmf_pcap", "write_rtp_pcap", "write_timed_pcap"]  # fmt: skip

DTMF_PAYLOAD_TYPE = 101
"""The dynamic payload type Voxdesk's test callers offer for ``telephone-event/8000`` (RFC 4733)."""
_DTMF_EVENTS = {**{str(d): d for d in range(10)}, "*": 10, "#": 11, "A": 12, "B": 13, "C": 14, "D": 15}

RATE_HZ = 8_000
PAYLOAD_TYPES = {"pcmu": 0, "pcma": 8}
"""Static RTP payload types of G.711 μ-law and A-law (RFC 3551)."""
_PCAP_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)  # µs timestamps, LINKTYPE_ETHERNET
_ETH = bytes.fromhex("020000000002020000000001") + struct.pack("!H", 0x0800)  # locally administered MACs, IPv4
_SILENCE = {"pcmu": 0xFF, "pcma": 0xD5}


@dataclass(frozen=True)
class RtpPcapInfo:
    """What was written: ``packets`` RTP packets of ``ptime_ms`` each (``duration_ms`` in all)."""

    path: Path
    packets: int
    ptime_ms: int
    payload_type: int

    @property
    def duration_ms(self) -> int:
        return self.packets * self.ptime_ms


def _checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of ``data``."""
    if len(data) % 2:
        data += b"\x00"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _udp_ip(payload: bytes, ident: int, src: tuple[str, int], dst: tuple[str, int]) -> bytes:
    src_ip, dst_ip = bytes(map(int, src[0].split("."))), bytes(map(int, dst[0].split(".")))
    udp_len = 8 + len(payload)
    pseudo = src_ip + dst_ip + struct.pack("!BBH", 0, 17, udp_len)
    udp_sum = _checksum(pseudo + struct.pack("!HHHH", src[1], dst[1], udp_len, 0) + payload) or 0xFFFF
    udp = struct.pack("!HHHH", src[1], dst[1], udp_len, udp_sum) + payload
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0xB8, 20 + udp_len, ident & 0xFFFF, 0x4000, 64, 17, 0, src_ip, dst_ip)
    header = header[:10] + struct.pack("!H", _checksum(header)) + header[12:]  # DSCP EF: voice
    return header + udp


def g711_payload(pcm8k: npt.NDArray[np.int16], codec: str = "pcmu") -> bytes:
    """8 kHz mono PCM16 → G.711 bytes (one byte per sample) in ``codec`` (``pcmu`` or ``pcma``)."""
    if codec not in PAYLOAD_TYPES:
        raise InvalidInputError("codec must be pcmu or pcma", codec=codec)
    return ulaw_encode(pcm8k) if codec == "pcmu" else alaw_encode(pcm8k)


def rtp_packets(
    payload: bytes,
    *,
    codec: str = "pcmu",
    ptime_ms: int = 20,
    ssrc: int = 0x56F0_0001,
    first_seq: int = 1,
    first_timestamp: int = 0,
) -> list[bytes]:
    """Split G.711 ``payload`` into RTP packets of ``ptime_ms`` (the last one padded with codec silence)."""
    if codec not in PAYLOAD_TYPES:
        raise InvalidInputError("codec must be pcmu or pcma", codec=codec)
    if ptime_ms <= 0 or ptime_ms % 10:
        raise InvalidInputError("ptime must be a positive multiple of 10 ms", ptime_ms=ptime_ms)
    samples = RATE_HZ * ptime_ms // 1000
    if len(payload) % samples:
        payload += bytes([_SILENCE[codec]]) * (samples - len(payload) % samples)
    packets = []
    for i in range(len(payload) // samples):
        marker = 0x80 if i == 0 else 0
        header = struct.pack(
            "!BBHII",
            0x80,
            marker | PAYLOAD_TYPES[codec],
            (first_seq + i) & 0xFFFF,
            (first_timestamp + i * samples) & 0xFFFF_FFFF,
            ssrc,
        )
        packets.append(header + payload[i * samples : (i + 1) * samples])
    return packets


def write_rtp_pcap(
    path: Path,
    payload: bytes,
    *,
    codec: str = "pcmu",
    ptime_ms: int = 20,
    src: tuple[str, int] = ("127.0.0.1", 6000),
    dst: tuple[str, int] = ("127.0.0.1", 7000),
    ssrc: int = 0x56F0_0001,
) -> RtpPcapInfo:
    """Write G.711 ``payload`` as a pcap of RTP packets paced ``ptime_ms`` apart (see the module docstring)."""
    packets = rtp_packets(payload, codec=codec, ptime_ms=ptime_ms, ssrc=ssrc)
    write_timed_pcap(path, [(i * ptime_ms * 1000, rtp) for i, rtp in enumerate(packets)], src=src, dst=dst)
    return RtpPcapInfo(path, len(packets), ptime_ms, PAYLOAD_TYPES[codec])


def write_timed_pcap(
    path: Path,
    packets: list[tuple[int, bytes]],
    *,
    src: tuple[str, int] = ("127.0.0.1", 6000),
    dst: tuple[str, int] = ("127.0.0.1", 7000),
) -> None:
    """Write RTP ``packets`` as ``(pcap time µs, RTP bytes)`` into a pcap (Ethernet / IPv4 / UDP frames); sipp
    sends each at its time."""
    out = bytearray(_PCAP_HEADER)
    for i, (usec, rtp) in enumerate(packets):
        frame = _ETH + _udp_ip(rtp, i, src, dst)
        out += struct.pack("<IIII", usec // 1_000_000, usec % 1_000_000, len(frame), len(frame)) + frame
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(out))


def wav_to_pcap(wav: Path, path: Path, *, codec: str = "pcmu", ptime_ms: int = 20) -> RtpPcapInfo:
    """Any audio file soundfile reads (channels mixed, any rate) → 8 kHz G.711 RTP pcap at ``path``."""
    clip = read_audio(wav)
    samples = mix_to_mono(clip.samples) if clip.channels > 1 else clip.samples
    pcm8k = resample(samples, clip.sample_rate, RATE_HZ) if clip.sample_rate != RATE_HZ else samples
    return write_rtp_pcap(path, g711_payload(pcm8k, codec), codec=codec, ptime_ms=ptime_ms)


def dtmf_packets(
    digits: str,
    *,
    tone_ms: int = 100,
    gap_ms: int = 200,
    ssrc: int = 0x56F0_0101,
    first_seq: int = 1,
    start_ms: int = 0,
) -> list[tuple[int, bytes]]:
    """RFC 4733 telephone-event RTP packets for ``digits`` as ``(send time ms, packet)``: per digit a new event
    (marker bit, its own RTP timestamp, so repeated digits stay distinct) every 20 ms for ``tone_ms``, the end
    packet three times, then ``gap_ms`` of nothing before the next digit. Several pcaps played one after another
    in a call must continue each other: ``first_seq`` and ``start_ms`` (the RTP clock, ms since the first) carry
    on where the previous one stopped, or the receiver drops the later packets as old ones."""
    out: list[tuple[int, bytes]] = []
    seq, at_ms = first_seq, start_ms
    for digit in digits:
        if digit not in _DTMF_EVENTS:
            raise InvalidInputError("not a DTMF key", digit=digit)
        timestamp = at_ms * RATE_HZ // 1000
        steps = max(1, tone_ms // 20)
        for i in range(steps + 3):
            end = i >= steps
            duration = min(i + 1, steps) * 160
            payload = struct.pack("!BBH", _DTMF_EVENTS[digit], (0x80 if end else 0) | 10, duration)
            header = struct.pack("!BBHII", 0x80, (0x80 if i == 0 else 0) | DTMF_PAYLOAD_TYPE, seq & 0xFFFF,
                                 timestamp & 0xFFFF_FFFF, ssrc)  # fmt: skip
            out.append((at_ms + 20 * min(i, steps), header + payload))
            seq += 1
        at_ms += tone_ms + gap_ms
    return out


def write_dtmf_pcap(path: Path, packets: list[tuple[int, bytes]]) -> int:
    """Write :func:`dtmf_packets` as a pcap sipp's ``play_pcap_audio`` plays, its times counted from the first
    packet's; returns its length (ms)."""
    if not packets:
        raise InvalidInputError("no DTMF packets to write")
    start_ms = packets[0][0]
    # one µs more per packet keeps the repeated end packets of a key strictly in order
    write_timed_pcap(path, [((at_ms - start_ms) * 1000 + i, rtp) for i, (at_ms, rtp) in enumerate(packets)])
    return packets[-1][0] - start_ms + 20
