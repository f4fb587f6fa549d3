"""Who is the agent in a diarized mono recording: the speaker who says the bank's script.

Each speaker's transcribed turns are scored with the phrases only the bank's side says (greeting, identity
check, closing, the bank's names, "how can I help"); the best-scoring speaker is the agent, everyone else a
customer. With no evidence either way, the first speaker of an inbound call is the agent (the bank answers) and
the second one of an outbound call (the customer answers "hello"). Pure; any thread.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence

from qa.models import Channel, Direction, Turn
from qa.rules_base import PhraseIndex
from qa.rules_config import RulesConfig

__all__ = ["AGENT_CUES_EN", "AGENT_CUES_ZH", "agent_cues", "assign_roles"]

AGENT_CUES_EN: tuple[str, ...] = (
    "how can I help",
    "how may I help",
    "speaking how can I help",
    "my name is",
    "thank you for calling",
    "thank you for holding",
    "is there anything else I can help",
    "let me check that for you",
    "one moment please",
    "can you confirm",
)
AGENT_CUES_ZH: tuple[str, ...] = (
    "请问有什么可以帮您",
    "很高兴为您服务",
    "工号",
    "请您稍等",
    "感谢您的来电",
    "还有其他可以帮您",
)


@functools.lru_cache(maxsize=16)
def agent_cues(config: RulesConfig) -> PhraseIndex:
    """Phrases that mark the bank's side: the script steps of the rules file, its bank names and common agent
    wordings."""
    phrases: list[str] = [*AGENT_CUES_EN, *AGENT_CUES_ZH, *config.bank_names]
    for step in config.required.steps:
        phrases.extend(step.phrases.all())
    return PhraseIndex(tuple(dict.fromkeys(phrases)))


def assign_roles(
    speakers: Mapping[str, Sequence[Turn]], *, config: RulesConfig, direction: Direction = "inbound"
) -> dict[str, Channel]:
    """Map diarization speaker labels to parties (exactly one agent when there is any speaker)."""
    if not speakers:
        return {}
    cues = agent_cues(config)
    first_start = {spk: min((t.start_ms for t in turns), default=1 << 62) for spk, turns in speakers.items()}
    by_time = sorted(speakers, key=lambda spk: first_start[spk])
    scores = {spk: len(cues.hits(list(turns))) for spk, turns in speakers.items()}
    fallback = by_time[1] if direction == "outbound" and len(by_time) > 1 else by_time[0]
    best = max(by_time, key=lambda spk: (scores[spk], spk == fallback))
    return {spk: ("agent" if spk == best else "customer") for spk in speakers}
