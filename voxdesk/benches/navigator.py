"""``voxdesk bench navigator``: scripted callers talk to the voice navigator over real SIP calls.

One run (CLI process, blocking):

1. a :class:`~voxdesk.benches.live_stack.LiveStack` (speech worker, SIP media worker(s), agent process with the
   navigator, web server) with one English navigator line, the prompt cache shared with the configured one;
2. the calls of the script (:mod:`voxdesk.benches.navigator_script`), ``concurrent`` at a time, each from a
   :class:`telephony.peer_scripted.ScriptedCaller` (baresip): calls marked ``known`` dial from a demo customer's
   phone number and answer identity checks with that customer's card digits and date of birth. Each caller turn
   (Piper speech) is spoken once the bot has been quiet for ``quiet_ms`` after its last audio;
3. per turn, caller end of speech → first bot audio packet with its stages (:mod:`voxdesk.benches.navigator_timing`),
   per request turn whether the navigator recognised the scripted question (``IntentDetected``), per call whether
   it was handed to a human (``NavigatorHandoff``): containment = calls resolved without a transfer.
"""

from __future__ import annotations

import json
import math
import queue
import shutil
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from core.events import CallEnded, CallStarted, Event, IntentDetected, NavigatorHandoff
from core.logging import get_logger
from telephony.peer_scripted import ScriptedCaller
from telephony.peers import BaresipCaller
from voxdesk.benches.calls import BenchError, private_container
from voxdesk.benches.live_stack import LiveStack
from voxdesk.benches.navigator_script import SCRIPT, RenderedTurn, ScriptCall, TurnVoice, fill, load_script
from voxdesk.benches.navigator_timing import TurnClock, TurnTiming, bot_quiet, frame_rms, time_turns
from voxdesk.settings import Settings

__all__ = ["NavigatorBenchPlan", "run_navigator_bench"]

log = get_logger(__name__)
NUMBER = "95501"


@dataclass(frozen=True)
class NavigatorBenchPlan:
    """``calls``: how many scripted calls to run (the first ones; ``None`` = all), ``concurrent`` at a time."""

    calls: int | None = None
    concurrent: int = 2
    script: Path = SCRIPT
    quiet_ms: int = 1000
    """The bot counts as done speaking after this long without audio (ms)."""
    turn_timeout_s: float = 120.0


@dataclass
class _CallRun:
    script: ScriptCall
    number: str
    turns: list[TurnClock]
    call_id: str | None = None
    error: str | None = None


class _Bus:
    """The recorder's events, per call, with waits (the driver threads read; the recorder thread appends)."""

    def __init__(self, stack: LiveStack) -> None:
        assert stack.recorder is not None
        self._events = stack.recorder.events

    def call_id(self, number: str, timeout_s: float = 10.0) -> str | None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for _, e in list(self._events):
                if isinstance(e, CallStarted) and e.caller == number:
                    return str(e.call_id)
            time.sleep(0.05)
        return None

    def of(self, call_id: str) -> list[Event]:
        return [e for _, e in list(self._events) if getattr(e, "call_id", None) == call_id]

    def ended(self, call_id: str) -> bool:
        return any(isinstance(e, CallEnded) for e in self.of(call_id))

    def wait_quiet(self, call_id: str, since_ms: float, quiet_ms: int, timeout_s: float) -> bool:
        """Until the bot started speaking after ``since_ms`` and has then been silent for ``quiet_ms`` (or the
        call ended); False on timeout."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if bot_quiet(self.of(call_id), since_ms, quiet_ms, time.time() * 1000):
                return True
            time.sleep(0.05)
        return False


def run_navigator_bench(
    settings: Settings, plan: NavigatorBenchPlan, *, config_file: Path | None = None, keep: bool = False
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Run the benchmark (see the module docstring); per-turn rows and the summary. Blocking."""
    if not BaresipCaller.available():
        raise BenchError("needs baresip (apt-get install baresip-core)")
    script = load_script(plan.script)[: plan.calls]
    work = Path(tempfile.mkdtemp(prefix="voxdesk-bench-navigator-"))
    lines = [{"name": "bench-navigator", "kind": "navigator", "number": NUMBER, "lang": "en"}]
    overrides = {
        "VOXDESK_TELEPHONY_LINES": json.dumps(lines),
        "VOXDESK_NAVIGATOR_PROMPT_CACHE_DIR": str(settings.navigator.prompt_cache_dir.resolve()),
    }
    media_workers = math.ceil(plan.concurrent / max(1, settings.telephony.max_calls_per_worker))
    stack = LiveStack(settings, work, overrides=overrides, media_workers=media_workers, config_file=config_file)
    runs: list[_CallRun] = []
    try:
        stack.start()
        known = _known_callers(settings, stack)
        voice = TurnVoice(settings.var_dir / "bench-turns")
        runs = _plan_runs(script, known)
        audio = {id(r): [_render(voice, r, t.say, known) for t in r.script.turns] for r in runs}
        bus = _Bus(stack)
        pending: queue.Queue[tuple[int, _CallRun]] = queue.Queue()
        for i, r in enumerate(runs):
            pending.put((i, r))

        def driver() -> None:
            while True:
                try:
                    i, r = pending.get_nowait()
                except queue.Empty:
                    return
                port = stack.sip_port + i % media_workers
                _drive(r, audio[id(r)], bus, work, f"sip:{NUMBER}@127.0.0.1:{port}", plan)

        threads = [threading.Thread(target=driver, daemon=True) for _ in range(plan.concurrent)]
        for t in threads:
            t.start()
            time.sleep(1.5)  # stagger the calls
        for t in threads:
            t.join()
        time.sleep(1.0)
        media = stack.stop_media()
        assert stack.recorder is not None
        rows, summary = analyse(runs, media, [e for _, e in stack.recorder.events])
    finally:
        stack.close()
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
    summary.update(concurrent=plan.concurrent, media_workers=media_workers)
    if keep:
        summary["work_dir"] = str(work)
    return rows, summary


def _known_callers(settings: Settings, stack: LiveStack) -> list[tuple[str, str, Any]]:
    """Demo customers with a phone and a birth date: (phone, card last 4, birth date)."""
    from agent.navigator.banking import demo_card_last4

    container = private_container(settings, stack.env)
    try:
        usable = [c for c in container.profiles.iter_all() if c.phones and c.birth_date is not None]
    finally:
        container.close()
    chosen = [c for c in usable if c.language == "en"] or usable  # English speakers first: the line is English
    return [(c.phones[0], demo_card_last4(c.customer_id), c.birth_date) for c in chosen]


def _plan_runs(script: Sequence[ScriptCall], known: Sequence[tuple[str, str, Any]]) -> list[_CallRun]:
    if not known and any(c.caller == "known" for c in script):
        raise BenchError("the demo bank has no customer with a phone number and a date of birth")
    runs = []
    for i, call in enumerate(script):
        number = known[i % len(known)][0] if call.caller == "known" else f"+86139{i:08d}"
        runs.append(_CallRun(call, number, []))
    return runs


def _render(voice: TurnVoice, run: _CallRun, text: str, known: Sequence[tuple[str, str, Any]]) -> RenderedTurn:
    match = next((k for k in known if k[0] == run.number), None)
    return voice.render(fill(text, last4=match[1] if match else None, birth=match[2] if match else None))


def _drive(
    run: _CallRun, audio: Sequence[RenderedTurn], bus: _Bus, work: Path, uri: str, plan: NavigatorBenchPlan
) -> None:
    """One scripted call (driver thread): dial, speak each turn when the bot is quiet, wait for the end."""
    folder = work / "callers" / run.script.call_id
    folder.mkdir(parents=True, exist_ok=True)
    with ScriptedCaller(work_dir=folder, caller_user=run.number) as caller:
        for turn in audio:
            caller.prepare(turn.path)
        dialled_at = time.time() * 1000
        if not caller.dial(uri):
            run.error = "not answered"
            return
        run.call_id = bus.call_id(run.number)
        if run.call_id is None:
            run.error = "no CallStarted"
            return
        since = dialled_at
        for turn in audio:
            if not bus.wait_quiet(run.call_id, since, plan.quiet_ms, plan.turn_timeout_s):
                run.error = "bot never went quiet"
                break
            if bus.ended(run.call_id):
                break
            said_at = caller.say(turn.path) * 1000
            run.turns.append(TurnClock(said_at, turn.speech_ms))
            since = said_at
        deadline = time.monotonic() + plan.turn_timeout_s
        while not bus.ended(run.call_id) and time.monotonic() < deadline:
            time.sleep(0.1)
        if not bus.ended(run.call_id):
            run.error = run.error or "the bot did not end the call"
            caller.hangup()
        caller.stop()


def _pct(values: Sequence[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 1) if values else None


def analyse(
    runs: Sequence[_CallRun], media: Sequence[dict[str, Any]], events: Sequence[Event]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Per-turn rows and the summary (latency p50/p95/n, stages, containment, intent accuracy)."""
    legs = {(c["call_id"], c["leg"]): c for w in media for c in w.get("calls", [])}
    jitter = {(r["call_id"], r["leg"]): r for w in media for r in w.get("rtp", [])}
    by_call: dict[str, list[Event]] = {}
    for e in events:
        if (cid := getattr(e, "call_id", None)) is not None:
            by_call.setdefault(str(cid), []).append(e)
    rows: list[dict[str, Any]] = []
    hits = asked = contained = expected_ok = 0
    handoffs: list[str] = []
    for run in runs:
        call_events = by_call.get(run.call_id or "", [])
        reasons = [e.reason for e in call_events if isinstance(e, NavigatorHandoff)]
        handed = bool(reasons)
        handoffs += [f"{run.script.call_id}: {r}" for r in reasons]
        contained += not handed
        expected_ok += (run.script.expect == "transfer") == handed
        timings = _timings(run, call_events, legs, jitter)
        intents = sorted((e for e in call_events if isinstance(e, IntentDetected)), key=lambda e: e.at)
        for index, (turn, clock) in enumerate(zip(run.script.turns, run.turns, strict=False)):
            timing = timings[index] if index < len(timings) else TurnTiming(None)
            heard = None
            if turn.intent:
                asked += 1
                limit = run.turns[index + 1].started_ms if index + 1 < len(run.turns) else float("inf")
                seen = [e for e in intents if clock.started_ms < e.at.timestamp() * 1000 < limit]
                heard = seen[0].question_id if seen else None
                hits += heard == turn.intent
            rows.append({
                "call": run.script.call_id, "turn": index + 1, "say": turn.say[:48], "intent": turn.intent,
                "heard": heard, "latency_ms": _round(timing.latency_ms),
                **{f"{k}_ms": round(v, 1) for k, v in timing.stages.items()},
            })  # fmt: skip
    latencies = [r["latency_ms"] for r in rows if r["latency_ms"] is not None]
    stages = {k: [r[f"{k}_ms"] for r in rows if f"{k}_ms" in r] for k in ("final", "intent", "said", "audio")}
    summary: dict[str, Any] = {
        "p50_ms": _pct(latencies, 50), "p95_ms": _pct(latencies, 95), "max_ms": max(latencies, default=None),
        "n": len(latencies), "calls": len(runs), "turns": len(rows),
        "containment": round(contained / len(runs), 3) if runs else None,
        "expected_routing": round(expected_ok / len(runs), 3) if runs else None,
        "intent_accuracy": round(hits / asked, 3) if asked else None, "intent_turns": asked,
        "errors": [f"{r.script.call_id}: {r.error}" for r in runs if r.error], "handoffs": handoffs,
    }  # fmt: skip
    for name, values in stages.items():
        summary[f"{name}_p50_ms"], summary[f"{name}_p95_ms"] = _pct(values, 50), _pct(values, 95)
    return rows, summary


def _timings(run: _CallRun, events: Sequence[Event], legs: dict[Any, Any], jitter: dict[Any, Any]) -> list[TurnTiming]:
    ended = next((e for e in events if isinstance(e, CallEnded)), None)
    leg = legs.get((run.call_id, "customer"))
    if ended is None or ended.recording_path is None or leg is None or "first_frame_wall_ms" not in leg:
        return []
    try:
        data, rate = sf.read(ended.recording_path, dtype="int16", always_2d=True)
    except (OSError, RuntimeError):
        return []
    rms = frame_rms(np.ascontiguousarray(data[:, 0]), int(rate))
    delay = float(jitter.get((run.call_id, "customer"), {}).get("jbuf_delay_ms_mean", 0.0))
    return time_turns(run.turns, rms, recording_start_ms=float(leg["first_frame_wall_ms"]), jitter_delay_ms=delay,
                      events=events)  # fmt: skip


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
