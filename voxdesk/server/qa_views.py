"""JSON views of QA records for the QA API and pages: queue rows, findings, score items, the call page's data.

Recording paths and customer phone numbers never leave the server; transcripts and evidence are masked
(:func:`core.pii.mask_text`) unless the reader may see PII. Pure; any thread.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from core.pii import mask_text
from qa.records import QaCall, QaCallDetail, StoredFinding
from qa.review import ReviewScore
from voxdesk.auth.roles import TRANSCRIPT_PII_READERS, allowed
from voxdesk.auth.service import Principal
from voxdesk.container import Container

__all__ = ["call_json", "detail_json", "finding_json", "finding_on_turn", "load_detail", "masks_pii", "score_json"]


def call_json(call: QaCall) -> dict[str, Any]:
    """A queue row as JSON (no recording path, no phone number)."""
    out = dataclasses.asdict(call)
    out["final_score"] = call.final_score
    for key, value in out.items():
        if isinstance(value, datetime):
            out[key] = value.isoformat()
    return out


def finding_json(f: StoredFinding, *, mask: bool) -> dict[str, Any]:
    out = dataclasses.asdict(f)
    out["evidence"] = mask_text(f.evidence) if mask else f.evidence
    out["reviewed_at"] = f.reviewed_at.isoformat() if f.reviewed_at else None
    return out


def score_json(score: ReviewScore) -> dict[str, Any]:
    """The scorecard result with item labels."""
    result = score.result
    return {
        "scorecard_id": result.scorecard_id,
        "name": score.card.name,
        "pass_mark": score.card.pass_mark,
        "score": result.score,
        "passed": result.passed,
        "auto_failed": result.auto_failed,
        "items": [
            {
                "item_id": i.item_id,
                "label_en": score.labels.get(i.item_id, (i.item_id, i.item_id))[0],
                "label_zh": score.labels.get(i.item_id, (i.item_id, i.item_id))[1],
                "weight": i.weight,
                "points": i.points,
                "findings": i.findings,
                "failed": i.failed,
            }
            for i in result.items
        ],
    }


def detail_json(detail: QaCallDetail, score: ReviewScore, *, mask: bool) -> dict[str, Any]:
    """The call page's data: call, turns (with the ids of the findings on each), findings, score items."""
    turns = []
    for idx, t in enumerate(detail.turns):
        on_line = [f.id for f in detail.findings if finding_on_turn(f, t.channel, t.start_ms, t.end_ms)]
        text = mask_text(t.text) if mask else t.text
        turns.append(
            {"idx": idx, "channel": t.channel, "text": text, "start_ms": t.start_ms, "end_ms": t.end_ms,
             "lang": t.lang, "finding_ids": on_line}
        )  # fmt: skip
    return {
        "call": call_json(detail.call),
        "turns": turns,
        "findings": [finding_json(f, mask=mask) for f in detail.findings],
        "score": score_json(score),
        "review_note": detail.review_note,
        "audio_url": f"/api/qa/calls/{detail.call.call_id}/audio",
    }


def finding_on_turn(f: StoredFinding, channel: str, start_ms: int, end_ms: int) -> bool:
    """Whether a finding is about this transcript line: the same party and overlapping times (a point finding
    inside the line). Whole-call findings (no channel) mark no line."""
    if f.channel is None or f.channel != channel:
        return False
    if f.start_ms == f.end_ms:
        return start_ms <= f.start_ms <= end_ms
    return f.start_ms < end_ms and start_ms < f.end_ms


def masks_pii(principal: Principal) -> bool:
    return not allowed(principal.roles, TRANSCRIPT_PII_READERS)


def load_detail(container: Container, call_id: str) -> tuple[QaCallDetail, ReviewScore]:
    """Detail and current review score of a call (blocking; raises :class:`NotFoundError`)."""
    return container.qa_store.detail(call_id), container.qa_review.review_score(call_id)
