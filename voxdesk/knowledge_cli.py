"""``voxdesk knowledge …``: import, export, list, retire and search the question library and scripts.

Imports are all or nothing and write **drafts**; approving a script needs a compliance officer (REST API or the
knowledge page), never the command line. Blocking; for operators on the server machine.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from core.errors import ImportRejectedError, InvalidInputError, VoxdeskError

knowledge_app = typer.Typer(help="Question library, scripts and knowledge indexes.", no_args_is_help=True)

__all__ = ["knowledge_app"]


def _print_rejected(exc: ImportRejectedError) -> None:
    for row in exc.rows:
        print(f"line {row.row}" + (f" [{row.column}]" if row.column else "") + f": {row.reason}", file=sys.stderr)


@knowledge_app.command("import")
def import_files(
    files: Annotated[list[Path], typer.Argument(exists=True, dir_okay=False, help="YAML or CSV library files.")],
    scripts: Annotated[
        bool, typer.Option("--scripts", help="The files are scripts YAML (marketing/outbound).")
    ] = False,
    author: Annotated[str, typer.Option(help="Recorded as the author of the drafts.")] = "cli",
) -> None:
    """Import questions (with their answers as drafts) or scripts (new or changed ones as drafts); all files or
    nothing."""
    from knowledge.library_import import import_library
    from knowledge.library_io import merge_files, parse_csv, parse_yaml
    from knowledge.script_io import parse_scripts_yaml
    from voxdesk.cli import _container, _fail

    container = _container()
    known = container.catalog.known_ids
    try:
        if scripts:
            drafts = [
                d for path in files for d in parse_scripts_yaml(path.read_text(encoding="utf-8"), known_products=known)
            ]
            written = container.scripts.draft_many(drafts, author=author)
            print(f"{len(drafts)} scripts read, {written} new drafts (unchanged ones left alone)")
            return
        parsed = []
        for path in files:
            text = path.read_text(encoding="utf-8")
            parser = parse_csv if path.suffix.lower() == ".csv" else parse_yaml
            parsed.append(parser(text, known_products=known))
        entries = merge_files(parsed, [p.name for p in files])
        result = import_library(container.sessions, container.library, container.scripts, entries, author=author)
    except ImportRejectedError as exc:
        _print_rejected(exc)
        _fail(exc)
    except (VoxdeskError, UnicodeDecodeError) as exc:
        _fail(exc if isinstance(exc, VoxdeskError) else InvalidInputError("file is not UTF-8 text"))
    print(f"{result.total} questions read, {result.questions} created or changed, {result.answer_drafts} answer drafts")


@knowledge_app.command("export")
def export_library(
    fmt: Annotated[str, typer.Option("--format", help="yaml or csv.")] = "yaml",
    out: Annotated[Path | None, typer.Option(help="File to write (default: standard output).")] = None,
) -> None:
    """Export the whole library (answers in their newest version, any review state)."""
    from knowledge.library_import import export_entries
    from knowledge.library_io import dump_csv, dump_yaml
    from voxdesk.cli import _container

    if fmt not in ("yaml", "csv"):
        raise typer.BadParameter("choose yaml or csv", param_hint="--format")
    container = _container()
    entries = export_entries(container.library, container.scripts)
    text = dump_yaml(entries) if fmt == "yaml" else dump_csv(entries)
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding="utf-8")
        print(f"{len(entries)} questions written to {out}")


@knowledge_app.command("list")
def list_questions(category: Annotated[str | None, typer.Option(help="Only this category.")] = None) -> None:
    """The active questions: id, skill group, answer state, English text."""
    from voxdesk.cli import _container, _fail

    container = _container()
    try:
        questions = container.library.list(category=category)
    except VoxdeskError as exc:
        _fail(exc)
    approved = {s.script_id for s in container.scripts.approved_all(kind="answer")}
    for q in questions:
        state = "approved" if q.answer_script_id in approved else "pending" if q.answer_script_id else "none"
        print(f"{q.question_id:48} {q.skill_group:12} answer:{state:9} {q.text_en}")
    print(f"{len(questions)} questions")


@knowledge_app.command("retire")
def retire_question(question_id: str) -> None:
    """Retire a question (kept for history; no longer classified, matched or offered)."""
    from voxdesk.cli import _container, _fail

    try:
        _container().library.retire(question_id)
    except VoxdeskError as exc:
        _fail(exc)
    print(f"{question_id} retired")


@knowledge_app.command("index")
def refresh_indexes() -> None:
    """Bring the FAISS indexes up to date (only changed texts are embedded) and save them."""
    from voxdesk.cli import _container, _fail

    try:
        updates = _container().indexes().refresh()
    except VoxdeskError as exc:
        _fail(exc)
    if not updates:
        print("indexes are up to date")
    for name, u in updates.items():
        print(f"{name}: {u.embedded} embedded, {u.reused} reused, {u.removed} removed in {u.seconds:.1f} s")


@knowledge_app.command("search")
def search(
    text: str,
    k: Annotated[int, typer.Option(min=1, max=20)] = 5,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Match an utterance against the library and show each question's approved answer."""
    from voxdesk.cli import _container

    indexes = _container().indexes()
    rows = []
    for m in indexes.match_questions(text, k):
        answer = indexes.answer_for(m.question_id)
        version = answer.version if answer else None
        rows.append({"question_id": m.question_id, "score": round(m.score, 3), "matched": m.matched, "answer": version})
        print(f"{m.score:6.3f}  {m.question_id:44} {m.matched}")
    if as_json:
        sys.stdout.write(json.dumps({"matches": rows}, ensure_ascii=False) + "\n")


@knowledge_app.command("classify")
def classify(
    text: str,
    k: Annotated[int, typer.Option(min=1, max=20)] = 3,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Classify an utterance against the question library (trains on first use: seconds)."""
    from voxdesk.cli import _container

    intents = _container().intents()
    result = intents.classify(text, k)
    for s in result.top:
        print(f"{s.confidence:6.3f}  {s.label}")
    print("out of scope" if result.out_of_scope else f"intent: {result.label}")
    if as_json:
        top = [{"question_id": s.label, "confidence": round(s.confidence, 4)} for s in result.top]
        sys.stdout.write(json.dumps({"top": top, "out_of_scope": result.out_of_scope}) + "\n")


@knowledge_app.command("retrieval-set")
def retrieval_set(
    out: Annotated[Path, typer.Option(file_okay=False, help="Folder for corpus.jsonl and queries.jsonl.")],
    keep: Annotated[int, typer.Option(min=0, help="Paraphrases per language kept in the corpus.")] = 2,
) -> None:
    """Write retrieval and intent test sets from the library: the corpus (and intents_train.csv) holds each
    question's standard texts and its first ``keep`` paraphrases per language; every other paraphrase is a query
    (and a row of intents_test.csv) whose relevant ids / label are its question's."""
    from voxdesk.cli import _container

    questions = _container().library.list()
    out.mkdir(parents=True, exist_ok=True)
    corpus: list[dict[str, str]] = []
    queries: list[dict[str, object]] = []
    for q in questions:
        for lang, standard, paraphrases in (("zh", q.text_zh, q.paraphrases_zh), ("en", q.text_en, q.paraphrases_en)):
            for n, text in enumerate([standard, *paraphrases[:keep]]):
                corpus.append({"id": f"{q.question_id}#{lang}{n}", "text": text, "question_id": q.question_id})
            for text in paraphrases[keep:]:
                queries.append({"text": text, "relevant": [], "question_id": q.question_id, "lang": lang})
    by_question: dict[str, list[str]] = {}
    for row in corpus:
        by_question.setdefault(row["question_id"], []).append(row["id"])
    for query in queries:
        query["relevant"] = by_question[str(query["question_id"])]
    with (out / "intents_train.csv").open("w", encoding="utf-8", newline="") as train_file:
        writer = csv.writer(train_file)
        writer.writerow(["text", "label"])
        writer.writerows([row["text"], row["question_id"]] for row in corpus)
    with (out / "intents_test.csv").open("w", encoding="utf-8", newline="") as test_file:
        writer = csv.writer(test_file)
        writer.writerow(["text", "label"])
        writer.writerows([q["text"], q["question_id"]] for q in queries)
    (out / "corpus.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in corpus), "utf-8")
    (out / "queries.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in queries), "utf-8")
    print(f"{len(corpus)} passages, {len(queries)} queries (and intents_train.csv / intents_test.csv) in {out}")
