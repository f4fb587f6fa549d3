"""Reading CSV uploads for all-or-nothing imports: decoding, header checks, rows with their line numbers.

Importers validate every row first and raise :class:`core.errors.ImportRejectedError` naming each bad row by its
line number in the file (the header is line 1); nothing is written unless every row is good.
"""

from __future__ import annotations

import csv
import io

from core.errors import ImportRejectedError, InvalidInputError, PayloadTooLargeError, RowError

__all__ = ["DEFAULT_MAX_BYTES", "MAX_ERRORS", "decode_csv", "read_rows"]

DEFAULT_MAX_BYTES = 50 * 1024 * 1024
"""Largest CSV upload accepted (bytes)."""
MAX_ERRORS = 1000
"""At most this many row errors are reported."""


def decode_csv(data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> str:
    """Decode CSV bytes: UTF-8 (with or without BOM, as Excel writes it), else GB18030 (GBK superset).

    Raises :class:`PayloadTooLargeError` above ``max_bytes`` and :class:`InvalidInputError` for binary data.
    """
    if len(data) > max_bytes:
        raise PayloadTooLargeError("CSV file is larger than the upload limit", max_bytes=max_bytes)
    if b"\x00" in data[:4096]:
        raise InvalidInputError("file is not CSV text (it contains NUL bytes)")
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise InvalidInputError("CSV is neither UTF-8 nor GB18030 text")


def read_rows(
    text: str, required: tuple[str, ...], allowed: tuple[str, ...]
) -> tuple[list[tuple[int, dict[str, str]]], list[RowError]]:
    """CSV rows as ``(line number, row)`` with values stripped, blank rows skipped, and the row errors found
    while reading (ragged rows, malformed quoting). A bad header (a required column missing, an unknown column) or
    no data rows rejects the file at line 1."""
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
        header = [h.strip() for h in (reader.fieldnames or [])]
    except csv.Error as exc:
        raise ImportRejectedError("CSV could not be read", [RowError(1, None, str(exc))]) from exc
    missing = [c for c in required if c not in header]
    unknown = [c for c in header if c not in allowed]
    problems = [RowError(1, c, "required column missing") for c in missing]
    problems += [RowError(1, c, "unknown column") for c in unknown]
    if len(set(header)) != len(header):
        problems.append(RowError(1, None, "a column appears twice"))
    if problems:
        raise ImportRejectedError("CSV header rejected, nothing was imported", problems)
    reader.fieldnames = header
    rows: list[tuple[int, dict[str, str]]] = []
    errors: list[RowError] = []
    line = 1  # the last line read completely
    try:
        for record in reader:
            line = reader.line_num
            if None in record:
                errors.append(RowError(line, None, "more fields than the header"))
                continue
            if any(v is None for v in record.values()):
                errors.append(RowError(line, None, "fewer fields than the header"))
                continue
            if not any(v.strip() for v in record.values()):
                continue
            rows.append((line, {k: v.strip() for k, v in record.items()}))
    except csv.Error as exc:  # the bad record starts on the line after the last good one
        errors.append(RowError(line + 1, None, f"malformed CSV: {exc}"))
    if not rows and not errors:
        raise ImportRejectedError("CSV has no data rows", [RowError(1, None, "no data rows")])
    return rows, errors
