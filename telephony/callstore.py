"""The call store: every call's set-up, legs, DTMF, final transcript, hangup and recording, on SQLAlchemy.

:meth:`CallStore.apply` records call events idempotently, so an event delivered twice (a bus reconnect, a
replay) is stored once. It expects a call's :class:`~core.events.CallStarted` to be recorded before its other
events and raises :class:`NotFoundError` otherwise; the application's recorder parks such early events and applies
them once the call has started.

Synchronous (SQLAlchemy sessions); async callers use ``asyncio.to_thread`` or FastAPI's thread pool. Thread-safe:
each method opens its own session from the injected ``sessionmaker``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload, sessionmaker

from core.clock import Clock, SystemClock
from core.db import session_scope
from core.errors import InvalidInputError, NotFoundError, StorageError, VoxdeskError
from core.events import (
    CallAnswered,
    CallEnded,
    CallStarted,
    DtmfReceived,
    Event,
    FinalTranscript,
    LegConnected,
    RecordingSaved,
)
from core.ids import CallId, CampaignId, CustomerId
from core.logging import get_logger
from telephony.models import Call, CallDetail, CallLeg, CallPage, DtmfDigit, Utterance
from telephony.tables import CallLegRow, CallRow, DtmfRow, UtteranceRow

log = get_logger(__name__)

CallerLookup = Callable[[str], str | None]
"""Maps a caller number (as the media worker reported it) to a bank customer id, or ``None`` when unknown.

Called on the thread that applies :class:`~core.events.CallStarted`; must be quick (one indexed lookup)."""

STORED_EVENTS: tuple[type[Event], ...] = (
    CallStarted,
    CallAnswered,
    LegConnected,
    DtmfReceived,
    FinalTranscript,
    RecordingSaved,
    CallEnded,
)
"""The event types :meth:`CallStore.apply` records; every other event is ignored (partials, speech starts, …)."""

MAX_PAGE = 500
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_DTMF_DIGITS = frozenset("0123456789*#ABCD")


class CallStore:
    """Calls, legs, utterances and DTMF digits on SQLAlchemy."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        clock: Clock | None = None,
        caller_lookup: CallerLookup | None = None,
    ) -> None:
        self._sessions = sessions
        self._clock = clock or SystemClock()
        self._caller_lookup = caller_lookup

    # --- events --------------------------------------------------------------------------------------------

    def apply(self, event: Event, *, media_worker: str | None = None) -> bool:
        """Record one call event; returns whether it changed anything (``False`` for a repeat or an unstored kind).

        ``CallStarted`` creates the call and resolves the caller to a customer through ``caller_lookup`` (a failed
        lookup is logged and leaves the customer unset); ``media_worker`` names the worker process that handles
        the call, when the caller knows it. Other stored events raise :class:`NotFoundError` for a call that has
        not started; database failures raise :class:`StorageError` (retryable).
        """
        if isinstance(event, CallStarted):
            return self._started(event, media_worker)
        if isinstance(event, CallAnswered):
            return self._update(event.call_id, lambda s, row: _apply_answered(row, event))
        if isinstance(event, LegConnected):
            return self._update(event.call_id, lambda s, row: _apply_leg(row, event))
        if isinstance(event, DtmfReceived):
            if event.digit not in _DTMF_DIGITS:
                raise InvalidInputError("not a DTMF digit", call_id=event.call_id)
            return self._update(event.call_id, lambda s, row: _apply_dtmf(s, row, event))
        if isinstance(event, FinalTranscript):
            now = self._clock.now()
            return self._update(event.call_id, lambda s, row: _apply_final(s, row, event, now))
        if isinstance(event, CallEnded):
            return self._update(event.call_id, lambda s, row: _apply_ended(row, event))
        if isinstance(event, RecordingSaved):
            if (self.get(event.call_id).recording_sha256 or "") == event.sha256:
                return False
            self.set_recording(event.call_id, event.path, event.sha256, event.duration_ms)
            return True
        return False

    def _started(self, event: CallStarted, media_worker: str | None) -> bool:
        with self._session() as s:
            if s.get(CallRow, event.call_id) is not None:
                return False
        caller = event.caller if event.direction == "inbound" else event.callee  # the customer's number either way
        if caller is not None and len(caller) > 32:
            log.warning("caller number too long to store; dropped", call_id=event.call_id)
            caller = None
        customer_id = self._lookup(event.call_id, caller)
        with _swallow_duplicate() as inserted, self._session(write=True) as s:
            if s.get(CallRow, event.call_id) is not None:
                return False
            s.add(
                CallRow(
                    call_id=event.call_id,
                    direction=event.direction,
                    line=event.line,
                    caller_e164=caller,
                    customer_id=customer_id,
                    campaign_id=event.campaign_id,
                    started_at=event.at,
                    media_worker=media_worker,
                )
            )
            inserted.append(True)
        return bool(inserted)

    def _lookup(self, call_id: str, caller: str | None) -> str | None:
        if caller is None or self._caller_lookup is None:
            return None
        try:
            return self._caller_lookup(caller)
        except VoxdeskError as exc:
            log.warning("caller lookup failed; call recorded without customer", call_id=call_id, error=exc.code)
            return None

    def _update(self, call_id: str, change: Callable[[Session, CallRow], bool]) -> bool:
        with _swallow_duplicate() as changed, self._session(write=True) as s:
            row = s.get(CallRow, call_id, options=[selectinload(CallRow.legs)])
            if row is None:
                raise NotFoundError("call not recorded (yet)", call_id=call_id)
            if change(s, row):
                changed.append(True)
        return bool(changed)

    # --- recordings ----------------------------------------------------------------------------------------

    def set_recording(self, call_id: str, path: str, sha256: str, duration_ms: int) -> None:
        """Check in the call's recording file: its path, hex SHA-256 and length (ms)."""
        if not _SHA256.match(sha256):
            raise InvalidInputError("sha256 must be 64 lowercase hex digits")
        if duration_ms < 0:
            raise InvalidInputError("recording duration must not be negative", duration_ms=duration_ms)
        with self._session(write=True) as s:
            row = self._row(s, call_id)
            row.recording_path, row.recording_sha256, row.recording_duration_ms = path, sha256, duration_ms

    def clear_recording(self, call_id: str) -> None:
        """Forget the call's recording (after the retention job deleted the file); the call record stays."""
        with self._session(write=True) as s:
            row = self._row(s, call_id)
            row.recording_path = row.recording_sha256 = row.recording_duration_ms = None

    def expired_recordings(self, older_than: datetime, *, limit: int = 1000) -> tuple[Call, ...]:
        """Calls with a recording that ended (or, never ended, started) before ``older_than`` (UTC), oldest
        first, at most ``limit``; for the retention job."""
        ended = func.coalesce(CallRow.ended_at, CallRow.started_at)
        with self._session() as s:
            rows = s.scalars(
                select(CallRow)
                .where(CallRow.recording_path.is_not(None), ended < older_than)
                .options(selectinload(CallRow.legs))
                .order_by(ended, CallRow.call_id)
                .limit(max(1, limit))
            ).all()
            return tuple(_call(r) for r in rows)

    # --- reads ---------------------------------------------------------------------------------------------

    def get(self, call_id: str) -> Call:
        """The call with its legs; raises :class:`NotFoundError`."""
        with self._session() as s:
            return _call(self._row(s, call_id))

    def detail(self, call_id: str) -> CallDetail:
        """The call with its legs, utterances (by start) and DTMF digits (in order); raises :class:`NotFoundError`."""
        with self._session() as s:
            row = self._row(s, call_id)
            call = _call(row)
            return CallDetail(
                **dict(call),
                utterances=self._utterances(s, call_id),
                dtmf=self._dtmf(s, call_id),
            )

    def list(
        self,
        offset: int = 0,
        limit: int = 50,
        *,
        customer_id: str | None = None,
        line: str | None = None,
        since: datetime | None = None,
    ) -> CallPage:
        """Calls newest first, filtered by customer, line, and start time (``since``, UTC, inclusive).

        ``limit`` is capped at :data:`MAX_PAGE`.
        """
        offset, limit = max(0, offset), max(1, min(limit, MAX_PAGE))
        conditions = []
        if customer_id is not None:
            conditions.append(CallRow.customer_id == customer_id)
        if line is not None:
            conditions.append(CallRow.line == line)
        if since is not None:
            conditions.append(CallRow.started_at >= since)
        with self._session() as s:
            total = s.scalar(select(func.count()).select_from(CallRow).where(*conditions)) or 0
            rows = s.scalars(
                select(CallRow)
                .where(*conditions)
                .options(selectinload(CallRow.legs))
                .order_by(CallRow.started_at.desc(), CallRow.call_id)
                .offset(offset)
                .limit(limit)
            ).all()
            return CallPage(items=tuple(_call(r) for r in rows), total=total, offset=offset, limit=limit)

    def utterances(self, call_id: str) -> tuple[Utterance, ...]:
        """The call's final utterances ordered by start (ms); raises :class:`NotFoundError` for unknown calls."""
        with self._session() as s:
            self._row(s, call_id)
            return self._utterances(s, call_id)

    def dtmf(self, call_id: str) -> tuple[DtmfDigit, ...]:
        """The call's DTMF digits in the order pressed; raises :class:`NotFoundError` for unknown calls."""
        with self._session() as s:
            self._row(s, call_id)
            return self._dtmf(s, call_id)

    # --- helpers -------------------------------------------------------------------------------------------

    def _session(self, *, write: bool = False) -> AbstractContextManager[Session]:
        return session_scope(self._sessions, write=write)

    @staticmethod
    def _row(s: Session, call_id: str) -> CallRow:
        row = s.get(CallRow, call_id, options=[selectinload(CallRow.legs)])
        if row is None:
            raise NotFoundError("unknown call", call_id=call_id)
        return row

    @staticmethod
    def _utterances(s: Session, call_id: str) -> tuple[Utterance, ...]:
        rows = s.scalars(
            select(UtteranceRow)
            .where(UtteranceRow.call_id == call_id)
            .order_by(UtteranceRow.start_ms, UtteranceRow.leg, UtteranceRow.id)
        ).all()
        return tuple(
            Utterance(
                id=r.id,
                call_id=CallId(r.call_id),
                leg=r.leg,
                start_ms=r.start_ms,
                end_ms=r.end_ms,
                text=r.text,
                lang=r.lang,
                confidence=r.confidence,
                created_at=r.created_at,
            )
            for r in rows
        )

    @staticmethod
    def _dtmf(s: Session, call_id: str) -> tuple[DtmfDigit, ...]:
        rows = s.scalars(select(DtmfRow).where(DtmfRow.call_id == call_id).order_by(DtmfRow.at_ms, DtmfRow.id)).all()
        return tuple(
            DtmfDigit(id=r.id, call_id=CallId(r.call_id), digit=r.digit, at_ms=r.at_ms, duration_ms=r.duration_ms)
            for r in rows
        )


# --- event appliers (inside one write session; return whether they changed anything) --------------------------


def _apply_answered(row: CallRow, event: CallAnswered) -> bool:
    if row.answered_at is not None:
        return False
    row.answered_at = event.at
    return True


def _apply_leg(row: CallRow, event: LegConnected) -> bool:
    leg = next((x for x in row.legs if x.leg == event.leg), None)
    if leg is None:
        row.legs.append(CallLegRow(leg=event.leg, remote_uri=event.remote_uri, connected_at=event.at))
        return True
    if not leg.remote_uri and event.remote_uri:
        leg.remote_uri = event.remote_uri
        return True
    return False


def _apply_dtmf(s: Session, row: CallRow, event: DtmfReceived) -> bool:
    at_ms = _offset_ms(row.started_at, event.at)
    exists = s.scalar(
        select(DtmfRow.id).where(DtmfRow.call_id == row.call_id, DtmfRow.at_ms == at_ms, DtmfRow.digit == event.digit)
    )
    if exists is not None:
        return False
    s.add(DtmfRow(call_id=row.call_id, digit=event.digit, at_ms=at_ms, duration_ms=event.duration_ms))
    return True


def _apply_final(s: Session, row: CallRow, event: FinalTranscript, now: datetime) -> bool:
    exists = s.scalar(
        select(UtteranceRow.id).where(
            UtteranceRow.call_id == row.call_id,
            UtteranceRow.leg == event.leg,
            UtteranceRow.start_ms == event.start_ms,
        )
    )
    if exists is not None:
        return False
    s.add(
        UtteranceRow(
            call_id=row.call_id,
            leg=event.leg,
            start_ms=event.start_ms,
            end_ms=event.end_ms,
            text=event.text,
            lang=event.lang,
            confidence=event.confidence,
            created_at=now,
        )
    )
    if row.lang is None and event.lang is not None:
        row.lang = event.lang
    return True


def _apply_ended(row: CallRow, event: CallEnded) -> bool:
    if row.ended_at is not None:
        return False
    row.ended_at, row.duration_ms, row.end_reason, row.sip_code = (
        event.at,
        event.duration_ms,
        event.reason,
        event.sip_code,
    )
    if event.recording_path is not None:
        row.recording_path = event.recording_path
    for leg in row.legs:
        if leg.ended_at is None:
            leg.ended_at = event.at
    return True


@contextmanager
def _swallow_duplicate() -> Iterator[list[bool]]:
    """Yields a list the body appends to when it wrote; a unique-key clash (a concurrent writer recorded the same
    event first) is swallowed and leaves the list empty."""
    result: list[bool] = []
    try:
        yield result
    except StorageError as exc:
        if not isinstance(exc.__cause__, IntegrityError):
            raise
        result.clear()


def _offset_ms(start: datetime, at: datetime) -> int:
    """Milliseconds from ``start`` to ``at``, never negative (clock skew between processes)."""
    return max(0, round((at - start).total_seconds() * 1000))


def _call(row: CallRow) -> Call:
    return Call(
        call_id=CallId(row.call_id),
        direction=row.direction,
        line=row.line,
        caller_e164=row.caller_e164,
        customer_id=CustomerId(row.customer_id) if row.customer_id is not None else None,
        campaign_id=CampaignId(row.campaign_id) if row.campaign_id is not None else None,
        started_at=row.started_at,
        answered_at=row.answered_at,
        ended_at=row.ended_at,
        duration_ms=row.duration_ms,
        end_reason=row.end_reason,
        sip_code=row.sip_code,
        media_worker=row.media_worker,
        recording_path=row.recording_path,
        recording_sha256=row.recording_sha256,
        recording_duration_ms=row.recording_duration_ms,
        lang=row.lang,
        legs=tuple(
            CallLeg(leg=x.leg, remote_uri=x.remote_uri, connected_at=x.connected_at, ended_at=x.ended_at)
            for x in sorted(row.legs, key=lambda x: x.connected_at)
        ),
    )
