"""Voxdesk's own recorded calls as QA input: every ended call with a checked-in recording and no QA record yet.

The call store (``telephony``) is the source of truth, so a call recorded while the QA process was down is picked up
when it comes back: :func:`calls_to_inspect` is a catch-up query, and the bus's ``call.ended`` event only makes the
QA process look sooner. The agent is identified by the user part of the agent leg's SIP URI (``sip:1001@pbx`` →
``1001``), or ``navigator`` for calls only the voice navigator handled. Synchronous (one query).
"""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from core.db import session_scope
from qa.models import RecordingMeta
from qa.tables import QaRecordingRow
from telephony.tables import CallRow

__all__ = ["agent_of", "calls_to_inspect"]

_SIP_USER = re.compile(r"^(?:sips?:)?([^@;>]+)@")


def agent_of(row: CallRow) -> str | None:
    """The agent who talked on the call (user part of the agent leg's URI), ``navigator`` for bot-only calls."""
    legs = {leg.leg: leg for leg in row.legs}
    agent = legs.get("agent")
    if agent is not None and agent.remote_uri:
        m = _SIP_USER.match(agent.remote_uri.strip("<>"))
        return m.group(1)[:64] if m else agent.remote_uri[:64]
    return "navigator" if "bot" in legs else None


def calls_to_inspect(sessions: sessionmaker[Session], *, limit: int = 100) -> list[tuple[str, RecordingMeta]]:
    """Up to ``limit`` recorded, ended calls that the QA store does not know yet, oldest first."""
    known = select(QaRecordingRow.call_id)
    stmt = (
        select(CallRow)
        .options(selectinload(CallRow.legs))
        .where(CallRow.recording_path.is_not(None), CallRow.recording_sha256.is_not(None))
        .where(CallRow.ended_at.is_not(None), CallRow.call_id.not_in(known))
        .order_by(CallRow.started_at)
        .limit(limit)
    )
    with session_scope(sessions) as s:
        out: list[tuple[str, RecordingMeta]] = []
        for row in s.scalars(stmt):
            meta = RecordingMeta(
                call_id=row.call_id,
                agent_id=agent_of(row),
                customer_phone=row.caller_e164,
                started_at=row.started_at,
                direction="outbound" if row.direction == "outbound" else "inbound",
                team=None,
                customer_id=row.customer_id,
            )
            assert row.recording_path is not None
            out.append((row.recording_path, meta))
        return out
