"""The voice navigator's dialog engine: YAML flows (:mod:`.flows`, :mod:`.flow_loader`), slot parsing
(:mod:`.slots`), the core-banking adapter (:mod:`.banking`) and the per-call :class:`DialogEngine` that turns caller
inputs into :mod:`.actions` — pure logic, exported here.

The call runtime that drives it from live call events lives in its own modules, imported where needed (they pull in
ZeroMQ and the TTS stack): :mod:`.session` (one call), :mod:`.playback` (its bot audio), :mod:`.speaker` (text to
call frames), :mod:`.play_client` (the play channel to the media workers), :mod:`.hub` (the calls of an agent
process on the bus), with :mod:`.handoff` and :mod:`.runtime` as small parts."""

from __future__ import annotations

from agent.navigator.actions import Action, Hangup, Listen, PlayAnswer, Say, Transfer, TransferContext, Turn
from agent.navigator.banking import CoreBanking, DemoCoreBanking, InstallmentQuote
from agent.navigator.engine import DialogEngine
from agent.navigator.flow_loader import load_flows, shipped_flow_paths
from agent.navigator.flows import Flow, FlowSet

__all__ = [
    "Action",
    "CoreBanking",
    "DemoCoreBanking",
    "DialogEngine",
    "Flow",
    "FlowSet",
    "Hangup",
    "InstallmentQuote",
    "Listen",
    "PlayAnswer",
    "Say",
    "Transfer",
    "TransferContext",
    "Turn",
    "load_flows",
    "shipped_flow_paths",
]
