"""Folders of recordings with a metadata CSV: validation is all-or-nothing with line numbers."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.errors import ImportRejectedError, InvalidInputError
from qa.imports import read_metadata, scan_folder

pytestmark = pytest.mark.unit

HEADER = "call_id,agent,customer_phone,start_time,direction,team\n"


def folder_with(tmp_path: Path, *names: str) -> Path:
    for name in names:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"RIFF")
    return tmp_path


def test_rows_become_recordings_with_normalised_metadata(tmp_path: Path) -> None:
    folder = folder_with(tmp_path, "c1.wav", "sub/c2.flac", "c3.mp3")
    csv = HEADER + (
        "c1,1001,138 0013 8000,2026-11-30T09:15:00+08:00,inbound,cards\nc2,1002,,2026-11-30 10:00:00,outbound,\n"
    )
    (folder / "metadata.csv").write_text(csv, encoding="utf-8")
    found = scan_folder(folder, default_tz="Asia/Shanghai")
    by_id = {r.meta.call_id: r for r in found.recordings}
    assert set(by_id) == {"c1", "c2"} and [p.name for p in found.unlisted] == ["c3.mp3"]
    c1, c2 = by_id["c1"].meta, by_id["c2"].meta
    assert c1.customer_phone == "+8613800138000" and c1.agent_id == "1001" and c1.team == "cards"
    assert c1.started_at == datetime(2026, 11, 30, 1, 15, tzinfo=UTC)
    assert c2.direction == "outbound" and c2.customer_phone is None and c2.started_at is not None
    assert c2.started_at.utcoffset() is not None and by_id["c2"].path.name == "c2.flac"


def test_every_bad_row_is_named_and_nothing_is_imported(tmp_path: Path) -> None:
    folder = folder_with(tmp_path, "c1.wav", "c2.wav")
    csv = HEADER + (
        "c1,1001,not-a-phone,2026-11-30T09:15:00Z,inbound,\n"
        "c1,1001,,yesterday,sideways,\n"
        "c9,1001,,2026-11-30T09:15:00Z,inbound,\n"
    )
    with pytest.raises(ImportRejectedError) as info:
        read_metadata(csv, folder)
    rows = [(e.row, e.column) for e in info.value.rows]
    assert rows == [(2, "customer_phone"), (3, "call_id"), (3, "start_time"), (3, "direction"), (4, "file")]


def test_files_must_stay_inside_the_folder(tmp_path: Path) -> None:
    folder = folder_with(tmp_path / "in", "c1.wav")
    (tmp_path / "secret.wav").write_bytes(b"RIFF")
    csv = "call_id,start_time,direction,file\nc1,2026-11-30T09:00:00Z,inbound,../secret.wav\n"
    with pytest.raises(ImportRejectedError) as info:
        read_metadata(csv, folder)
    assert info.value.rows[0].column == "file" and "inside" in info.value.rows[0].reason


def test_missing_and_unknown_columns_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ImportRejectedError, match="lacks columns"):
        read_metadata("call_id,agent\nc1,1\n", tmp_path)
    with pytest.raises(ImportRejectedError, match="unknown columns"):
        read_metadata("call_id,start_time,direction,colour\n", tmp_path)


def test_a_folder_without_metadata_imports_every_file(tmp_path: Path) -> None:
    folder = folder_with(tmp_path, "a.wav", "b.FLAC", "notes.txt")
    found = scan_folder(folder)
    assert sorted(r.meta.call_id for r in found.recordings) == ["a", "b"]
    with pytest.raises(InvalidInputError, match="not a folder"):
        scan_folder(tmp_path / "nope")
