"""sipp as a SIP callee for outbound-call tests and ``voxdesk bench dialer``: scenario text and a process wrapper.

:func:`callee_scenario` builds a UAS scenario for one way a callee behaves:

* ``answer``: 180 Ringing, ``ring_ms`` later 200 OK (PCMU), plays ``pcap`` (G.711 RTP, e.g. the speech sipp
  ships) for ``hold_ms`` and hangs up with BYE; a BYE from our side first is answered too;
* ``silent``: answers and sends no audio; waits for our BYE (at most ``hold_ms``, then hangs up itself);
* ``busy`` (486 Busy Here), ``unavailable`` (480 Temporarily Unavailable), ``declined`` (603 Decline);
* ``ring``: 180 Ringing and never answers: our ring timer must CANCEL (answered with 200 and 487).

:class:`SippCallee` runs one sipp process listening on ``host:port`` with such a scenario for as long as it is
needed (``-m`` calls at most), with a statistics file whose last line counts what sipp saw. Nothing reads the
environment; any thread.
"""

from __future__ import annotations

import csv
import shutil
import subprocess
from pathlib import Path
from typing import Literal

from core.errors import InvalidInputError

__all__ = ["CalleeBehaviour", "SippCallee", "callee_scenario"]

CalleeBehaviour = Literal["answer", "silent", "busy", "unavailable", "declined", "ring"]
_CODECS = {"pcmu": (0, "PCMU"), "pcma": (8, "PCMA")}
_REJECT = {"busy": "486 Busy Here", "unavailable": "480 Temporarily Unavailable", "declined": "603 Decline"}

_CAPTURE = {
    "caller": '<ereg regexp=".*" search_in="hdr" header="From:" assign_to="caller"/>',
    "callee": '<ereg regexp=".*" search_in="hdr" header="To:" assign_to="callee"/>',
    "contact": '<ereg regexp="sip:[^>;]*" search_in="hdr" header="Contact:" assign_to="contact"/>',
    "invite_cseq": '<ereg regexp=".*" search_in="hdr" header="CSeq:" assign_to="invite_cseq"/>',
}


def _recv_invite(*captured: str) -> str:
    """Receive the INVITE, keeping the headers the scenario needs later (sipp refuses unused variables)."""
    if not captured:
        return '  <recv request="INVITE" crlf="true"/>\n'
    actions = "".join(f"      {_CAPTURE[name]}\n" for name in captured)
    return f'  <recv request="INVITE" crlf="true">\n    <action>\n{actions}    </action>\n  </recv>\n'


def _reply(status: str, *, sdp: bool = False, retrans: bool = False, codec: str = "pcma") -> str:
    pt, name = _CODECS[codec]
    body = (
        "\n      v=0\n      o=callee 1 1 IN IP[local_ip_type] [local_ip]\n      s=-\n"
        f"      c=IN IP[media_ip_type] [media_ip]\n      t=0 0\n      m=audio [media_port] RTP/AVP {pt} 101\n"
        f"      a=rtpmap:{pt} {name}/8000\n"
        "      a=rtpmap:101 telephone-event/8000\n      a=ptime:20\n"
    )
    content = "Content-Type: application/sdp\n      Content-Length: [len]\n" + body if sdp else "Content-Length: 0\n"
    attrs = ' retrans="500"' if retrans else ""
    return f"""  <send{attrs}><![CDATA[
      SIP/2.0 {status}
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:callee@[local_ip]:[local_port];transport=[transport]>
      {content}  ]]></send>
"""


_BYE = """  <send retrans="500"><![CDATA[
      BYE [$contact] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: [$callee];tag=[pid]SIPpTag01[call_number]
      To: [$caller]
      [last_Call-ID:]
      CSeq: 2 BYE
      Contact: <sip:callee@[local_ip]:[local_port];transport=[transport]>
      Max-Forwards: 70
      Content-Length: 0
  ]]></send>
  <recv response="200" crlf="true"/>
"""

_THEIR_BYE = """  <recv request="BYE"/>
"""
_OK_TO_BYE = """  <send><![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0
  ]]></send>
"""


def callee_scenario(
    behaviour: CalleeBehaviour,
    *,
    pcap: Path | None = None,
    ring_ms: int = 500,
    hold_ms: int = 3000,
    codec: str = "pcma",
) -> str:
    """The UAS scenario XML for ``behaviour`` (see the module docstring); ``pcap`` is played by ``answer`` and
    must carry ``codec`` (``pcma``, like the pcaps sipp ships and :mod:`telephony.pcap` writes, or ``pcmu``)."""
    if codec not in _CODECS:
        raise InvalidInputError("codec must be pcma or pcmu", codec=codec)
    if ring_ms < 0 or hold_ms <= 0:
        raise InvalidInputError("ring_ms must be ≥ 0 and hold_ms > 0", ring_ms=ring_ms, hold_ms=hold_ms)
    parts: list[str] = []
    if behaviour in _REJECT:
        parts += [_recv_invite(), _reply(_REJECT[behaviour]), '  <recv request="ACK" crlf="true"/>\n']
    elif behaviour == "ring":
        parts += [
            _recv_invite("invite_cseq"),
            _reply("180 Ringing"),
            '  <recv request="CANCEL"/>\n',
            _OK_TO_BYE,
            _reply("487 Request Terminated").replace("[last_CSeq:]", "CSeq: [$invite_cseq]"),
            '  <recv request="ACK" crlf="true"/>\n',
        ]
    elif behaviour in ("answer", "silent"):
        if behaviour == "answer" and pcap is None:
            raise InvalidInputError("an answering callee needs a pcap to play")
        parts += [_recv_invite("caller", "callee", "contact"), _reply("180 Ringing")]
        if ring_ms:
            parts.append(f'  <pause milliseconds="{ring_ms}"/>\n')
        parts += [_reply("200 OK", sdp=True, retrans=True, codec=codec)]
        parts.append('  <recv request="ACK" rtd="true" crlf="true"/>\n')
        if behaviour == "answer":
            parts.append(f'  <nop><action><exec play_pcap_audio="{pcap}"/></action></nop>\n')
        # Either side may hang up first: wait for their BYE for hold_ms, else send ours.
        parts.append(f'  <recv request="BYE" timeout="{hold_ms}" ontimeout="hangup"/>\n')
        parts += [_OK_TO_BYE, '  <nop next="done"/>\n', '  <label id="hangup"/>\n', _BYE, '  <label id="done"/>\n']
    else:
        raise InvalidInputError("unknown callee behaviour", behaviour=behaviour)
    body = "".join(parts)
    return f'<?xml version="1.0"?>\n<scenario name="callee-{behaviour}">\n{body}</scenario>\n'


class SippCallee:
    """One sipp process answering calls on ``host:port`` with ``scenario`` (XML text) in folder ``work_dir``.

    ``max_calls`` ends sipp after that many calls; ``rtp_port`` is sipp's media port (each call uses it and the
    next ones). :meth:`stop` ends it and :meth:`counts` reads sipp's statistics (successful/failed calls).
    """

    def __init__(
        self,
        scenario: str,
        *,
        work_dir: Path,
        host: str = "127.0.0.1",
        port: int,
        rtp_port: int,
        max_calls: int = 100_000,
        max_concurrent: int = 256,
        sipp: str = "/usr/bin/sipp",
        name: str = "callee",
    ) -> None:
        self.scenario_path = work_dir / f"{name}.xml"
        self.stats_path = work_dir / f"{name}-stats.csv"
        self.log_path = work_dir / f"{name}.log"
        work_dir.mkdir(parents=True, exist_ok=True)
        self.scenario_path.write_text(scenario)
        self.uri_host = f"{host}:{port}"
        self._argv = [
            sipp, "-sf", str(self.scenario_path), "-i", host, "-p", str(port), "-mi", host, "-mp", str(rtp_port),
            "-m", str(max_calls), "-l", str(max_concurrent), "-nostdin", "-trace_stat",
            "-stf", str(self.stats_path), "-fd", "1", "-trace_err", "-error_file", str(work_dir / f"{name}-err.log"),
        ]  # fmt: skip
        self._sipp = sipp
        self._process: subprocess.Popen[bytes] | None = None

    @staticmethod
    def available(sipp: str = "/usr/bin/sipp") -> bool:
        """Whether the sipp binary exists."""
        return shutil.which(sipp) is not None

    def start(self) -> None:
        """Start sipp (it listens at once)."""
        with self.log_path.open("wb") as log_file:
            self._process = subprocess.Popen(  # noqa: S603 - our own argv
                self._argv, stdout=log_file, stderr=subprocess.STDOUT, cwd=self.scenario_path.parent
            )

    def running(self) -> bool:
        """Whether the process is alive."""
        return self._process is not None and self._process.poll() is None

    def stop(self, timeout_s: float = 5.0) -> int | None:
        """End sipp (SIGTERM, then SIGKILL); its exit status."""
        process = self._process
        if process is None:
            return None
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return process.returncode

    def counts(self) -> dict[str, int]:
        """The last statistics row: ``total``, ``successful`` and ``failed`` calls (cumulated), ``{}`` without one."""
        if not self.stats_path.is_file():
            return {}
        rows = list(csv.reader(self.stats_path.read_text().splitlines(), delimiter=";"))
        if len(rows) < 2:
            return {}
        header, last = rows[0], rows[-1]
        value = dict(zip(header, last, strict=False))
        names = {"total": "TotalCallCreated", "successful": "SuccessfulCall(C)", "failed": "FailedCall(C)"}
        return {key: int(value.get(col, "0") or 0) for key, col in names.items()}
