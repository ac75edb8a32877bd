"""Per-layer embeddings extracted elsewhere (another toolkit, another modality) as a cached feature set.

A researcher brings ``.npy`` of shape (N, L+1, D), or ``.npz`` holding one such array or one (N, D)
array per hidden state (ordered by the number in their names: ``layer_0``, ``layer_1`` ...), plus a
labels table (CSV or TSV with a header: ``word`` or ``class`` or ``label``, optional ``speaker`` and
``path``). Everything is checked before anything is written: ``.npy`` headers are read first (shape,
dtype, byte size: no allocation from a forged header, no pickles), dtypes must be real floats, N must
match the table, the total is capped, and every value must be finite (checked in chunks while copying).
The result is an ordinary feature-cache entry (``core.data.features``: same layout, checksum and
meta), keyed by the content of the arrays and the table, so every page and command uses it; its
model is ``imported:<name>``, which names no encoder, so fine-tuning says it needs a model.
Uploads (the Setup page) go through :func:`import_uploaded`: the streams are copied to a private temp
folder and imported by the same function, under a smaller cap.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import hashlib
import io
import re
import shutil
import tempfile
import time
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

from core.data.datasets import ClipTable
from core.data.features import (
    IMPORTED_DATASET,
    CacheEntry,
    FeatureSet,
    commit_entry,
    entry_lock,
    entry_part,
    feature_key,
    read_valid_entry,
    write_rows,
)
from core.errors import FeatureError, StorageError
from core.io.npy import NpyHeader, read_npy_header

__all__ = [
    "ARRAY_SUFFIXES",
    "ClipAudio",
    "IMPORTED_FAMILY",
    "IMPORTED_PREFIX",
    "LABEL_SUFFIXES",
    "MAX_IMPORT_BYTES",
    "MAX_UPLOAD_BYTES",
    "clip_audio",
    "import_features",
    "import_uploaded",
    "is_imported",
    "row_name",
]

IMPORTED_FAMILY = "imported"
ROW_NAME_RE = re.compile(r"row-\d+")
IMPORTED_PREFIX = "imported:"  # model_key / model_id of an imported set: it names no encoder
MAX_IMPORT_BYTES = 64 << 30  # float32 copy in the cache; larger sets belong on a bigger machine
MAX_UPLOAD_BYTES = 2 << 30  # float32 copy of a dashboard upload (an .npz can inflate far beyond it)
MAX_ROWS = 10_000_000
FLOAT_KINDS = ("f",)
CHUNK_BYTES = 64 << 20  # source bytes read per block while copying
WORD_COLUMNS = ("word", "class", "label")
ARRAY_SUFFIXES = (".npy", ".npz")
LABEL_SUFFIXES = (".csv", ".tsv")
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,80}")


def is_imported(model: str | None, dataset: str | None = None) -> bool:
    """Whether a model key (or a dataset) names an imported feature set rather than an encoder."""
    return str(model or "").startswith(IMPORTED_PREFIX) or dataset == IMPORTED_DATASET


@dataclass(frozen=True)
class _ArraySpec:
    """One ``.npy`` (a file, or a member of an ``.npz``): where it is and what its header declares."""

    source: Path
    member: str | None
    header: NpyHeader

    @property
    def shape(self) -> tuple[int, ...]:
        """The declared shape."""
        return self.header.shape

    def open(self) -> IO[bytes]:
        """The raw ``.npy`` bytes (the file, or the zip member)."""
        if self.member is None:
            return open(self.source, "rb")  # noqa: SIM115 (the caller closes it)
        return zipfile.ZipFile(self.source).open(self.member)

    def load(self) -> np.ndarray:
        """The array (a memmap for a plain ``.npy``); pickles are refused."""
        if self.member is None:
            return np.load(self.source, mmap_mode="r", allow_pickle=False)
        with self.open() as fh:
            return np.lib.format.read_array(fh, allow_pickle=False)

    def row_blocks(self) -> Iterator[tuple[int, np.ndarray]]:
        """(first row, block) over the array in blocks of about ``CHUNK_BYTES``, in bounded memory
        whatever its order: a plain ``.npy`` through a memmap; an ``.npz`` member streamed from the
        archive, or, Fortran-ordered (rows not contiguous), first spooled to a private temporary
        file in blocks and read through a memmap of it."""
        shape, dtype = self.header.shape, self.header.dtype
        row_bytes = max(1, int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize)
        rows = max(1, CHUNK_BYTES // row_bytes)
        if self.member is None:
            source = self.load()
            for start in range(0, shape[0], rows):
                yield start, source[start : start + rows]
            return
        if self.header.fortran:
            yield from self._spooled_blocks(rows)
            return
        with self.open() as fh:
            read_npy_header(fh)  # positioned at the data
            for start in range(0, shape[0], rows):
                count = min(rows, shape[0] - start)
                raw = fh.read(count * row_bytes)
                if len(raw) != count * row_bytes:
                    raise FeatureError(f"{self.member}: the array ends before its declared shape")
                yield start, np.frombuffer(raw, dtype=dtype).reshape((count, *shape[1:]))

    def _spooled_blocks(self, rows: int) -> Iterator[tuple[int, np.ndarray]]:
        """Row blocks of a Fortran-ordered ``.npz`` member, copied to a temporary file block by block."""
        shape, dtype = self.header.shape, self.header.dtype
        with tempfile.TemporaryFile(prefix="convexity-lab-spool-") as spool:
            with self.open() as fh:
                read_npy_header(fh)
                left = self.header.total_bytes - self.header.length
                while left > 0:
                    chunk = fh.read(min(CHUNK_BYTES, left))
                    if not chunk:
                        raise FeatureError(
                            f"{self.member}: the array ends before its declared shape"
                        )
                    spool.write(chunk)
                    left -= len(chunk)
            spool.flush()
            source = np.memmap(spool, dtype=dtype, mode="r", shape=shape, order="F")
            for start in range(0, shape[0], rows):
                yield start, np.array(source[start : start + rows])
            del source


def _header(fh: IO[bytes], name: str) -> NpyHeader:
    """The header of a ``.npy`` stream, read without its data; real float dtypes only."""
    try:
        header = read_npy_header(fh)
    except (ValueError, OSError, EOFError) as exc:
        raise FeatureError(f"{name}: not a .npy array ({exc})") from None
    if header.dtype.hasobject or header.dtype.kind not in FLOAT_KINDS:
        raise FeatureError(f"{name}: dtype {header.dtype} is not a real float (float16/32/64)")
    return header


def _npy_spec(path: Path) -> _ArraySpec:
    """The spec of a plain ``.npy``, its size checked against the header."""
    with open(path, "rb") as fh:
        header = _header(fh, path.name)
    if path.stat().st_size != header.total_bytes:
        raise FeatureError(f"{path.name}: the header declares {header.shape}, not its file size")
    return _ArraySpec(path, None, header)


def _natural(name: str) -> tuple:
    """Sort key: the numbers in a name as numbers (``layer_10`` after ``layer_9``)."""
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name))


def _npz_specs(path: Path) -> list[_ArraySpec]:
    """The specs of an ``.npz``'s members, each checked against its declared uncompressed size."""
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise FeatureError(f"{path.name}: not an .npz archive ({exc})") from None
    specs = []
    with zf:
        infos = [i for i in zf.infolist() if not i.is_dir()]
        if not infos or len(infos) > 10_000:
            raise FeatureError(f"{path.name}: expected 1 to 10,000 arrays, found {len(infos)}")
        for info in sorted(infos, key=lambda i: _natural(i.filename)):
            if not info.filename.endswith(".npy") or info.flag_bits & 0x1:
                raise FeatureError(
                    f"{path.name}: member {info.filename[:80]!r} is not a plain .npy"
                )
            with zf.open(info) as fh:
                header = _header(fh, f"{path.name}:{info.filename}")
            if info.file_size != header.total_bytes:
                raise FeatureError(f"{path.name}:{info.filename}: header and size disagree")
            specs.append(_ArraySpec(path, info.filename, header))
    return specs


def _layout(
    path: Path, max_bytes: int = MAX_IMPORT_BYTES
) -> tuple[list[_ArraySpec], tuple[int, int, int]]:
    """The arrays and the (N, L+1, D) they make: one 3-D array, or one 2-D array per hidden state."""
    if not path.is_file():
        raise FeatureError(f"no features file at {path}")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        specs = [_npy_spec(path)]
        if len(specs[0].shape) != 3:
            raise FeatureError(
                f"{path.name}: a .npy must hold one (N, L+1, D) array, got {specs[0].shape}; "
                "put one (N, D) array per hidden state in an .npz instead"
            )
    elif suffix == ".npz":
        specs = _npz_specs(path)
    else:
        raise FeatureError(f"{path.name}: expected a .npy or .npz file")
    if len(specs) == 1 and len(specs[0].shape) == 3:
        n, states, d = specs[0].shape
    elif all(len(s.shape) == 2 for s in specs):
        shapes = {s.shape for s in specs}
        if len(shapes) != 1:
            raise FeatureError(
                f"{path.name}: the per-layer arrays differ in shape: {sorted(shapes)}"
            )
        (n, d), states = specs[0].shape, len(specs)
    else:
        got = ", ".join(str(s.shape) for s in specs[:4])
        raise FeatureError(
            f"{path.name}: expected one (N, L+1, D) array or one (N, D) array per hidden state, got {got}"
        )
    if n < 2 or states < 1 or d < 1 or n > MAX_ROWS:
        raise FeatureError(
            f"{path.name}: shape ({n}, {states}, {d}) has too few or too many entries"
        )
    if 4 * n * states * d > max_bytes:
        raise FeatureError(
            f"{path.name}: {4 * n * states * d / 2**30:.1f} GiB as float32 exceeds "
            f"{max_bytes / 2**30:.0f} GiB"
        )
    return specs, (n, states, d)


def row_name(i: int) -> str:
    """The clip path of an imported row whose table gives none."""
    return f"row-{i}"


@dataclass(frozen=True)
class ClipAudio:
    """Where a clip's audio is, or why there is none to play (one line for the page)."""

    file: Path | None
    note: str = ""


def clip_audio(dataset: str, root: str | Path, path: str) -> ClipAudio:
    """The audio file of a clip (``root`` / ``path``), or a note: imported rows without a path have
    no audio, an imported path missing under the clip folder says so, other clips name the missing file."""
    imported = dataset == IMPORTED_DATASET
    if imported and ROW_NAME_RE.fullmatch(path):
        return ClipAudio(None, "no audio: imported rows without a 'path' column have no clip file")
    file = Path(root) / path
    if file.is_file():
        return ClipAudio(file)
    if imported:
        return ClipAudio(
            None, f"no audio: imported clip {path!r} is not in the clip folder given at import"
        )
    return ClipAudio(None, f"audio file not found: {file}")


@dataclass(frozen=True)
class _Labels:
    """The labels table: one word (class) and speaker per row, and a path or a row name."""

    paths: tuple[str, ...]
    words: tuple[str, ...]
    speakers: tuple[str, ...]
    sha256: str


def _labels(path: Path) -> _Labels:
    """Parse the CSV/TSV labels table (header row; word/class/label, optional speaker and path)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise FeatureError(f"cannot read the labels table {path.name}: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FeatureError(
            f"{path.name}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
            "save the table as UTF-8"
        ) from None
    text = text.replace("\r\n", "\n").replace("\r", "\n")  # old Mac line ends too
    delimiter = "\t" if path.suffix.lower() == ".tsv" or "\t" in text.split("\n", 1)[0] else ","
    try:
        return _parse_labels(path, text, delimiter, hashlib.sha256(raw).hexdigest())
    except csv.Error as exc:
        raise FeatureError(f"{path.name}: not a readable table ({exc})") from None


def _parse_labels(path: Path, text: str, delimiter: str, sha256: str) -> _Labels:
    """The labels table's rows (csv.Error where the text is not a table)."""
    reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
    columns = {c.strip().lower(): c for c in reader.fieldnames or () if c}
    word_col = next((columns[c] for c in WORD_COLUMNS if c in columns), None)
    if word_col is None:
        raise FeatureError(
            f"{path.name}: needs a header with a 'word' (or 'class', 'label') column; "
            f"found {sorted(columns) or 'no header'}"
        )
    rows = list(reader)
    if len(rows) > MAX_ROWS:
        raise FeatureError(f"{path.name}: more than {MAX_ROWS:,} rows")
    words = tuple(str(r.get(word_col) or "").strip() for r in rows)
    if any(not w for w in words):
        first = next(i for i, w in enumerate(words) if not w)
        raise FeatureError(f"{path.name}: row {first + 2} has no {word_col!r}")
    spk_col, path_col = columns.get("speaker"), columns.get("path")
    speakers = (
        tuple(str(r.get(spk_col) or "-").strip() or "-" for r in rows)
        if spk_col
        else ("-",) * len(rows)
    )
    paths = (
        tuple(str(r.get(path_col) or row_name(i)) for i, r in enumerate(rows))
        if path_col
        else tuple(row_name(i) for i in range(len(rows)))
    )
    return _Labels(paths, words, speakers, sha256)


def _check_finite(block: np.ndarray, first_row: int, state: int | None) -> None:
    """FeatureError naming the first non-finite value of a float32 block (a float64 value too
    large for float32 becomes inf here, and is refused too)."""
    bad = ~np.isfinite(block)
    if bad.any():
        at = np.argwhere(bad)[0]
        row, layer = first_row + int(at[0]), state if state is not None else int(at[1])
        raise FeatureError(f"non-finite value at row {row}, hidden state {layer}")


def _filler(
    specs: list[_ArraySpec], progress: Callable[[int, int], None] | None = None
) -> Callable[[np.ndarray], None]:
    """Copy the arrays into the (N, L+1, D) float32 memmap in bounded memory, checking finiteness:
    row blocks of one 3-D array, or one hidden state at a time from per-layer arrays.
    ``progress(done, total)`` counts (row, hidden state) vectors copied."""

    def fill(out: np.ndarray) -> None:
        n, states = out.shape[:2]
        done = 0

        def advance(vectors: int) -> None:
            nonlocal done
            done += vectors
            if progress is not None:
                progress(done, n * states)

        if len(specs) == 1 and len(specs[0].shape) == 3:
            for start, raw in specs[0].row_blocks():
                block = np.asarray(raw, dtype=np.float32)
                _check_finite(block, start, None)
                out[start : start + len(block)] = block
                advance(len(block) * states)
            return
        for state, spec in enumerate(specs):
            for start, raw in spec.row_blocks():
                block = np.asarray(raw, dtype=np.float32)
                _check_finite(block, start, state)
                out[start : start + len(block), state, :] = block
                advance(len(block))

    return fill


@contextlib.contextmanager
def _damaged_archive(path: Path) -> Iterator[None]:
    """A FeatureError (one line) for an archive that breaks while its members are read: a bad CRC,
    a truncated or corrupt deflate stream."""
    try:
        yield
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise FeatureError(f"{path.name}: the archive is damaged ({exc})") from None


def _content_sha(specs: list[_ArraySpec]) -> str:
    """sha256 of the arrays' raw bytes (headers included), in layer order."""
    h = hashlib.sha256()
    for spec in specs:
        h.update((spec.member or spec.source.name).encode() + b"\0")
        with spec.open() as fh:
            for block in iter(functools.partial(fh.read, 1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def import_features(
    arrays: str | Path,
    labels: str | Path,
    *,
    name: str | None = None,
    root: str | Path | None = None,
    max_bytes: int = MAX_IMPORT_BYTES,
    progress: Callable[[int, int], None] | None = None,
) -> FeatureSet:
    """Bring externally extracted embeddings and their labels into the feature cache; the FeatureSet.

    ``name`` names the representation (default: the features file's stem); ``root`` is the folder the
    table's clip paths are relative to (default: the features file's folder); ``max_bytes`` caps the
    float32 copy; ``progress(done, total)`` counts the vectors checked and copied. Importing the same
    files again returns the cached set.
    """
    arrays, labels = Path(arrays), Path(labels)
    specs, (n, states, d) = _layout(arrays, max_bytes)
    table_labels = _labels(labels)
    if len(table_labels.words) != n:
        raise FeatureError(
            f"{labels.name} has {len(table_labels.words)} rows but {arrays.name} has {n} points"
        )
    name = name or arrays.stem
    if not NAME_RE.fullmatch(name):
        raise FeatureError(f"name {name!r}: use letters, digits, '.', '_' and '-' (at most 81)")
    t0 = time.perf_counter()
    with _damaged_archive(arrays):
        weights = f"sha256:{_content_sha(specs)}"
    identity = {
        "model_key": f"imported:{name}",
        "model_id": f"imported:{name}",
        "source": "imported",
        "weights": weights,
        "input_mode": "features",
        "n_layers": states - 1,
    }
    clip_root = Path(root).expanduser() if root is not None else arrays.parent
    if not clip_root.is_dir():
        raise FeatureError(f"no folder at {clip_root} (the folder the clip paths are relative to)")
    table = ClipTable(
        root=clip_root.resolve(),
        dataset=IMPORTED_DATASET,
        paths=table_labels.paths,
        words=table_labels.words,
        speakers=table_labels.speakers,
        word_split=("all",) * n,
        speaker_split=("all",) * n,
    )
    selection = {
        "dataset": IMPORTED_DATASET,
        "table": "custom",
        "labels_sha256": table_labels.sha256,
    }
    key = feature_key(identity, table_labels.sha256, selection)
    entry = CacheEntry(key, identity, table, table_labels.sha256, selection)
    found, _ = read_valid_entry(entry.directory, key)
    if found is not None:
        return found
    with entry_lock(key):
        found, _ = read_valid_entry(entry.directory, key)
        if found is not None:
            return found
        with entry_part(entry.directory) as tmp, _damaged_archive(arrays):
            write_rows(tmp, (n, states, d), _filler(specs, progress))
        facts = {
            "n_layers": states - 1,
            "hidden_size": d,
            "family": IMPORTED_FAMILY,
            "describe": f"imported:{name} ({states} hidden states x {d}, from {arrays.name})",
            "final_layer_norm": False,
            "device": "none (imported)",
            "autocast": None,
            "pooling": "as imported",
        }
        seconds = time.perf_counter() - t0
        stats = {"seconds": round(seconds, 3), "clips_per_s": None}
        return commit_entry(entry, tmp, facts, list(range(n)), [], stats)


def _upload_name(filename: str, suffixes: tuple[str, ...], what: str) -> str:
    """A safe file name for an uploaded file: its stem reduced to the name characters, its suffix checked."""
    suffix = Path(filename).suffix.lower()
    if suffix not in suffixes:
        raise FeatureError(
            f"{what} {filename[:80]!r}: expected a {' or '.join(suffixes)} file, got {suffix or 'none'}"
        )
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(filename).stem).strip("-._") or what
    return stem[:81] + suffix


def import_uploaded(
    arrays: IO[bytes],
    arrays_name: str,
    labels: IO[bytes],
    labels_name: str,
    *,
    name: str | None = None,
    root: str | Path | None = None,
    max_bytes: int = MAX_UPLOAD_BYTES,
    progress: Callable[[int, int], None] | None = None,
) -> FeatureSet:
    """:func:`import_features` for uploaded streams (the Setup page): each is copied to a private temp
    folder under a safe name, imported with the same checks and ``max_bytes`` cap, and removed.

    ``name`` defaults to the features file's stem; ``root`` (optional) is the folder the clip paths
    are relative to (default: the home folder; absolute paths in the table work either way).
    """
    arrays_file = _upload_name(arrays_name, ARRAY_SUFFIXES, "features file")
    labels_file = _upload_name(labels_name, LABEL_SUFFIXES, "labels table")
    if root is not None and not str(root).strip():
        root = None
    try:
        folder = Path(tempfile.mkdtemp(prefix="convexity-lab-upload-"))
    except OSError as exc:
        raise StorageError(f"cannot write a temporary file: {exc.strerror or exc}") from None
    try:
        for stream, file in ((arrays, arrays_file), (labels, labels_file)):
            stream.seek(0)
            with open(folder / file, "wb") as out:
                shutil.copyfileobj(stream, out, 1 << 20)
        return import_features(
            folder / arrays_file,
            folder / labels_file,
            name=name or Path(arrays_file).stem,
            root=root if root is not None else Path.home(),
            max_bytes=max_bytes,
            progress=progress,
        )
    except OSError as exc:
        if isinstance(exc, StorageError):
            raise
        raise StorageError(f"cannot write the upload to {folder}: {exc.strerror or exc}") from None
    finally:
        shutil.rmtree(folder, ignore_errors=True)
