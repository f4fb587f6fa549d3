"""Value types of scripts (话术): what a script is, its versions, stored findings, and the approved shape.

See :mod:`knowledge.scripts` for the lifecycle. Pure data; any thread.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from knowledge.compliance import ScriptKind
from knowledge.tables import ScriptRow, ScriptVersionRow

ScriptState = Literal["draft", "checked", "approved", "retired"]
APPROVER_ROLE = "compliance"
SCRIPT_ID_PATTERN = r"^[a-z][a-z0-9_.]{0,63}$"


class ScriptSpec(BaseModel):
    """What a script is: its id, kind and titles (the text lives in its versions)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    script_id: str = Field(pattern=SCRIPT_ID_PATTERN)
    kind: ScriptKind
    title_zh: str = Field(default="", max_length=128)
    title_en: str = Field(default="", max_length=128)


@dataclass(frozen=True)
class ScriptDraft:
    """A script's text as an import brings it (library answers, marketing and outbound script files)."""

    spec: ScriptSpec
    text_zh: str
    text_en: str
    product_ids: tuple[str, ...] = ()
    audience_risk: str | None = None


class ScriptFinding(BaseModel):
    """A stored checker finding: ``lang`` says which text (zh/en) the span ``[start, end)`` points into."""

    model_config = ConfigDict(frozen=True)

    rule_id: str
    lang: Literal["zh", "en"]
    start: int
    end: int
    message: str
    matched: str = ""


class ScriptVersion(BaseModel):
    """One version as the review screens see it (any state)."""

    model_config = ConfigDict(frozen=True)

    script_id: str
    kind: ScriptKind
    title_zh: str
    title_en: str
    version: int
    state: ScriptState
    text_zh: str
    text_en: str
    product_ids: tuple[str, ...]
    audience_risk: str | None
    findings: tuple[ScriptFinding, ...]
    author: str
    created_at: datetime
    checked_at: datetime | None = None
    approved_by: str | None = None
    approved_at: datetime | None = None
    override_reason: str | None = None
    retired_at: datetime | None = None


class ApprovedScript(BaseModel):
    """The approved text of a script: the only shape in which script text leaves the knowledge room."""

    model_config = ConfigDict(frozen=True)

    script_id: str
    version: int
    kind: ScriptKind
    title_zh: str
    title_en: str
    text_zh: str
    text_en: str
    product_ids: tuple[str, ...]
    audience_risk: str | None
    approved_at: datetime

    def text(self, lang: str) -> str:
        """The text in ``lang`` (``"zh"`` or ``"en"``), falling back to the other language when empty."""
        first, other = (self.text_zh, self.text_en) if lang == "zh" else (self.text_en, self.text_zh)
        return first or other


class ApprovedScripts(Protocol):
    """The retrieval API of scripts: approved versions only."""

    def approved(self, script_id: str) -> ApprovedScript: ...

    def approved_all(self, kind: str | None = None) -> builtins.list[ApprovedScript]: ...


class Reviewer(BaseModel):
    """Who performs a review action: a user id and the roles they hold."""

    model_config = ConfigDict(frozen=True)

    user_id: str
    roles: tuple[str, ...]


def to_version(row: ScriptRow, v: ScriptVersionRow) -> ScriptVersion:
    return ScriptVersion(
        script_id=row.script_id,
        kind=row.kind,
        title_zh=row.title_zh,
        title_en=row.title_en,
        version=v.version,
        state=v.state,
        text_zh=v.text_zh,
        text_en=v.text_en,
        product_ids=tuple(v.product_ids or ()),
        audience_risk=v.audience_risk,
        findings=tuple(ScriptFinding.model_validate(f) for f in v.findings or ()),
        author=v.author,
        created_at=v.created_at,
        checked_at=v.checked_at,
        approved_by=v.approved_by,
        approved_at=v.approved_at,
        override_reason=v.override_reason,
        retired_at=v.retired_at,
    )


def to_approved(row: ScriptRow, v: ScriptVersionRow) -> ApprovedScript:
    assert v.state == "approved" and v.approved_at is not None
    return ApprovedScript(
        script_id=row.script_id,
        version=v.version,
        kind=row.kind,
        title_zh=row.title_zh,
        title_en=row.title_en,
        text_zh=v.text_zh,
        text_en=v.text_en,
        product_ids=tuple(v.product_ids or ()),
        audience_risk=v.audience_risk,
        approved_at=v.approved_at,
    )
