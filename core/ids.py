"""Typed identifiers shared by every package.

All ids are plain strings at run time; ``NewType`` keeps them apart for mypy.
"""

from __future__ import annotations

import uuid
from typing import NewType

CallId = NewType("CallId", str)
"""One telephone call (both legs), e.g. ``"call-3f2a…"``."""

CustomerId = NewType("CustomerId", str)
"""The bank's own customer number (核心客户号), unique per bank."""

UserId = NewType("UserId", str)
"""A Voxdesk user (agent, supervisor, QA, …)."""

ProductId = NewType("ProductId", str)
"""A product code from the bank's catalog."""

QuestionId = NewType("QuestionId", str)
"""An entry of the customer-question library."""

ScriptId = NewType("ScriptId", str)
"""An approved answer script."""

CampaignId = NewType("CampaignId", str)
"""An outbound campaign."""

CameraId = NewType("CameraId", str)
"""A branch camera."""

BranchId = NewType("BranchId", str)
"""A bank branch (网点)."""


def new_call_id() -> CallId:
    """Return a fresh random call id."""
    return CallId(f"call-{uuid.uuid4().hex}")


def new_id(prefix: str) -> str:
    """Return a fresh random id of the form ``<prefix>-<32 hex digits>``."""
    return f"{prefix}-{uuid.uuid4().hex}"
