"""The voice navigator's dialog engine: YAML flows (:mod:`.flows`, :mod:`.flow_loader`), slot parsing
(:mod:`.slots`), the core-banking adapter (:mod:`.banking`) and the per-call :class:`DialogEngine` that turns caller
inputs into :mod:`.actions`. Pure logic: no telephony, TTS or ASR here."""

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
