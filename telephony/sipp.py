"""sipp as a SIP test caller: scenario text and a process wrapper for calls that play a pcap of G.711 RTP.

sipp (Debian ``sip-tester``) runs a scenario XML for each call it places. :func:`playing_call_scenario` builds one
that sends an INVITE offering ``codec`` (PCMU or PCMA) plus RFC 2833 telephone events, waits for 200 OK, ACKs,
plays a pcap made by :mod:`telephony.pcap` (sipp paces the RTP by the pcap's timestamps, from a media port of its
own per call), pauses for the pcap's duration plus ``tail_ms``, then hangs up with BYE. :class:`SippCaller` runs
one sipp process placing ``calls`` such calls at once and reports sipp's outcome.

Nothing here reads the environment; the sipp binary, addresses and ports are arguments. Any thread.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from core.errors import InvalidInputError

__all__ = ["SippCaller", "SippRun", "dtmf_call_scenario", "playing_call_scenario"]

_RTPMAP = {"pcmu": (0, "PCMU/8000"), "pcma": (8, "PCMA/8000")}
_HEADERS = """\
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: sipp <sip:{caller}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: [service] <sip:[service]@[remote_ip]:[remote_port]>{to_tag}
      Call-ID: [call_id]
      CSeq: {cseq}
      Contact: sip:sipp@[local_ip]:[local_port]
      Max-Forwards: 70
"""


def _request(method: str, cseq: str, *, caller: str, to_tag: bool, body: str = "", retrans: bool = True) -> str:
    headers = _HEADERS.format(caller=caller, to_tag="[peer_tag_param]" if to_tag else "", cseq=cseq)
    content = "Content-Type: application/sdp\n      " if body else ""
    attrs = ' retrans="500"' if retrans else ""
    return (
        f"  <send{attrs}><![CDATA[\n      {method} sip:[service]@[remote_ip]:[remote_port] SIP/2.0\n{headers}"
        f"      {content}Content-Length: [len]\n\n{body}  ]]></send>\n"
    )


def playing_call_scenario(
    pcap: Path, duration_ms: int, *, codec: str = "pcmu", tail_ms: int = 500, caller: str = "+8613800000000"
) -> str:
    """A sipp scenario: INVITE (``codec`` + telephone-event), 200 OK, ACK, play ``pcap`` for ``duration_ms``
    (its length, ms), wait ``tail_ms`` more, BYE, 200 OK. ``caller`` is the From user part (the caller's number)."""
    if codec not in _RTPMAP:
        raise InvalidInputError("codec must be pcmu or pcma", codec=codec)
    if duration_ms <= 0 or tail_ms < 0:
        raise InvalidInputError("durations must be positive", duration_ms=duration_ms, tail_ms=tail_ms)
    payload_type, rtpmap = _RTPMAP[codec]
    sdp = (
        "      v=0\n      o=sipp 1 1 IN IP[local_ip_type] [local_ip]\n      s=-\n"
        "      c=IN IP[local_ip_type] [local_ip]\n      t=0 0\n"
        f"      m=audio [auto_media_port] RTP/AVP {payload_type} 101\n"
        f"      a=rtpmap:{payload_type} {rtpmap}\n      a=rtpmap:101 telephone-event/8000\n"
        "      a=fmtp:101 0-15\n      a=ptime:20\n"
    )
    invite = _request("INVITE", "1 INVITE", caller=caller, to_tag=False, body=sdp)
    ack = _request("ACK", "1 ACK", caller=caller, to_tag=True, retrans=False)
    bye = _request("BYE", "2 BYE", caller=caller, to_tag=True)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<scenario name="voxdesk-playing-call">\n'
        f"{invite}"
        '  <recv response="100" optional="true"/>\n  <recv response="180" optional="true"/>\n'
        '  <recv response="183" optional="true"/>\n  <recv response="200" rtd="true" crlf="true"/>\n'
        f"{ack}"
        f'  <nop><action><exec play_pcap_audio="{pcap}"/></action></nop>\n'
        f'  <pause milliseconds="{duration_ms + tail_ms}"/>\n'
        f'{bye}  <recv response="200" crlf="true"/>\n</scenario>\n'
    )


def dtmf_call_scenario(
    steps: list[tuple[int, str]], work_dir: Path, *, caller: str = "+8613800000000", far_end_hangs_up: bool = True
) -> str:
    """A sipp scenario that keys RFC 4733 (RFC 2833) DTMF: INVITE (PCMU + telephone-event 101), 200 OK, ACK, then
    for each ``(pause_ms, digits)`` step a pause and the digits as an RTP pcap written into ``work_dir``
    (:func:`telephony.pcap.write_dtmf_pcap`: a fresh event timestamp per key, so repeated digits count; Debian's own
    ``dtmf_2833_*.pcap`` files all carry the same timestamp, and a receiver drops a repeat as the same event).
    Finally it waits for the far end's BYE and answers 200 OK (``far_end_hangs_up``), or sends BYE itself."""
    from telephony.pcap import dtmf_packets, write_dtmf_pcap

    sdp = (
        "      v=0\n      o=sipp 1 1 IN IP[local_ip_type] [local_ip]\n      s=-\n"
        "      c=IN IP[local_ip_type] [local_ip]\n      t=0 0\n"
        "      m=audio [auto_media_port] RTP/AVP 0 101\n"
        "      a=rtpmap:0 PCMU/8000\n      a=rtpmap:101 telephone-event/8000\n      a=fmtp:101 0-15\n      a=ptime:20\n"
    )
    body = ""
    clock_ms, seq = 0, 1  # the RTP clock and sequence run on across the steps' pcaps
    for index, (pause_ms, digits) in enumerate(steps):
        pcap = work_dir / f"dtmf-{index}.pcap"
        clock_ms += pause_ms
        packets = dtmf_packets(digits, first_seq=seq, start_ms=clock_ms)
        length_ms = write_dtmf_pcap(pcap, packets)
        seq += len(packets)
        clock_ms += length_ms + 100
        body += f'  <pause milliseconds="{pause_ms}"/>\n'
        body += f'  <nop><action><exec play_pcap_audio="{pcap}"/></action></nop>\n'
        body += f'  <pause milliseconds="{length_ms + 100}"/>\n'
    if far_end_hangs_up:
        end = (
            '  <recv request="BYE"/>\n  <send><![CDATA[\n      SIP/2.0 200 OK\n      [last_Via:]\n      [last_From:]\n'
            "      [last_To:]\n      [last_Call-ID:]\n      [last_CSeq:]\n      Content-Length: 0\n\n  ]]></send>\n"
        )
    else:
        end = _request("BYE", "2 BYE", caller=caller, to_tag=True) + '  <recv response="200" crlf="true"/>\n'
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<scenario name="voxdesk-dtmf-call">\n'
        + _request("INVITE", "1 INVITE", caller=caller, to_tag=False, body=sdp)
        + '  <recv response="100" optional="true"/>\n  <recv response="180" optional="true"/>\n'
        + '  <recv response="200" rtd="true" crlf="true"/>\n'
        + _request("ACK", "1 ACK", caller=caller, to_tag=True, retrans=False)
        + body + end + "</scenario>\n"
    )  # fmt: skip


@dataclass(frozen=True)
class SippRun:
    """The outcome of one sipp process: its exit status (0: every call succeeded, 1: some failed), output tail."""

    exit_status: int
    output: str
    error_file: Path

    @property
    def ok(self) -> bool:
        return self.exit_status == 0


class SippCaller:
    """One sipp process placing ``calls`` concurrent calls of a scenario to ``target`` (``host:port``).

    ``start()`` launches it (non-blocking); ``wait()`` returns a :class:`SippRun`. Ports: SIP on ``sip_port``,
    media from ``media_port`` (sipp takes one pair of ports per call above it). Calls start ``rate`` per second
    (one every ``1000 / rate`` ms).
    """

    def __init__(
        self,
        scenario_xml: str,
        *,
        work_dir: Path,
        name: str,
        target: str,
        service: str,
        calls: int,
        sip_port: int,
        media_port: int,
        rate: float = 5.0,
        local_host: str = "127.0.0.1",
        timeout_s: float = 120.0,
        sipp: str = "/usr/bin/sipp",
    ) -> None:
        if calls < 1:
            raise InvalidInputError("sipp needs at least one call", calls=calls)
        self.work_dir = work_dir
        self.name = name
        self.scenario_path = work_dir / f"{name}.xml"
        self.error_file = work_dir / f"{name}.err"
        self.timeout_s = timeout_s
        self.argv = [
            sipp, "-sf", str(self.scenario_path), "-s", service, target, "-i", local_host,
            "-p", str(sip_port), "-mp", str(media_port), "-m", str(calls), "-l", str(calls),
            "-r", "1", "-rp", str(max(1, round(1000 / rate))), "-timeout", f"{int(timeout_s)}s",
            "-nostdin", "-nr", "-trace_err", "-error_file", str(self.error_file),
        ]  # fmt: skip
        self._scenario = scenario_xml
        self._process: subprocess.Popen[str] | None = None

    @staticmethod
    def available(sipp: str = "/usr/bin/sipp") -> bool:
        """Whether the sipp binary exists (``apt-get install sip-tester``)."""
        return shutil.which(sipp) is not None

    def start(self) -> None:
        """Write the scenario and launch sipp (returns at once)."""
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.scenario_path.write_text(self._scenario, encoding="utf-8")
        self._process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
            self.argv,
            cwd=self.work_dir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def wait(self, timeout_s: float | None = None) -> SippRun:
        """Wait for sipp to exit (killing it after ``timeout_s``, default the scenario timeout + 30 s)."""
        process = self._process
        if process is None:
            raise InvalidInputError("sipp was not started", name=self.name)
        try:
            output, _ = process.communicate(timeout=timeout_s if timeout_s is not None else self.timeout_s + 30)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
        return SippRun(process.returncode, (output or "")[-4000:], self.error_file)

    def kill(self) -> None:
        """Stop sipp at once, if it still runs."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()
