"""``voxdesk demo call``: place a real SIP call into the running server and print the stored transcript.

baresip (see :class:`telephony.peers.BaresipCaller`) dials a line of ``telephony.lines`` on
``telephony.sip_host:sip_port`` and plays a real speech clip: the first clip of the line's language in the shared
data manifest (``settings.shared_data/speech/manifest.jsonl``), or, when the shared data is absent, a sentence
synthesised with espeak-ng. Then the call store is polled (the same database the server writes) for the newest
call on that line since the dial, until it has ended and its final transcripts are in.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rich.console import Console
from rich.table import Table

from telephony.models import CallDetail
from telephony.peers import BaresipCaller
from voxdesk.settings import LineSettings, Settings

ESPEAK = "/usr/bin/espeak-ng"
SYNTH_SENTENCES = {
    "en": ("en-us", "Hello, I would like to check the balance of my credit card, please."),
    "zh": ("cmn-latn-pinyin", "ni3 hao3, wo3 xiang3 cha2 xun2 wo3 de5 xin4 yong4 ka3 zhang4 dan1."),
}
EXIT_NO_ANSWER = 3
EXIT_NO_TRANSCRIPT = 4
EXIT_BAD_INPUT = 2


class DemoCallError(Exception):
    """The demo call could not be placed or read back; ``code`` is the process exit status."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class DemoClip:
    """The audio a demo call plays, with its reference text when known."""

    path: Path
    lang: str
    reference: str | None
    origin: str


def find_line(settings: Settings, name: str) -> LineSettings:
    """The line called ``name`` (or whose number is ``name``) in ``telephony.lines``."""
    for line in settings.telephony.lines:
        if name in (line.name, line.number):
            return line
    known = ", ".join(line.name for line in settings.telephony.lines)
    raise DemoCallError(f"no line {name!r} in telephony.lines (known: {known})", EXIT_BAD_INPUT)


def manifest_clip(shared_data: Path, lang: str) -> DemoClip | None:
    """The first clip of ``lang`` in ``shared_data/speech/manifest.jsonl``, or ``None`` when absent."""
    manifest = shared_data / "speech" / "manifest.jsonl"
    if not manifest.is_file():
        return None
    for raw in manifest.read_text(encoding="utf-8").splitlines():
        if not raw.strip():
            continue
        item = json.loads(raw)
        path = manifest.parent / str(item["audio"])
        if item.get("lang") == lang and path.is_file():
            return DemoClip(path, lang, str(item.get("text", "")), f"shared data: {item['audio']}")
    return None


def synthesized_clip(lang: str, folder: Path) -> DemoClip:
    """A short banking sentence spoken by espeak-ng (``en-us`` or ``cmn-latn-pinyin``) into ``folder``."""
    voice, text = SYNTH_SENTENCES["zh" if lang == "zh" else "en"]
    if shutil.which(ESPEAK) is None:
        raise DemoCallError("no shared speech data and espeak-ng is not installed: pass --wav FILE", EXIT_BAD_INPUT)
    target = folder / f"espeak-{voice}.wav"
    argv = [ESPEAK, "-v", voice, "-w", str(target), text]
    subprocess.run(argv, check=True, capture_output=True, timeout=30)  # noqa: S603 - fixed argv, no shell
    reference = None if lang == "zh" else text
    return DemoClip(target, lang, reference, f"synthesised with espeak-ng -v {voice}")


def choose_clip(settings: Settings, lang: str, wav: Path | None, folder: Path) -> DemoClip:
    """``wav`` if given, else the first manifest clip of ``lang``, else an espeak-ng sentence."""
    if wav is not None:
        return DemoClip(wav, lang, None, f"file: {wav}")
    return manifest_clip(settings.shared_data, lang) or synthesized_clip(lang, folder)


def wait_for_transcript(
    settings: Settings, line: str, since: datetime, timeout_s: float, settle_s: float = 2.0
) -> CallDetail | None:
    """Poll the call store for the newest call on ``line`` (the line's name, as the call store keeps it) started
    at/after ``since`` until it has ended and has final transcripts that stopped changing for ``settle_s``;
    ``None`` after ``timeout_s``."""
    from voxdesk.container import build_container

    container = build_container(settings)
    try:
        deadline = time.monotonic() + timeout_s
        seen: tuple[int, ...] = ()
        stable_since = time.monotonic()
        while time.monotonic() < deadline:
            page = container.calls.list(0, 1, line=line, since=since)
            if page.items:
                detail = container.calls.detail(page.items[0].call_id)
                ids = tuple(u.id for u in detail.utterances)
                if ids != seen:
                    seen, stable_since = ids, time.monotonic()
                if detail.ended_at is not None and ids and time.monotonic() - stable_since >= settle_s:
                    return detail
            time.sleep(0.25)
        return None
    finally:
        container.close()


def run_demo_call(
    settings: Settings,
    line_name: str,
    *,
    wav: Path | None = None,
    host: str | None = None,
    port: int | None = None,
    transcript_timeout_s: float = 45.0,
    answer_timeout_s: float = 10.0,
    console: Console | None = None,
) -> CallDetail:
    """Place the call, wait for the transcript and print it; raises :class:`DemoCallError` on failure."""
    out = console or Console()
    line = find_line(settings, line_name)
    host = host or settings.telephony.sip_host
    port = port or settings.telephony.sip_port
    lang = "en" if line.lang == "en" else "zh"
    uri = f"sip:{line.number}@{host}:{port}"
    if not BaresipCaller.available():
        raise DemoCallError("baresip is not installed (apt-get install baresip-core)", EXIT_BAD_INPUT)
    with tempfile.TemporaryDirectory(prefix="voxdesk-demo-call-") as tmp:
        folder = Path(tmp)
        clip = choose_clip(settings, lang, wav, folder)
        if clip.origin.startswith("synthesised"):
            out.print(f"shared speech data not found under {settings.shared_data}; {clip.origin}", markup=False)
        out.print(f"calling {uri} (line {line.name}, {line.lang}) playing {clip.origin}", markup=False)
        since = datetime.now(UTC) - timedelta(seconds=2)
        caller = BaresipCaller(work_dir=folder, answer_timeout_s=answer_timeout_s)
        outcome = caller.call(uri, clip.path)
    if not outcome.answered:
        raise DemoCallError(
            f"no answer from {uri} (SIP {outcome.sip_code or '-'} {outcome.reason}): is `voxdesk serve` running "
            "and telephony.sip_host/sip_port right?",
            EXIT_NO_ANSWER,
        )
    out.print(f"call answered, hung up after {outcome.talk_s:.1f} s; waiting for the final transcripts")
    detail = wait_for_transcript(settings, line.name, since, transcript_timeout_s)
    if detail is None:
        raise DemoCallError(
            f"no final transcript stored within {transcript_timeout_s:.0f} s (are the speech workers running?)",
            EXIT_NO_TRANSCRIPT,
        )
    print_transcript(detail, clip.reference, out)
    return detail


def print_transcript(detail: CallDetail, reference: str | None, console: Console) -> None:
    """The call's final utterances as a table, then the reference text of the clip when known."""
    table = Table(title=f"call {detail.call_id} on {detail.line}: {len(detail.utterances)} final transcripts")
    for column in ("start", "end", "leg", "lang", "text"):
        table.add_column(column, overflow="fold")
    for u in detail.utterances:
        table.add_row(f"{u.start_ms / 1000:.1f}s", f"{u.end_ms / 1000:.1f}s", str(u.leg), u.lang or "", u.text)
    console.print(table)
    if reference:
        console.print(f"reference: {reference}", markup=False)
