"""YAML and CSV import/export of the question library, answers included.

YAML (the demo bank's files in ``voxdesk/demo/questions/`` have this shape)::

    category: cards                 # optional default for the items
    questions:
      - id: cards.report_lost_card
        skill_group: cards
        text_zh: 信用卡丢了怎么挂失
        text_en: How do I report a lost card?
        paraphrases: {zh: [...], en: [...]}
        answer: {zh: ..., en: ...}
        products: [{id: CC-PLAT, reason_zh: ..., reason_en: ...}]
        status: active              # optional

CSV: the columns :data:`CSV_COLUMNS`; lists (paraphrases, product ids and their reasons) are separated by ``|``.

Parsing validates every entry and raises :class:`ImportRejectedError` naming each bad entry by its line in the file
(YAML: the line where the item starts; CSV: the row's line, header = 1), so an import writes all or nothing. Pure
functions, no I/O besides what the caller passes in.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml
from pydantic import ValidationError

from core.errors import ImportRejectedError, InvalidInputError, RowError
from knowledge.library import Question

__all__ = [
    "CSV_COLUMNS",
    "LibraryEntry",
    "answer_script_id",
    "dump_csv",
    "dump_yaml",
    "merge_files",
    "parse_csv",
    "parse_yaml",
]

CSV_COLUMNS: tuple[str, ...] = (
    "id",
    "category",
    "skill_group",
    "text_zh",
    "text_en",
    "paraphrases_zh",
    "paraphrases_en",
    "answer_zh",
    "answer_en",
    "product_ids",
    "product_reasons_zh",
    "product_reasons_en",
    "status",
)
_SEP = "|"
MAX_ENTRIES = 20_000


@dataclass(frozen=True)
class LibraryEntry:
    """A question with the answer text that goes with it (becomes a draft of its answer script)."""

    question: Question
    answer_zh: str = ""
    answer_en: str = ""
    line: int = 0
    """Where the entry starts in its file (1-based), for error messages."""


def answer_script_id(question_id: str) -> str:
    """The id of a question's answer script: ``answer.<question id>``."""
    return f"answer.{question_id}"


# --- YAML ----------------------------------------------------------------------------------------------------


def parse_yaml(text: str, *, known_products: Callable[[Collection[str]], set[str]]) -> list[LibraryEntry]:
    """Validate a YAML library file; raises :class:`ImportRejectedError` (every bad item, by line)."""
    try:
        doc = yaml.safe_load(text)
        node = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        raise ImportRejectedError("the YAML file cannot be parsed", [RowError(line, None, str(exc)[:200])]) from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("questions"), list):
        raise ImportRejectedError("not a question library file", [RowError(1, "questions", "a 'questions' list")])
    lines = item_lines(node, "questions")
    default_category = doc.get("category")
    raw: list[tuple[int, dict[str, Any]]] = []
    errors: list[RowError] = []
    for i, item in enumerate(doc["questions"]):
        line = lines[i] if i < len(lines) else 1
        if not isinstance(item, dict):
            errors.append(RowError(line, None, "each question must be a mapping"))
            continue
        raw.append((line, item))
    entries = _validate([(line, _from_yaml_item(item, default_category)) for line, item in raw], errors, known_products)
    return entries


def item_lines(node: yaml.Node | None, key: str) -> list[int]:
    """The 1-based line where each item of the top-level list ``key`` starts (for error messages)."""
    if not isinstance(node, yaml.MappingNode):
        return []
    for name, value in node.value:
        if isinstance(name, yaml.ScalarNode) and name.value == key and isinstance(value, yaml.SequenceNode):
            return [item.start_mark.line + 1 for item in value.value]
    return []


def _from_yaml_item(item: Mapping[str, Any], default_category: Any) -> dict[str, Any]:
    paraphrases = item.get("paraphrases") or {}
    answer = item.get("answer") or {}
    products = item.get("products") or []
    return {
        "question_id": item.get("id"),
        "category": item.get("category", default_category),
        "skill_group": item.get("skill_group"),
        "text_zh": item.get("text_zh"),
        "text_en": item.get("text_en"),
        "paraphrases_zh": _list(paraphrases.get("zh") if isinstance(paraphrases, dict) else None),
        "paraphrases_en": _list(paraphrases.get("en") if isinstance(paraphrases, dict) else None),
        "answer_zh": answer.get("zh", "") if isinstance(answer, dict) else "",
        "answer_en": answer.get("en", "") if isinstance(answer, dict) else "",
        "products": [
            {"product_id": p.get("id"), "reason_zh": p.get("reason_zh", ""), "reason_en": p.get("reason_en", "")}
            if isinstance(p, dict)
            else {"product_id": p}
            for p in (products if isinstance(products, list) else [products])
        ],
        "status": item.get("status", "active"),
    }


def _list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def dump_yaml(entries: Iterable[LibraryEntry]) -> str:
    """The library as one YAML document (all categories; each item names its category)."""
    items = []
    for e in entries:
        q = e.question
        item: dict[str, Any] = {
            "id": q.question_id,
            "category": q.category,
            "skill_group": q.skill_group,
            "text_zh": q.text_zh,
            "text_en": q.text_en,
            "paraphrases": {"zh": list(q.paraphrases_zh), "en": list(q.paraphrases_en)},
            "answer": {"zh": e.answer_zh, "en": e.answer_en},
        }
        if q.products:
            item["products"] = [
                {"id": p.product_id, "reason_zh": p.reason_zh, "reason_en": p.reason_en} for p in q.products
            ]
        if q.status != "active":
            item["status"] = q.status
        items.append(item)
    return yaml.safe_dump({"questions": items}, allow_unicode=True, sort_keys=False, width=120)


# --- CSV ------------------------------------------------------------------------------------------------------


def parse_csv(text: str, *, known_products: Callable[[Collection[str]], set[str]]) -> list[LibraryEntry]:
    """Validate a CSV library file (columns :data:`CSV_COLUMNS`); raises :class:`ImportRejectedError`."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = reader.fieldnames or []
    missing = [c for c in ("id", "category", "skill_group", "text_zh", "text_en") if c not in header]
    if missing:
        raise ImportRejectedError("the CSV header lacks required columns", [RowError(1, c, "missing") for c in missing])
    unknown = [c for c in header if c not in CSV_COLUMNS]
    if unknown:
        raise ImportRejectedError("the CSV header has unknown columns", [RowError(1, c, "unknown") for c in unknown])
    errors: list[RowError] = []
    raw: list[tuple[int, dict[str, Any]]] = []
    for row in reader:
        line = reader.line_num
        ids, zh, en = (
            _split(row.get("product_ids")),
            _split(row.get("product_reasons_zh")),
            _split(row.get("product_reasons_en")),
        )
        if (zh and len(zh) != len(ids)) or (en and len(en) != len(ids)):
            errors.append(RowError(line, "product_reasons_zh", "give one reason per product id (or none)"))
            continue
        raw.append(
            (
                line,
                {
                    "question_id": row.get("id"),
                    "category": row.get("category"),
                    "skill_group": row.get("skill_group"),
                    "text_zh": row.get("text_zh"),
                    "text_en": row.get("text_en"),
                    "paraphrases_zh": _split(row.get("paraphrases_zh")),
                    "paraphrases_en": _split(row.get("paraphrases_en")),
                    "answer_zh": row.get("answer_zh") or "",
                    "answer_en": row.get("answer_en") or "",
                    "products": [
                        {"product_id": pid, "reason_zh": zh[i] if zh else "", "reason_en": en[i] if en else ""}
                        for i, pid in enumerate(ids)
                    ],
                    "status": row.get("status") or "active",
                },
            )
        )
        if len(raw) > MAX_ENTRIES:
            raise InvalidInputError("too many questions in one import", limit=MAX_ENTRIES)
    return _validate(raw, errors, known_products)


def _split(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(_SEP) if v.strip()]


def dump_csv(entries: Iterable[LibraryEntry]) -> str:
    """The library as CSV with the columns :data:`CSV_COLUMNS` (lists joined by ``|``)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for e in entries:
        q = e.question
        writer.writerow(
            {
                "id": q.question_id,
                "category": q.category,
                "skill_group": q.skill_group,
                "text_zh": q.text_zh,
                "text_en": q.text_en,
                "paraphrases_zh": _SEP.join(q.paraphrases_zh),
                "paraphrases_en": _SEP.join(q.paraphrases_en),
                "answer_zh": e.answer_zh,
                "answer_en": e.answer_en,
                "product_ids": _SEP.join(p.product_id for p in q.products),
                "product_reasons_zh": _SEP.join(p.reason_zh for p in q.products) if q.products else "",
                "product_reasons_en": _SEP.join(p.reason_en for p in q.products) if q.products else "",
                "status": q.status,
            }
        )
    return out.getvalue()


# --- validation -------------------------------------------------------------------------------------------------


def _validate(
    raw: Sequence[tuple[int, dict[str, Any]]],
    errors: list[RowError],
    known_products: Callable[[Collection[str]], set[str]],
) -> list[LibraryEntry]:
    entries: list[LibraryEntry] = []
    seen: dict[str, int] = {}
    for line, fields in raw:
        answer_zh = str(fields.pop("answer_zh") or "").strip()
        answer_en = str(fields.pop("answer_en") or "").strip()
        if any(_SEP in p for p in [*fields["paraphrases_zh"], *fields["paraphrases_en"]] if isinstance(p, str)):
            errors.append(RowError(line, "paraphrases", f"a paraphrase may not contain '{_SEP}'"))
            continue
        try:
            question = Question.model_validate(
                {
                    **fields,
                    "answer_script_id": answer_script_id(str(fields["question_id"]))
                    if answer_zh or answer_en
                    else None,
                }
            )
        except ValidationError as exc:
            for err in exc.errors()[:5]:
                column = ".".join(str(p) for p in err["loc"]) or None
                errors.append(RowError(line, column, err["msg"]))
            continue
        if question.question_id in seen:
            errors.append(RowError(line, "id", f"duplicate of the question at line {seen[question.question_id]}"))
            continue
        seen[question.question_id] = line
        entries.append(LibraryEntry(question, answer_zh, answer_en, line))
    wanted = {p.product_id for e in entries for p in e.question.products}
    known = known_products(wanted) if wanted else set()
    for e in entries:
        for p in e.question.products:
            if p.product_id not in known:
                errors.append(RowError(e.line, "products", f"unknown product {p.product_id}"))
    if errors:
        raise ImportRejectedError("the question library import was rejected", sorted(errors, key=lambda r: r.row))
    return entries


def merge_files(parsed: Sequence[Sequence[LibraryEntry]], names: Sequence[str]) -> list[LibraryEntry]:
    """Join entries of several files; raises :class:`InvalidInputError` when an id appears in two files."""
    where: dict[str, str] = {}
    out: list[LibraryEntry] = []
    for entries, name in zip(parsed, names, strict=True):
        for e in entries:
            qid = e.question.question_id
            if qid in where:
                raise InvalidInputError(
                    "a question id appears in two files", question_id=qid, first=where[qid], second=name
                )
            where[qid] = name
            out.append(e)
    return out
