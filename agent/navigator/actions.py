"""What the dialog engine asks the call to do: typed, immutable actions, in the order they are to happen.

The runtime (media worker, TTS, ASR) carries them out: :class:`Say` through text-to-speech (``interruptible=False``
plays to the end whatever the caller says), :class:`Listen` opens the recogniser and the DTMF collector,
:class:`PlayAnswer` reads an approved script, :class:`Transfer` hands the call and its :class:`TransferContext`
to a human in a skill group, :class:`Hangup` ends the call. Pure data; any thread.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Action", "Hangup", "Listen", "PlayAnswer", "Say", "Transfer", "TransferContext", "Turn"]


@dataclass(frozen=True)
class Say:
    text: str
    interruptible: bool = True
    prompt_key: str | None = None
    """The fixed prompt's key (for a cache of rendered audio); ``None`` when the text was filled from variables."""


@dataclass(frozen=True)
class Listen:
    slot: str
    """The slot (or ``intent`` / ``confirm_intent``) the next input fills."""
    timeout_ms: int
    """How long to wait for the caller to start, ms; then call :meth:`DialogEngine.on_no_input`."""
    dtmf_digits: int
    """How many keypad digits make a complete answer (``#`` ends early); 0 = keypad not used."""


@dataclass(frozen=True)
class PlayAnswer:
    script_id: str
    question_id: str


@dataclass(frozen=True)
class Turn:
    """One line of the call transcript: ``speaker`` is ``bot``, ``caller`` or ``dtmf``."""

    speaker: str
    text: str


@dataclass(frozen=True)
class TransferContext:
    """What the agent's assist panel shows on pick-up."""

    reason: str
    transcript: tuple[Turn, ...]
    intent: str | None
    intent_confidence: float | None
    customer_id: str | None
    identity_verified: bool
    slots: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    """Filled slots and call results as ``(name, text)``, in the order they were set."""


@dataclass(frozen=True)
class Transfer:
    skill_group: str
    context: TransferContext


@dataclass(frozen=True)
class Hangup:
    reason: str


Action = Say | Listen | PlayAnswer | Transfer | Hangup
