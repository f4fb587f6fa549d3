"""RTP receive statistics of one call leg's audio stream (pjmedia's RTCP and jitter buffer counters).

Read on the worker's pjsua thread just before a stream is destroyed; ``voxdesk bench calls`` reports them.
"""

from __future__ import annotations

from typing import Any


def stream_statistics(stat: Any, call_id: str, leg: str) -> dict[str, Any]:
    """A JSON-ready summary of a pjsua2 ``StreamStat`` (packet counts; jitter and jitter-buffer delay in ms)."""
    rx, jb = stat.rtcp.rxStat, stat.jbuf
    return {
        "call_id": call_id, "leg": leg,
        "rx_packets": int(rx.pkt), "rx_lost": int(rx.loss), "rx_discarded": int(rx.discard),
        "rx_duplicates": int(rx.dup), "rx_reordered": int(rx.reorder),
        "jitter_ms_mean": int(rx.jitterUsec.mean) / 1000, "jitter_ms_max": int(rx.jitterUsec.max) / 1000,
        "jbuf_lost": int(jb.lost), "jbuf_discarded": int(jb.discard), "jbuf_empty": int(jb.empty),
        "jbuf_delay_ms_mean": int(jb.avgDelayMsec),
    }  # fmt: skip


__all__ = ["stream_statistics"]
