"""``voxdesk bench assist``: end of a customer's utterance (audio) → its suggestion painted in the agent's browser.

One run (CLI process, blocking; about a minute of set-up, then the calls):

1. a :class:`~voxdesk.benches.live_stack.LiveStack` — speech worker, SIP media worker(s), agent process, web
   server — with ``calls`` English assisted lines, each bridged to its own baresip softphone (an agent who
   listens), and one agent user per line (SIP user ``agent10i``) logged in to ``/assist`` in headless Chromium;
2. one sipp caller per line, calling as a different demo customer, playing a program of the library's English
   questions spoken by the bundled Piper voice (each question once per call, ``gap_ms`` of silence between them)
   as G.711 RTP; ``utterances`` questions in all, shared out between the calls;
3. for every card the browser painted (``requestAnimationFrame`` after it was inserted, epoch ms from
   ``performance.timeOrigin + performance.now()``), the latency from the end of the utterance it answers: the
   customer leg's first frame at the media port (wall clock, from the media worker's statistics) plus the
   utterance's ``end_ms`` (where the VAD heard the speech end);
4. the stages from the bus: end of speech → ``FinalTranscript`` on the bus (hangover, decoding) → ``Suggestion``
   on the bus (agent process) → painted (server websocket, browser).

The rate limit of suggestion cards is raised for the run (the program asks a question every few seconds, far
denser than a real conversation); everything else uses the configured settings.
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from core.audio import resample
from core.events import CallStarted, FinalTranscript, Suggestion
from core.logging import get_logger
from knowledge.library import Question
from telephony.peer_agent import BaresipAgent
from telephony.peers import BaresipCaller
from telephony.sipp import SippCaller, SippRun, playing_call_scenario
from voxdesk.benches.calls import BenchError, free_port_block, private_container
from voxdesk.benches.live_stack import LiveStack, StaffUser
from voxdesk.settings import Settings

__all__ = ["AssistBenchPlan", "run_assist_bench"]

log = get_logger(__name__)
RATE_HZ = 8000
_BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update"]  # fmt: skip


@dataclass(frozen=True)
class AssistBenchPlan:
    """``calls`` concurrent assisted calls asking ``utterances`` questions in all (ms for gaps)."""

    calls: int = 1
    utterances: int = 30
    gap_ms: int = 4000
    lead_ms: int = 2500
    chromium: Path = Path("/usr/bin/chromium")


@dataclass(frozen=True)
class _Spoken:
    question_id: str
    text: str
    start_ms: int
    end_ms: int


def bench_questions(questions: Sequence[Question]) -> list[Question]:
    """Active library questions with an answer script, in a stable order that alternates categories."""
    with_answer = sorted((q for q in questions if q.answer_script_id), key=lambda q: q.question_id)
    by_category: dict[str, list[Question]] = {}
    for q in with_answer:
        by_category.setdefault(q.category, []).append(q)
    ordered: list[Question] = []
    while any(by_category.values()):
        for cat in sorted(by_category):
            if by_category[cat]:
                ordered.append(by_category[cat].pop(0))
    return ordered


def _program(
    clips: Sequence[tuple[Question, npt.NDArray[np.int16]]], plan: AssistBenchPlan
) -> tuple[npt.NDArray[np.int16], list[_Spoken]]:
    parts = [np.zeros(RATE_HZ * plan.lead_ms // 1000, dtype=np.int16)]
    position = len(parts[0])
    spoken = []
    for question, pcm in clips:
        spoken.append(
            _Spoken(
                question.question_id,
                question.text_en,
                position * 1000 // RATE_HZ,
                (position + len(pcm)) * 1000 // RATE_HZ,
            )
        )
        gap = np.zeros(RATE_HZ * plan.gap_ms // 1000, dtype=np.int16)
        parts += [pcm, gap]
        position += len(pcm) + len(gap)
    return np.concatenate(parts).astype(np.int16), spoken


def _speak(texts: Sequence[str]) -> list[npt.NDArray[np.int16]]:
    from agent.tts import PiperVoice

    voice = PiperVoice.load()
    out = []
    for text in texts:
        clip = voice.synthesize(text)
        out.append(resample(clip.samples, clip.sample_rate, RATE_HZ).astype(np.int16))
    return out


def _pct(values: Sequence[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 1) if values else None


def run_assist_bench(
    settings: Settings, plan: AssistBenchPlan, *, config_file: Path | None = None, keep: bool = False
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Run the benchmark (see the module docstring); per-utterance rows and the summary. Blocking."""
    from playwright.sync_api import sync_playwright

    from telephony.pcap import g711_payload, write_rtp_pcap

    if plan.calls < 1 or plan.utterances < plan.calls:
        raise BenchError("need at least one call and one utterance per call")
    if not SippCaller.available() or not BaresipCaller.available():
        raise BenchError("needs sipp (apt-get install sip-tester) and baresip (apt-get install baresip-core)")
    if not plan.chromium.exists():
        raise BenchError(f"no Chromium at {plan.chromium} (apt-get install chromium)")
    work = Path(tempfile.mkdtemp(prefix="voxdesk-bench-assist-"))
    per_call = math.ceil(plan.utterances / plan.calls)
    agents = [BaresipAgent(work_dir=work, user=f"agent{101 + i}", hold_s=per_call * 12 + 60) for i in range(plan.calls)]
    lines = [
        {"name": f"bench-assist-{i}", "kind": "assisted", "number": f"9570{i}", "lang": "en",
         "skill_group": "cards", "agent_uri": a.uri}
        for i, a in enumerate(agents)
    ]  # fmt: skip
    users = [
        StaffUser(f"bench-agent{i}", f"bench-agent-{i}-pass", ("agent",), f"agent{101 + i}") for i in range(plan.calls)
    ]
    users.append(StaffUser("bench-super", "bench-super-pass", ("supervisor",)))
    overrides = {
        "VOXDESK_TELEPHONY_LINES": json.dumps(lines),
        "VOXDESK_ASSIST_MAX_PER_MINUTE": "600",
        "VOXDESK_ASSIST_REPEAT_AFTER_MS": "0",
    }
    media_workers = math.ceil(2 * plan.calls / max(1, settings.telephony.max_calls_per_worker))
    stack = LiveStack(settings, work, users=users, overrides=overrides, media_workers=media_workers,
                      config_file=config_file)  # fmt: skip
    callers: list[SippCaller] = []
    try:
        stack.start()

        container = private_container(settings, stack.env)
        try:
            questions = bench_questions(container.library.list())
            phones = [c.phones[0] for c in container.profiles.iter_all() if c.phones][: plan.calls]
        finally:
            container.close()
        if len(questions) < per_call:
            raise BenchError(f"the library has only {len(questions)} questions with answers; need {per_call}")
        chosen = [[questions[(i * per_call + j) % len(questions)] for j in range(per_call)] for i in range(plan.calls)]
        flat = sorted({q.question_id: q for qs in chosen for q in qs}.values(), key=lambda q: q.question_id)
        audio = dict(zip((q.question_id for q in flat), _speak([q.text_en for q in flat]), strict=True))
        programs = [_program([(q, audio[q.question_id]) for q in qs], plan) for qs in chosen]
        silent = work / "agent-silence.wav"
        _write_silence(silent)
        for agent in agents:
            agent.start(silent)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(plan.chromium), args=_BROWSER_ARGS)
            try:
                pages = [_open_panel(browser, stack.base_url, u) for u in users[: plan.calls]]
                slots = max(1, settings.telephony.max_calls_per_worker)
                for i, (pcm, _) in enumerate(programs):
                    pcap = work / f"call-{i}.pcap"
                    write_rtp_pcap(pcap, g711_payload(pcm, "pcmu"), codec="pcmu")
                    duration_ms = len(pcm) * 1000 // RATE_HZ
                    caller = SippCaller(
                        playing_call_scenario(pcap, duration_ms, caller=phones[i % len(phones)]),
                        work_dir=work,
                        name=f"caller-{i}",
                        target=f"127.0.0.1:{stack.sip_port + (2 * i) // slots}",
                        service=f"9570{i}",
                        calls=1,
                        sip_port=free_port_block(1),
                        media_port=free_port_block(4),
                        timeout_s=duration_ms / 1000 + 60,
                    )
                    caller.start()
                    callers.append(caller)
                    time.sleep(1.0)
                results: list[SippRun] = [c.wait() for c in callers]
                time.sleep(3.0)  # the last cards
                rendered = [p.evaluate("() => window.voxdeskPanel.rendered") for p in pages]
            finally:
                browser.close()
        media = stack.stop_media()
        speech = stack.stop_speech()
        assert stack.recorder is not None
        events = list(stack.recorder.events)
    finally:
        for caller in callers:
            caller.kill()
        for agent in agents:
            agent.stop()
        stack.close()
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
    callers_by_phone = {phones[i % len(phones)]: program for i, (_, program) in enumerate(programs)}
    rows, summary = analyse(callers_by_phone, rendered, media, events)
    summary.update(calls=plan.calls, media_workers=media_workers, callers_ok=all(r.ok for r in results))
    summary.update(speech_summary(speech))
    if keep:
        summary["work_dir"] = str(work)
    return rows, summary


def analyse(
    programs: dict[str, list[_Spoken]],
    rendered: Sequence[Sequence[dict[str, Any]]],
    media: Sequence[dict[str, Any]],
    events: Sequence[tuple[float, Any]],
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Per-utterance rows (latency and stages) and the summary (p50/p95 ms, n, missed, intent accuracy).

    ``programs``: caller number → what that caller said (each call is matched to its program by its
    ``CallStarted.caller``)."""
    timings = {(leg["call_id"], leg["leg"]): leg for w in media for leg in w.get("calls", [])}
    finals = {(e.call_id, e.end_ms): t for t, e in events if isinstance(e, FinalTranscript) and e.leg == "customer"}
    shown = {e.suggestion_id: (t, e) for t, e in events if isinstance(e, Suggestion)}
    rows: list[dict[str, Any]] = []
    for painted in (item for page in rendered for item in page):
        arrival, suggestion = shown.get(painted["suggestion_id"], (None, None))
        if suggestion is None or suggestion.end_ms is None:
            continue
        timing = timings.get((suggestion.call_id, "customer"))
        if timing is None or "first_frame_wall_ms" not in timing:
            continue
        eos = float(timing["first_frame_wall_ms"]) + suggestion.end_ms - int(timing.get("offset_ms", 0))
        final_at = finals.get((suggestion.call_id, suggestion.end_ms))
        rows.append({
            "call_id": suggestion.call_id,
            "question_id": suggestion.question_id,
            "end_ms": suggestion.end_ms,
            "latency_ms": round(float(painted["painted_ms"]) - eos, 1),
            "to_final_ms": round(final_at - eos, 1) if final_at else None,
            "to_suggestion_ms": round(arrival - final_at, 1) if final_at and arrival else None,
            "to_paint_ms": round(float(painted["painted_ms"]) - arrival, 1) if arrival else None,
        })  # fmt: skip
    spoken = [s for program in programs.values() for s in program]
    expected = _expected(programs, events)
    correct = sum(1 for r in rows if expected.get((r["call_id"], r["end_ms"])) == r["question_id"])
    latencies = [r["latency_ms"] for r in rows]
    summary = {
        "p50_ms": _pct(latencies, 50),
        "p95_ms": _pct(latencies, 95),
        "max_ms": round(max(latencies), 1) if latencies else None,
        "n": len(rows),
        "utterances": len(spoken),
        "missed": max(0, len(spoken) - len(rows)),
        "intent_accuracy": round(correct / len(rows), 4) if rows else None,
        "final_p50_ms": _pct(_stage(rows, "to_final_ms"), 50),
        "final_p95_ms": _pct(_stage(rows, "to_final_ms"), 95),
        "suggestion_p50_ms": _pct(_stage(rows, "to_suggestion_ms"), 50),
        "suggestion_p95_ms": _pct(_stage(rows, "to_suggestion_ms"), 95),
        "paint_p50_ms": _pct(_stage(rows, "to_paint_ms"), 50),
        "paint_p95_ms": _pct(_stage(rows, "to_paint_ms"), 95),
        "latencies_ms": sorted(latencies),
    }
    return rows, summary


def speech_summary(speech: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The speech workers' side: speculative finals used / wasted, final wait and decode p95 (ms), partials."""

    def total(key: str) -> int:
        return sum(int(w.get(key, 0)) for w in speech)

    def joined(key: str) -> list[float]:
        return [float(v) for w in speech for v in w.get(key, [])]

    return {
        "early_finals_used": total("early_finals_used"),
        "early_finals_wasted": total("early_finals_wasted"),
        "finals": total("finals"),
        "partials": total("partials"),
        "partials_skipped": total("partials_skipped"),
        "final_wait_p95_ms": _pct(joined("final_wait_ms"), 95),
        "final_decode_p95_ms": _pct(joined("final_decode_ms"), 95),
        "early_final_decode_p95_ms": _pct(joined("early_final_decode_ms"), 95),
        "partial_decode_p95_ms": _pct(joined("partial_decode_ms"), 95),
    }


def _stage(rows: Sequence[dict[str, Any]], key: str) -> list[float]:
    return [float(r[key]) for r in rows if r[key] is not None]


def _expected(programs: dict[str, list[_Spoken]], events: Sequence[tuple[float, Any]]) -> dict[tuple[str, int], str]:
    """(call_id, final end_ms) → the question spoken there: the clip of the call's program (found by its caller
    number) that overlaps the customer final most."""
    program_of = {
        e.call_id: programs[e.caller] for _, e in events if isinstance(e, CallStarted) and e.caller in programs
    }
    out: dict[tuple[str, int], str] = {}
    for _, e in events:
        if isinstance(e, FinalTranscript) and e.leg == "customer" and e.call_id in program_of:
            program = program_of[e.call_id]
            best = max(program, key=lambda s: min(s.end_ms, e.end_ms) - max(s.start_ms, e.start_ms))
            out[(e.call_id, e.end_ms)] = best.question_id
    return out


def _open_panel(browser: Any, base_url: str, user: StaffUser) -> Any:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(base_url + "/login")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", user.password)
    page.click("button[type=submit]")
    page.goto(base_url + "/assist?lang=en")
    page.wait_for_function(
        "window.voxdeskPanel && window.voxdeskPanel.socket && window.voxdeskPanel.socket.readyState === 1"
    )
    return page


def _write_silence(path: Path) -> None:
    from core.audio import AudioClip, write_audio

    write_audio(path, AudioClip(np.zeros(RATE_HZ, dtype=np.int16), RATE_HZ, 1), subtype="PCM_16")
