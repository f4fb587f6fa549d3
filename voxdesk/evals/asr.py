"""``voxdesk eval asr``: word/character error rates and real-time factor of the recogniser on a manifest.

Manifest: JSON lines ``{"audio": path relative to the manifest, "text": reference, "lang": "zh"|"en",
"channel"?: index of one channel of a multi-channel file, "id"?: name}``. English is scored by WER, Chinese by CER,
both after :func:`asr.normalize.normalize_for_scoring` on reference and hypothesis alike; corpus rates are summed
errors over summed reference length. ``--telephone`` first sends the audio through the phone network's codec
(16 → 8 kHz, G.711 μ-law, back to 16 kHz). ``--baseline`` also runs a plain faster-whisper loop (greedy, the
language given, the prompt 以下是普通话的句子。 for Chinese, lowercase + no punctuation as the only normalisation)
so both numbers are side by side. Runs in the CLI process, blocking, on ``models.threads`` CPU threads.
"""

from __future__ import annotations

import json
import sys
import time
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, cast

import numpy as np
import numpy.typing as npt
import typer

from asr.base import SAMPLE_RATE_HZ, DecodeOptions, LangChoice
from asr.metrics import ErrorCounts, char_errors, error_counts, word_errors
from core.audio import mix_to_mono, read_audio, resample, ulaw_decode, ulaw_encode
from core.errors import InvalidInputError, VoxdeskError
from core.logging import get_logger

if TYPE_CHECKING:
    from asr.backends.faster_whisper import FasterWhisperRecognizer
    from voxdesk.settings import Settings

__all__ = ["ClipResult", "ManifestEntry", "load_manifest", "load_pcm16k", "register", "telephone_band"]

log = get_logger(__name__)
BASELINE_ZH_PROMPT = "以下是普通话的句子。"
TELEPHONE_RATE_HZ = 8_000


@dataclass(frozen=True)
class ManifestEntry:
    """One reference clip."""

    id: str
    audio: Path
    text: str
    lang: Literal["zh", "en"]
    channel: int | None = None


@dataclass
class ClipResult:
    """Scores of one clip: ``counts`` for the recogniser, ``baseline`` for the plain loop (when run)."""

    entry: ManifestEntry
    hypothesis: str
    counts: ErrorCounts
    audio_ms: float
    compute_ms: float
    baseline: ErrorCounts | None = None
    baseline_ms: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


def load_manifest(path: Path) -> list[ManifestEntry]:
    """Parse a JSON-lines manifest; audio paths are resolved relative to its folder. Raises
    :class:`InvalidInputError` naming the first bad line."""
    entries: list[ManifestEntry] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            lang = raw["lang"]
            if lang not in ("zh", "en"):
                raise ValueError(lang)
            channel = raw.get("channel")
            audio = path.parent / str(raw["audio"])
            name = str(raw.get("id") or audio.stem + (f"#ch{channel}" if channel is not None else ""))
            index = None if channel is None else int(channel)
            entries.append(ManifestEntry(name, audio, str(raw["text"]), lang, index))
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidInputError("bad manifest line", line=number) from exc
    return entries


def telephone_band(pcm16k: npt.NDArray[np.int16]) -> npt.NDArray[np.int16]:
    """What a G.711 phone call leaves of 16 kHz PCM16: resample to 8 kHz, μ-law encode and decode, back to 16 kHz."""
    narrow = resample(pcm16k, SAMPLE_RATE_HZ, TELEPHONE_RATE_HZ)
    return resample(ulaw_decode(ulaw_encode(narrow)), TELEPHONE_RATE_HZ, SAMPLE_RATE_HZ)


def load_pcm16k(entry: ManifestEntry, *, telephone: bool = False) -> npt.NDArray[np.int16]:
    """Mono 16 kHz PCM16 of one manifest entry (its ``channel`` or, without one, all channels mixed)."""
    clip = read_audio(entry.audio)
    samples = clip.samples
    if entry.channel is not None:
        if clip.channels <= entry.channel:
            raise InvalidInputError("manifest channel is not in the audio file", channel=entry.channel)
        samples = np.ascontiguousarray(samples[:, entry.channel]) if clip.channels > 1 else samples
    elif clip.channels > 1:
        samples = mix_to_mono(samples)
    if clip.sample_rate != SAMPLE_RATE_HZ:
        samples = resample(samples, clip.sample_rate, SAMPLE_RATE_HZ)
    return telephone_band(samples) if telephone else samples


def _trivial(text: str) -> str:
    """The baseline's only normalisation: lowercase, punctuation and symbols become spaces."""
    return "".join(" " if unicodedata.category(ch)[0] in "PS" else ch for ch in text.lower())


def _baseline(
    recognizer: FasterWhisperRecognizer, pcm: npt.NDArray[np.int16], entry: ManifestEntry, lang: Literal["zh", "en"]
) -> tuple[ErrorCounts, float]:
    """A plain faster-whisper loop: greedy, ``language`` given, the zh prompt, default temperature fallback."""
    started = time.perf_counter()
    segments, _ = recognizer.model.transcribe(
        pcm.astype(np.float32) / 32768.0,
        language=lang if recognizer.multilingual else None,
        beam_size=1,
        initial_prompt=BASELINE_ZH_PROMPT if lang == "zh" else None,
    )
    text = "".join(s.text for s in segments)
    elapsed = (time.perf_counter() - started) * 1000.0
    ref, hyp = _trivial(entry.text), _trivial(text)
    counts = word_errors(ref, hyp) if entry.lang == "en" else char_errors("".join(ref.split()), "".join(hyp.split()))
    return counts, elapsed


def evaluate(
    entries: Sequence[ManifestEntry],
    recognizer: FasterWhisperRecognizer,
    *,
    language: LangChoice | None,
    beam_size: int,
    zh_prompt: str | None,
    hotwords: Sequence[str],
    telephone: bool,
    baseline: bool,
) -> list[ClipResult]:
    """Recognise and score every entry (skipping ``zh`` ones on an English-only model); blocking."""
    results: list[ClipResult] = []
    for entry in entries:
        lang: LangChoice = language or entry.lang
        if not recognizer.multilingual and (entry.lang == "zh" or lang == "zh"):
            log.warning("skipping a Chinese clip: the model is English-only", clip=entry.id)
            continue
        pcm = load_pcm16k(entry, telephone=telephone)
        options = DecodeOptions(lang=lang, prompt=zh_prompt, beam_size=beam_size, hotwords=tuple(hotwords))
        result = recognizer.transcribe(pcm, options)
        clip = ClipResult(
            entry=entry,
            hypothesis=result.text,
            counts=error_counts(entry.text, result.text, entry.lang),
            audio_ms=len(pcm) * 1000.0 / SAMPLE_RATE_HZ,
            compute_ms=result.compute_ms,
            extra={"decoded_lang": result.lang, "confidence": result.confidence},
        )
        if baseline:
            clip.baseline, clip.baseline_ms = _baseline(recognizer, pcm, entry, result.lang if lang == "auto" else lang)
        log.info("clip scored", clip=entry.id, errors=clip.counts.errors, ref_len=clip.counts.ref_len)
        results.append(clip)
    return results


def _rate(counts: Sequence[ErrorCounts]) -> float | None:
    return sum(counts, ErrorCounts()).rate if counts else None


def summarise(results: Sequence[ClipResult], *, baseline: bool) -> dict[str, Any]:
    """Corpus totals as the JSON object of ``--json``."""
    en = [r for r in results if r.entry.lang == "en"]
    zh = [r for r in results if r.entry.lang == "zh"]
    audio_ms = sum(r.audio_ms for r in results)
    summary: dict[str, Any] = {
        "wer_en": _rate([r.counts for r in en]),
        "cer_zh": _rate([r.counts for r in zh]),
        "rtf": sum(r.compute_ms for r in results) / audio_ms if audio_ms else None,
        "n": len(results),
        "n_en": len(en),
        "n_zh": len(zh),
        "errors_en": sum(r.counts.errors for r in en),
        "words_en": sum(r.counts.ref_len for r in en),
        "errors_zh": sum(r.counts.errors for r in zh),
        "chars_zh": sum(r.counts.ref_len for r in zh),
    }
    if baseline:
        summary["baseline_wer_en"] = _rate([r.baseline for r in en if r.baseline is not None])
        summary["baseline_cer_zh"] = _rate([r.baseline for r in zh if r.baseline is not None])
        summary["baseline_rtf"] = sum(r.baseline_ms for r in results) / audio_ms if audio_ms else None
    return summary


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


def render(results: Sequence[ClipResult], summary: dict[str, Any], *, baseline: bool, show_text: bool) -> None:
    """Print the per-clip table and the totals to standard output."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title="ASR evaluation", show_footer=False)
    for name in ("clip", "lang", "errors/ref", "WER/CER", *(["baseline"] if baseline else []), "RTF"):
        table.add_column(name, justify="left" if name in ("clip", "lang") else "right")
    if show_text:
        table.add_column("hypothesis")
    for r in results:
        row = [r.entry.id, r.entry.lang, f"{r.counts.errors}/{r.counts.ref_len}", _pct(r.counts.rate)]
        if baseline:
            row.append(_pct(r.baseline.rate if r.baseline else None))
        row.append(f"{r.compute_ms / r.audio_ms:.3f}" if r.audio_ms else "—")
        if show_text:
            row.append(r.hypothesis)
        table.add_row(*row)
    table.add_section()
    for label, key, errors, ref in (
        ("total en (WER)", "wer_en", "errors_en", "words_en"),
        ("total zh (CER)", "cer_zh", "errors_zh", "chars_zh"),
    ):
        row = [label, "", f"{summary[errors]}/{summary[ref]}", _pct(summary[key])]
        if baseline:
            row.append(_pct(summary["baseline_" + key]))
        row.append(f"{summary['rtf']:.3f}" if summary["rtf"] is not None else "—")
        table.add_row(*row, *([""] if show_text else []))
    Console(width=200 if show_text else None).print(table)


def _build_recognizer(settings: Settings, model: Literal["base", "tiny.en"]) -> FasterWhisperRecognizer:
    from asr.backends.faster_whisper import FasterWhisperRecognizer
    from asr.models import whisper_model_path

    folder = whisper_model_path(model, settings.models.cache_dir)
    return FasterWhisperRecognizer(
        folder, compute_type=settings.models.compute_type, cpu_threads=settings.models.threads
    )


def register(eval_app: typer.Typer) -> None:
    """Add the ``asr`` command to the ``voxdesk eval`` group."""

    @eval_app.command("asr")
    def eval_asr(
        manifest: Annotated[Path, typer.Option(exists=True, dir_okay=False, help="JSON-lines manifest.")],
        telephone: Annotated[bool, typer.Option(help="Pass audio through 8 kHz G.711 μ-law first.")] = False,
        language: Annotated[str | None, typer.Option(help="Force zh, en or auto (default: each line's lang).")] = None,
        model: Annotated[str, typer.Option(help="Whisper model: base or tiny.en.")] = "base",
        beam: Annotated[int | None, typer.Option(help="Beam size (default: asr.batch_beam_size).")] = None,
        hotwords: Annotated[bool, typer.Option(help="Give asr.hotwords (bank vocabulary) to the decoder.")] = False,
        baseline: Annotated[bool, typer.Option(help="Also run the plain faster-whisper loop.")] = False,
        show_text: Annotated[bool, typer.Option(help="Add a column with each hypothesis.")] = False,
        as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object as the last line.")] = False,
    ) -> None:
        """Word error rate (English) and character error rate (Chinese) of the recogniser on a manifest."""
        from voxdesk.cli import _fail, _settings

        if language not in (None, "zh", "en", "auto"):
            raise typer.BadParameter("choose zh, en or auto", param_hint="--language")
        if model not in ("base", "tiny.en"):
            raise typer.BadParameter("choose base or tiny.en", param_hint="--model")
        settings = _settings()
        try:
            entries = load_manifest(manifest)
            recognizer = _build_recognizer(settings, cast(Literal["base", "tiny.en"], model))
            results = evaluate(
                entries,
                recognizer,
                language=cast(LangChoice | None, language),
                beam_size=beam or settings.asr.batch_beam_size,
                zh_prompt=settings.asr.zh_prompt,
                hotwords=settings.asr.hotwords if hotwords else (),
                telephone=telephone,
                baseline=baseline,
            )
        except VoxdeskError as exc:
            _fail(exc)
        summary = summarise(results, baseline=baseline)
        summary.update({"telephone": telephone, "language": language or "per-line", "model": model})
        summary["hotwords"] = hotwords
        summary["beam"] = beam or settings.asr.batch_beam_size
        render(results, summary, baseline=baseline, show_text=show_text)
        if as_json:
            sys.stdout.write(json.dumps(summary, ensure_ascii=False) + "\n")
