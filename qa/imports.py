"""Imported recordings: a folder of WAV/FLAC/MP3 files with a metadata CSV.

:func:`scan_folder` pairs every audio file of a folder with its metadata row and returns the jobs to inspect. The
CSV (``metadata.csv`` in the folder unless another path is given) has a header and the columns ``call_id``,
``agent`` (or ``agent_id``), ``customer_phone``, ``start_time`` (ISO 8601; without a zone it is read in
``default_tz``) and ``direction`` (``inbound``/``outbound``); optional ``team``, ``customer_id`` and ``file`` (a
path relative to the folder; default: the file whose stem is the call id) and ``channels`` (``mono`` to diarize
even a multi-channel file). Validation is all-or-nothing: any bad
row rejects the whole import with :class:`core.errors.ImportRejectedError` naming every bad row (line numbers,
header = 1), and nothing is queued. A folder without a CSV imports every audio file with its stem as call id and
no metadata. Blocking file I/O.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from core.errors import ImportRejectedError, InvalidInputError, RowError
from profiles.phones import normalise_phone
from qa.models import RecordingMeta

__all__ = ["AUDIO_SUFFIXES", "METADATA_FILE", "FolderImport", "ImportedRecording", "read_metadata", "scan_folder"]

AUDIO_SUFFIXES: Final = frozenset({".wav", ".flac", ".mp3"})
METADATA_FILE: Final = "metadata.csv"
_REQUIRED: Final = ("call_id", "start_time", "direction")
_KNOWN: Final = frozenset(
    {
        "call_id",
        "agent",
        "agent_id",
        "customer_phone",
        "start_time",
        "direction",
        "team",
        "customer_id",
        "file",
        "channels",
    }
)
_MAX_ROWS: Final = 1_000_000


@dataclass(frozen=True)
class ImportedRecording:
    """One file of an import with its metadata."""

    path: Path
    meta: RecordingMeta


@dataclass(frozen=True)
class FolderImport:
    """A validated folder: the recordings to inspect and the audio files no metadata row names (skipped)."""

    recordings: tuple[ImportedRecording, ...]
    unlisted: tuple[Path, ...]


def _audio_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)


def _inside(folder: Path, rel: str) -> Path | None:
    candidate = (folder / rel).resolve()
    root = folder.resolve()
    return candidate if candidate.is_relative_to(root) else None


def read_metadata(
    text: str, folder: Path, *, default_region: str = "CN", default_tz: str = "UTC"
) -> list[ImportedRecording]:
    """Validate a metadata CSV (its text) against ``folder``; raises :class:`ImportRejectedError`."""
    try:
        tz = ZoneInfo(default_tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidInputError(f"unknown time zone {default_tz!r}") from exc
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [c for c in _REQUIRED if c not in header]
    if missing:
        raise ImportRejectedError("the metadata CSV lacks columns", [RowError(1, c, "missing column") for c in missing])
    unknown = [h for h in header if h not in _KNOWN]
    if unknown:
        raise ImportRejectedError(
            "the metadata CSV has unknown columns", [RowError(1, c, "unknown column") for c in unknown]
        )
    by_stem = {p.stem: p for p in _audio_files(folder)}
    errors: list[RowError] = []
    seen: dict[str, int] = {}
    out: list[ImportedRecording] = []
    for line, raw in enumerate(reader, start=2):
        if line > _MAX_ROWS:
            errors.append(RowError(line, None, f"more than {_MAX_ROWS} rows"))
            break
        row = {k.strip(): (v or "").strip() for k, v in raw.items() if k is not None}
        row_errors: list[RowError] = []
        call_id = row.get("call_id", "")
        if not call_id or len(call_id) > 64 or any(c in call_id for c in "/\\\0"):
            row_errors.append(RowError(line, "call_id", "call_id is required (at most 64 characters, no slashes)"))
        elif call_id in seen:
            row_errors.append(RowError(line, "call_id", f"duplicate of line {seen[call_id]}"))
        else:
            seen[call_id] = line
        started = _parse_time(row.get("start_time", ""), tz)
        if started is None:
            row_errors.append(RowError(line, "start_time", "not an ISO 8601 date and time"))
        direction = row.get("direction", "").lower()
        if direction not in ("inbound", "outbound"):
            row_errors.append(RowError(line, "direction", "must be inbound or outbound"))
        phone: str | None = None
        if row.get("channels", "").lower() not in ("", "mono", "stereo"):
            row_errors.append(RowError(line, "channels", "must be mono or stereo"))
        if row.get("customer_phone"):
            try:
                phone = normalise_phone(row["customer_phone"], default_region)
            except InvalidInputError:
                row_errors.append(RowError(line, "customer_phone", "not a valid phone number"))
        path = _row_file(folder, row.get("file", ""), call_id, by_stem, line, row_errors)
        if row_errors:
            errors.extend(row_errors)
            continue
        assert path is not None and started is not None
        agent = row.get("agent_id") or row.get("agent") or None
        meta = RecordingMeta(
            call_id=call_id,
            agent_id=agent,
            customer_phone=phone,
            started_at=started,
            direction=direction,  # type: ignore[arg-type]
            team=row.get("team") or None,
            customer_id=row.get("customer_id") or None,
            extra={"channels": "mono"} if row.get("channels", "").lower() == "mono" else {},
        )
        out.append(ImportedRecording(path, meta))
    if errors:
        raise ImportRejectedError("the metadata CSV was rejected; nothing was imported", errors)
    return out


def _row_file(
    folder: Path, rel: str, call_id: str, by_stem: dict[str, Path], line: int, errors: list[RowError]
) -> Path | None:
    if rel:
        path = _inside(folder, rel)
        if path is None:
            errors.append(RowError(line, "file", "the file must be inside the import folder"))
        elif path.suffix.lower() not in AUDIO_SUFFIXES:
            errors.append(RowError(line, "file", "not a WAV, FLAC or MP3 file"))
        elif not path.is_file():
            errors.append(RowError(line, "file", "no such file in the folder"))
        else:
            return path
        return None
    found = by_stem.get(call_id)
    if found is None and call_id:
        errors.append(RowError(line, "file", "no audio file named after this call_id"))
    return found


def _parse_time(text: str, tz: ZoneInfo) -> datetime | None:
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=tz)


def scan_folder(
    folder: Path, *, metadata: Path | None = None, default_region: str = "CN", default_tz: str = "UTC"
) -> FolderImport:
    """Validate a folder of recordings (see the module docstring); raises :class:`InvalidInputError` for a
    missing folder and :class:`ImportRejectedError` for a bad CSV."""
    if not folder.is_dir():
        raise InvalidInputError(f"not a folder: {folder}")
    csv_path = metadata or folder / METADATA_FILE
    files = _audio_files(folder)
    if not csv_path.is_file():
        if metadata is not None:
            raise InvalidInputError(f"no such metadata file: {metadata}")
        recs = tuple(ImportedRecording(p, RecordingMeta(call_id=p.stem[:64])) for p in files)
        return FolderImport(recs, ())
    try:
        text = csv_path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"cannot read the metadata CSV {csv_path.name}: {exc}") from exc
    recs_list = read_metadata(text, folder, default_region=default_region, default_tz=default_tz)
    listed = {r.path.resolve() for r in recs_list}
    unlisted = tuple(p for p in files if p.resolve() not in listed)
    return FolderImport(tuple(recs_list), unlisted)
