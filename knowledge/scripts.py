"""Answer, marketing and outbound scripts (话术) with versions and compliance review.

Lifecycle of a version: ``draft → checked → approved → retired``.

* :meth:`ScriptStore.create` / :meth:`ScriptStore.revise` write a new **draft**; the automatic checker
  (:class:`knowledge.compliance.ComplianceChecker`) runs on it at once, on both languages, and its findings are
  stored with the version so the author sees them.
* :meth:`ScriptStore.submit` re-runs the check and moves the draft to **checked** (ready for review).
* :meth:`ScriptStore.approve` needs a reviewer holding the ``compliance`` role who is not the author (four-eyes),
  a checked version, and a clean check — re-run at approval time against the catalog as it is now — or a recorded
  override reason. Approving a version retires the script's previously approved one.
* :meth:`ScriptStore.retire` takes any version out of use.

Only approved versions leave the knowledge room: the retrieval side reads scripts through
:class:`ApprovedScripts` (:meth:`ScriptStore.approved`, :meth:`ScriptStore.approved_all`), which returns
:class:`ApprovedScript` values and never a draft, checked or retired text. The editorial reads
(:meth:`ScriptStore.versions`) are for the review screens and API of compliance staff only.

Synchronous and thread-safe (one session per call); blocking database I/O.
"""

from __future__ import annotations

import builtins
from collections.abc import Collection, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.clock import Clock, SystemClock
from core.db import session_scope
from core.errors import ConflictError, InvalidInputError, NotFoundError, PermissionDeniedError
from knowledge.catalog import CUSTOMER_RISKS, ProductReader
from knowledge.compliance import ComplianceChecker, ScriptContext, ScriptProduct
from knowledge.script_models import (
    APPROVER_ROLE,
    ApprovedScript,
    ApprovedScripts,
    Reviewer,
    ScriptDraft,
    ScriptFinding,
    ScriptSpec,
    ScriptState,
    ScriptVersion,
    to_approved,
    to_version,
)
from knowledge.tables import ScriptRow, ScriptVersionRow

__all__ = [
    "APPROVER_ROLE",
    "ApprovedScript",
    "ApprovedScripts",
    "Reviewer",
    "ScriptDraft",
    "ScriptFinding",
    "ScriptSpec",
    "ScriptState",
    "ScriptStore",
    "ScriptVersion",
]


class ScriptStore:
    """Scripts and their versions on SQLAlchemy (tables ``scripts`` and ``script_versions``)."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        catalog: ProductReader,
        bank_names: Sequence[str],
        checker: ComplianceChecker | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._sessions = sessions
        self._catalog = catalog
        self._bank_names = tuple(bank_names)
        self._checker = checker or ComplianceChecker()
        self._clock = clock or SystemClock()

    # --- authoring ------------------------------------------------------------------------------------------

    def create(
        self,
        spec: ScriptSpec,
        *,
        text_zh: str,
        text_en: str,
        author: str,
        product_ids: Sequence[str] = (),
        audience_risk: str | None = None,
    ) -> ScriptVersion:
        """Create a script with its version 1 as a checked-on-write draft; raises ConflictError if it exists."""
        findings = self.check_text(spec.kind, text_zh, text_en, product_ids, audience_risk)
        with self._session(write=True) as s:
            if s.get(ScriptRow, spec.script_id) is not None:
                raise ConflictError("script already exists", script_id=spec.script_id)
            row = ScriptRow(script_id=spec.script_id, kind=spec.kind, title_zh=spec.title_zh, title_en=spec.title_en)
            row.created_at = self._clock.now()
            s.add(row)
            version = self._new_version(s, row, 1, text_zh, text_en, author, product_ids, audience_risk, findings)
            s.flush()
            return to_version(row, version)

    def revise(
        self,
        script_id: str,
        *,
        text_zh: str,
        text_en: str,
        author: str,
        product_ids: Sequence[str] | None = None,
        audience_risk: str | Literal["same"] | None = "same",
    ) -> ScriptVersion:
        """A new draft version (text and, optionally, products and audience; unchanged ones carried over)."""
        with self._session(write=True) as s:
            row = self._script(s, script_id)
            latest = self._latest(s, script_id)
            products = tuple(latest.product_ids or ()) if product_ids is None else tuple(product_ids)
            audience = latest.audience_risk if audience_risk == "same" else audience_risk
            findings = self.check_text(row.kind, text_zh, text_en, products, audience)
            version = self._new_version(
                s, row, latest.version + 1, text_zh, text_en, author, products, audience, findings
            )
            s.flush()
            return to_version(row, version)

    def draft_many(self, drafts: Sequence[ScriptDraft], *, author: str, session: Session | None = None) -> int:
        """Create scripts, or new draft versions where the text, products or audience differ from the newest
        version, all in one transaction (with ``session``, the caller's). Returns how many drafts were written;
        unchanged scripts are left alone, so re-importing is idempotent. Raises :class:`ConflictError` when an id
        belongs to a script of another kind, ``NotFoundError`` for an unknown product."""
        written = 0
        with self._session(write=True, within=session) as s:
            for d in drafts:
                spec, products = d.spec, tuple(d.product_ids)
                findings = self.check_text(spec.kind, d.text_zh, d.text_en, products, d.audience_risk)
                row = s.get(ScriptRow, spec.script_id)
                if row is None:
                    row = ScriptRow(
                        script_id=spec.script_id,
                        kind=spec.kind,
                        title_zh=spec.title_zh,
                        title_en=spec.title_en,
                        created_at=self._clock.now(),
                    )
                    s.add(row)
                    number = 1
                else:
                    if row.kind != spec.kind:
                        raise ConflictError("script id is taken by a script of another kind", script_id=spec.script_id)
                    row.title_zh, row.title_en = spec.title_zh, spec.title_en
                    latest = self._latest(s, spec.script_id)
                    same = (latest.text_zh, latest.text_en, tuple(latest.product_ids or ()), latest.audience_risk)
                    if same == (d.text_zh.strip(), d.text_en.strip(), products, d.audience_risk):
                        continue
                    number = latest.version + 1
                self._new_version(s, row, number, d.text_zh, d.text_en, author, products, d.audience_risk, findings)
                written += 1
            s.flush()
        return written

    def latest_texts(self, script_ids: Collection[str]) -> dict[str, tuple[str, str]]:
        """``{script_id: (text_zh, text_en)}`` of each script's newest version, any state (for editorial export)."""
        out: dict[str, tuple[str, str]] = {}
        with self._session() as s:
            wanted = sorted(set(script_ids))
            for i in range(0, len(wanted), 500):
                rows = s.scalars(
                    select(ScriptVersionRow)
                    .where(ScriptVersionRow.script_id.in_(wanted[i : i + 500]))
                    .order_by(ScriptVersionRow.script_id, ScriptVersionRow.version)
                )
                for v in rows:
                    out[v.script_id] = (v.text_zh, v.text_en)
        return out

    def submit(self, script_id: str, version: int) -> ScriptVersion:
        """Re-run the check on a draft and move it to ``checked``; raises ConflictError for other states."""
        with self._session(write=True) as s:
            row, v = self._script(s, script_id), self._version_row(s, script_id, version)
            if v.state != "draft":
                raise ConflictError("only a draft can be submitted for review", state=v.state)
            v.findings = self._findings_of(row, v)
            v.state = "checked"
            v.checked_at = self._clock.now()
            return to_version(row, v)

    def approve(
        self, script_id: str, version: int, reviewer: Reviewer, *, override_reason: str | None = None
    ) -> ScriptVersion:
        """Approve a checked version (see the module docstring for the rules).

        Raises :class:`PermissionDeniedError` without the compliance role or when the reviewer wrote the version,
        :class:`ConflictError` when the version is not ``checked`` or still has findings and no override reason.
        """
        if APPROVER_ROLE not in reviewer.roles:
            raise PermissionDeniedError("approving a script needs the compliance role")
        reason = (override_reason or "").strip() or None
        with self._session(write=True) as s:
            row, v = self._script(s, script_id), self._version_row(s, script_id, version)
            if v.state != "checked":
                raise ConflictError("only a checked version can be approved", state=v.state)
            if v.author == reviewer.user_id:
                raise PermissionDeniedError("the author of a version cannot approve it")
            v.findings = self._findings_of(row, v)
            if v.findings and reason is None:
                raise ConflictError(
                    "the check found problems; fix them or record an override reason", findings=len(v.findings)
                )
            now = self._clock.now()
            for old in s.scalars(
                select(ScriptVersionRow).where(
                    ScriptVersionRow.script_id == script_id, ScriptVersionRow.state == "approved"
                )
            ):
                old.state, old.retired_at = "retired", now
            v.state, v.approved_by, v.approved_at = "approved", reviewer.user_id, now
            v.override_reason = reason if v.findings else None
            return to_version(row, v)

    def retire(self, script_id: str, version: int) -> ScriptVersion:
        """Take a version out of use (any state but retired); raises ConflictError if already retired."""
        with self._session(write=True) as s:
            row, v = self._script(s, script_id), self._version_row(s, script_id, version)
            if v.state == "retired":
                raise ConflictError("version is already retired")
            v.state, v.retired_at = "retired", self._clock.now()
            return to_version(row, v)

    def check_text(
        self,
        kind: str,
        text_zh: str,
        text_en: str,
        product_ids: Collection[str] = (),
        audience_risk: str | None = None,
    ) -> builtins.list[ScriptFinding]:
        """Findings for a text pair without storing anything (for a live preview while editing)."""
        if audience_risk is not None and audience_risk not in CUSTOMER_RISKS:
            raise InvalidInputError("audience risk must be C1-C5", value=audience_risk)
        if not text_zh.strip() and not text_en.strip():
            raise InvalidInputError("a script needs a text in at least one language")
        products = [self._catalog.get(pid) for pid in dict.fromkeys(product_ids)]  # NotFoundError if unknown
        out: builtins.list[ScriptFinding] = []
        for lang, text in (("zh", text_zh), ("en", text_en)):
            if not text.strip():
                continue
            named = [
                ScriptProduct(p.product_id, p.name_zh if lang == "zh" else p.name_en, p.category, p.risk_grade)
                for p in products
            ]
            ctx = ScriptContext(
                kind=kind,  # type: ignore[arg-type]
                products=named,
                audience_risk=audience_risk,
                bank_names=self._bank_names,
            )
            for f in self._checker.check(text, ctx):
                out.append(
                    ScriptFinding(
                        rule_id=f.rule_id,
                        lang=lang,
                        start=f.start,
                        end=f.end,
                        message=f.message,
                        matched=f.matched,
                    )
                )
        return out

    # --- reads -----------------------------------------------------------------------------------------------

    def approved(self, script_id: str) -> ApprovedScript:
        """The approved version of ``script_id``; :class:`NotFoundError` when there is none (or no such script)."""
        with self._session() as s:
            row = s.get(ScriptRow, script_id)
            v = s.scalar(
                select(ScriptVersionRow).where(
                    ScriptVersionRow.script_id == script_id, ScriptVersionRow.state == "approved"
                )
            )
            if row is None or v is None:
                raise NotFoundError("no approved version of this script", script_id=script_id)
            return to_approved(row, v)

    def approved_all(self, kind: str | None = None) -> builtins.list[ApprovedScript]:
        """Every approved script (of one ``kind`` if given), ordered by id."""
        query = (
            select(ScriptRow, ScriptVersionRow)
            .join(ScriptVersionRow, ScriptVersionRow.script_id == ScriptRow.script_id)
            .where(ScriptVersionRow.state == "approved")
            .order_by(ScriptRow.script_id)
        )
        if kind is not None:
            query = query.where(ScriptRow.kind == kind)
        with self._session() as s:
            return [to_approved(r, v) for r, v in s.execute(query).all()]

    def approved_for_product(self, product_id: str, kind: str | None = "marketing") -> builtins.list[ApprovedScript]:
        """Approved scripts (marketing by default) that are about ``product_id``: the product's sales scripts."""
        return [s for s in self.approved_all(kind) if product_id in s.product_ids]

    def versions(self, script_id: str) -> builtins.list[ScriptVersion]:
        """All versions of a script, oldest first (editorial read); raises NotFoundError."""
        with self._session() as s:
            row = self._script(s, script_id)
            rows = s.scalars(
                select(ScriptVersionRow)
                .where(ScriptVersionRow.script_id == script_id)
                .order_by(ScriptVersionRow.version)
            )
            return [to_version(row, v) for v in rows]

    def specs(self, kind: str | None = None) -> builtins.list[ScriptSpec]:
        """Every script's id, kind and titles, ordered by id."""
        query = select(ScriptRow).order_by(ScriptRow.script_id)
        if kind is not None:
            query = query.where(ScriptRow.kind == kind)
        with self._session() as s:
            return [
                ScriptSpec.model_validate(
                    {"script_id": r.script_id, "kind": r.kind, "title_zh": r.title_zh, "title_en": r.title_en}
                )
                for r in s.scalars(query)
            ]

    # --- internals -------------------------------------------------------------------------------------------

    def _findings_of(self, row: ScriptRow, v: ScriptVersionRow) -> builtins.list[dict[str, object]]:
        found = self.check_text(row.kind, v.text_zh, v.text_en, v.product_ids or (), v.audience_risk)
        return [f.model_dump() for f in found]

    def _new_version(
        self,
        s: Session,
        row: ScriptRow,
        number: int,
        text_zh: str,
        text_en: str,
        author: str,
        product_ids: Sequence[str],
        audience_risk: str | None,
        findings: Sequence[ScriptFinding],
    ) -> ScriptVersionRow:
        v = ScriptVersionRow(
            script_id=row.script_id,
            version=number,
            state="draft",
            text_zh=text_zh.strip(),
            text_en=text_en.strip(),
            product_ids=list(product_ids),
            audience_risk=audience_risk,
            findings=[f.model_dump() for f in findings],
            author=author,
            created_at=self._clock.now(),
        )
        s.add(v)
        return v

    @staticmethod
    def _script(s: Session, script_id: str) -> ScriptRow:
        row = s.get(ScriptRow, script_id)
        if row is None:
            raise NotFoundError("unknown script", script_id=script_id)
        return row

    @staticmethod
    def _version_row(s: Session, script_id: str, version: int) -> ScriptVersionRow:
        v = s.scalar(
            select(ScriptVersionRow).where(ScriptVersionRow.script_id == script_id, ScriptVersionRow.version == version)
        )
        if v is None:
            raise NotFoundError("unknown script version", script_id=script_id, version=version)
        return v

    @staticmethod
    def _latest(s: Session, script_id: str) -> ScriptVersionRow:
        v = s.scalar(
            select(ScriptVersionRow)
            .where(ScriptVersionRow.script_id == script_id)
            .order_by(ScriptVersionRow.version.desc())
            .limit(1)
        )
        if v is None:
            raise NotFoundError("script has no versions", script_id=script_id)
        return v

    def _session(self, *, write: bool = False, within: Session | None = None) -> AbstractContextManager[Session]:
        return nullcontext(within) if within is not None else session_scope(self._sessions, write=write)
