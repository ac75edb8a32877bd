"""The one dataset/task registry: where clips live, their word/speaker labels and their splits.

Adding a dataset is adding an entry to :data:`DATASETS`. Every clip carries two labels, ``word`` (its
folder) and ``speaker``, so the same features serve both tasks (:data:`TASKS`).

Split rules
-----------
- **words**: if the root holds ``validation_list.txt`` / ``testing_list.txt`` (the official Speech
  Commands lists; entries are matched on ``<word>/<file stem>`` so ``.wav`` lists also fit ``.flac``
  files), a listed clip is in ``validation`` / ``test`` and every other clip in ``train``. Without lists
  (plain ``folder`` datasets) the words split uses the seeded per-class rule below, per word.
- **speakers**: per speaker, that speaker's clips are sorted by relative path and shuffled with a
  generator seeded by ``sha256(f"{split_seed}:{speaker}")``; the first 80 % go to ``train``, the next
  10 % to ``validation``, the rest to ``test`` (with >= 3 clips, validation and test get at least one
  each). Each clip lands in exactly one split, so nothing leaks; a speaker's split does not depend on
  which other speakers exist or on ``min_clips``. ``split_seed`` defaults to 0.
- ``min_clips`` (speakers task) keeps speakers with at least that many clips in the whole dataset
  (all words, all splits), counted before splitting. The default is a property of the registry entry
  (:attr:`DatasetSpec.default_min_clips`): 50 for Speech Commands (the authors' rule; the paper
  reports 388 speakers), 10 for the bundled sample and plain folders. :func:`speaker_rule` applies it;
  ``select`` and the ``datasets`` command both go through it, so every command keeps the same speakers.
- ``max_clips`` subsampling is stratified and seeded: every class keeps at least one clip (when
  ``max_clips`` >= number of classes), the rest is shared in proportion to class size (largest
  remainder), and within a class the clips are a prefix of a permutation seeded by
  ``sha256(f"{seed}:{class}")``, so the same seed gives the same clips and a larger ``max_clips``
  gives a superset.

Speaker ids
-----------
A clip's speaker is read from its file name by a regular expression (:func:`compile_speaker_regex`):
the group named ``speaker`` if the pattern has one, else its first group. Each registry entry has a
default (the Speech Commands ``<speaker>_nohash_<n>`` convention); ``speaker_regex=`` overrides it.

Fingerprint
-----------
:meth:`ClipTable.fingerprint` hashes, per clip, the relative path, labels, splits, file size and
``st_mtime_ns`` as found on disk *when called* (one ``stat`` per file, ~1 s for 105k clips), not file
contents (hashing 3 GB of audio would take minutes). Editing, replacing or touching a file changes it.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.data.audio import AUDIO_EXTENSIONS
from core.errors import DatasetError
from core.io.paths import REPO_ROOT, cache_dir

TASKS = ("words", "speakers")
SPLITS = ("train", "validation", "test")
SPEAKER_FRACTIONS = (0.8, 0.1, 0.1)
HASH_DIVIDER = "_nohash_"
BACKGROUND_NOISE = "_background_noise_"
VALIDATION_LIST = "validation_list.txt"
TESTING_LIST = "testing_list.txt"

SPEECH_COMMANDS_URL = "http://download.tensorflow.org/data/speech_commands_v0.02.tar.gz"
# The checksum torchaudio 2.11 states for this URL (torchaudio/datasets/speechcommands.py, _CHECKSUMS).
SPEECH_COMMANDS_SHA256 = "af14739ee7dc311471de98f5f9d2c9191b18aedfe957f4a6ff791c709868ff58"
SPEECH_COMMANDS_ENV = "CONVEXITY_LAB_SPEECH_COMMANDS"
DEFAULT_SPEAKER_REGEX = r"^(.+?)_nohash_"
SPEAKER_GROUP = "speaker"  # a speaker regex's named group; without one, its first group

ProgressFn = Callable[[int, int], None]


@dataclass(frozen=True)
class DatasetSpec:
    """One registry entry: how to find a dataset's root and how to read its labels."""

    key: str
    title: str
    description: str
    layout: str  # "speech_commands" (official layout, lists required) or "folder"
    default_min_clips: int  # speakers task: keep speakers with at least this many clips
    default_root: Callable[[], Path] | None = None
    speaker_regex: str = DEFAULT_SPEAKER_REGEX
    url: str | None = None
    sha256: str | None = None
    download_size: str | None = None

    @property
    def downloadable(self) -> bool:
        """Whether :func:`load_table` can fetch this dataset with ``download=True``."""
        return self.url is not None

    @property
    def speaker_rule(self) -> str:
        """The speakers-task rule of this dataset in words (what ``datasets`` prints)."""
        return f"speakers with >= {self.default_min_clips} clips"


def _sample_root() -> Path:
    return REPO_ROOT / "data" / "sample"


def _speech_commands_root() -> Path:
    env = os.environ.get(SPEECH_COMMANDS_ENV)
    return Path(env) if env else cache_dir() / "datasets" / "speech_commands_v0.02"


DATASETS: dict[str, DatasetSpec] = {
    "sample": DatasetSpec(
        key="sample",
        title="Bundled sample (synthetic speakers)",
        description="Small spoken-word set shipped in data/sample, Speech Commands layout, works offline.",
        layout="speech_commands",
        default_min_clips=10,
        default_root=_sample_root,
    ),
    "speech-commands": DatasetSpec(
        key="speech-commands",
        title="Speech Commands v0.02",
        description="105,829 one-second clips, 35 words, 2,618 speakers (Warden 2018), official layout.",
        layout="speech_commands",
        default_min_clips=50,
        default_root=_speech_commands_root,
        url=SPEECH_COMMANDS_URL,
        sha256=SPEECH_COMMANDS_SHA256,
        download_size="2.3 GB",
    ),
    "folder": DatasetSpec(
        key="folder",
        title="Any labelled audio folder",
        description="<root>/<label>/<clip>.(wav|flac|ogg); speaker id from the file name by a regex.",
        layout="folder",
        default_min_clips=10,
    ),
}


def get_dataset(key: str) -> DatasetSpec:
    """Look up a registry entry, with an error that lists the known keys."""
    try:
        return DATASETS[key]
    except KeyError:
        known = ", ".join(sorted(DATASETS))
        raise DatasetError(f"unknown dataset {key!r}; known datasets: {known}") from None


def compile_speaker_regex(regex: str) -> re.Pattern[str]:
    """Compile a speaker regex; a :class:`DatasetError` (one line) when it is invalid or has no group.

    The speaker id is the group named ``speaker`` when there is one, else the first group.
    """
    try:
        pattern = re.compile(regex)
    except re.error as exc:
        raise DatasetError(
            f"speaker regex {regex!r} is not a valid regular expression: {exc}"
        ) from None
    if pattern.groups < 1:
        raise DatasetError(
            f"speaker regex {regex!r} has no group: mark the speaker id with (?P<{SPEAKER_GROUP}>...) "
            r"or a first group, e.g. '^([^_]+)_'"
        )
    return pattern


def speaker_from_name(pattern: re.Pattern[str], name: str) -> str:
    """The speaker id in file name ``name`` ("" when the pattern does not match or the group is empty)."""
    m = pattern.search(name)
    if m is None:
        return ""
    group: str | int = SPEAKER_GROUP if SPEAKER_GROUP in pattern.groupindex else 1
    return m.group(group) or ""


def _check_task(task: str) -> None:
    if task not in TASKS:
        raise DatasetError(f"unknown task {task!r}; tasks: {', '.join(TASKS)}")


def label_set(task: str) -> str:
    """The label set a task classifies: ``words`` -> ``word``, ``speakers`` -> ``speaker``."""
    _check_task(task)
    return task.removesuffix("s")


def _stable_rng(*parts: object) -> np.random.Generator:
    """A generator seeded from a hash of ``parts`` (Python's ``hash`` is salted per process)."""
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


@dataclass(frozen=True)
class ClipTable:
    """Clips of one dataset: relative paths, both labels, and the split of each clip per task."""

    root: Path
    dataset: str
    paths: tuple[str, ...]
    words: tuple[str, ...]
    speakers: tuple[str, ...]
    word_split: tuple[str, ...]
    speaker_split: tuple[str, ...]
    split_seed: int = 0
    notes: tuple[str, ...] = field(default=())

    def __len__(self) -> int:
        return len(self.paths)

    def abs_paths(self) -> list[Path]:
        """Absolute file paths, in table order (what :func:`core.data.audio.load_clips` takes)."""
        return [self.root / p for p in self.paths]

    def labels(self, task: str) -> tuple[str, ...]:
        """The label of every clip for ``task`` ("words" -> word, "speakers" -> speaker)."""
        _check_task(task)
        return self.words if task == "words" else self.speakers

    def splits(self, task: str) -> tuple[str, ...]:
        """The split ("train"/"validation"/"test") of every clip for ``task``."""
        _check_task(task)
        return self.word_split if task == "words" else self.speaker_split

    def take(self, indices: Sequence[int] | np.ndarray) -> ClipTable:
        """A sub-table of the given rows (in the given order), e.g. the clips that loaded."""
        idx = [int(i) for i in indices]

        def pick(seq: tuple[str, ...]) -> tuple[str, ...]:
            return tuple(seq[i] for i in idx)

        return ClipTable(
            root=self.root,
            dataset=self.dataset,
            paths=pick(self.paths),
            words=pick(self.words),
            speakers=pick(self.speakers),
            word_split=pick(self.word_split),
            speaker_split=pick(self.speaker_split),
            split_seed=self.split_seed,
            notes=self.notes,
        )

    def fingerprint(self) -> str:
        """Stable hex digest of paths, labels, splits, sizes and mtimes now on disk: a cache key."""
        h = hashlib.sha256()
        h.update(f"{self.dataset}\0{self.split_seed}\0{len(self)}\n".encode())
        for i, rel in enumerate(self.paths):
            try:
                st = os.stat(self.root / rel)
                size, mtime = st.st_size, st.st_mtime_ns
            except FileNotFoundError:
                size, mtime = -1, -1
            row = (
                rel,
                self.words[i],
                self.speakers[i],
                self.word_split[i],
                self.speaker_split[i],
                str(size),
                str(mtime),
            )
            h.update("\0".join(row).encode() + b"\n")
        return h.hexdigest()


# ---------------------------------------------------------------------------------------------
# Scanning


def _read_list(path: Path) -> set[str]:
    """Entries of a split list as ``<word>/<stem>`` keys (extension-free, forward slashes)."""
    keys = set()
    for line in path.read_text().splitlines():
        line = line.strip().replace("\\", "/")
        if line:
            keys.add(os.path.splitext(line)[0])
    return keys


def _seeded_split(groups: Sequence[str], paths: Sequence[str], seed: int) -> list[str]:
    """Per group, shuffle its clips (sorted by path) with a seed from (seed, group); 80/10/10."""
    by_group: dict[str, list[int]] = {}
    for i, g in enumerate(groups):
        by_group.setdefault(g, []).append(i)
    out = [""] * len(paths)
    for g, idx in by_group.items():
        idx = sorted(idx, key=lambda i: paths[i])
        order = _stable_rng(seed, g).permutation(len(idx))
        n = len(idx)
        n_val = round(n * SPEAKER_FRACTIONS[1])
        n_test = round(n * SPEAKER_FRACTIONS[2])
        if n >= 3:
            n_val, n_test = max(1, n_val), max(1, n_test)
        n_train = n - n_val - n_test
        for rank, j in enumerate(order):
            split = (
                "train" if rank < n_train else "validation" if rank < n_train + n_val else "test"
            )
            out[idx[j]] = split
    return out


def _resolve_speech_commands_root(root: Path) -> Path:
    """Accept the official layout directly or torchaudio's ``SpeechCommands/speech_commands_v0.02``."""
    if (root / VALIDATION_LIST).is_file():
        return root
    for sub in (root / "SpeechCommands" / "speech_commands_v0.02", root / "speech_commands_v0.02"):
        if (sub / VALIDATION_LIST).is_file():
            return sub
    return root


def scan_folder(
    root: str | os.PathLike,
    *,
    dataset: str = "folder",
    speaker_regex: str | None = DEFAULT_SPEAKER_REGEX,
    require_lists: bool = False,
    split_seed: int = 0,
) -> ClipTable:
    """Index ``<root>/<label>/<clip>.(wav|flac|ogg)`` into a :class:`ClipTable` (labels and splits)."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"dataset folder {root} does not exist or is not a folder")
    has_lists = (root / VALIDATION_LIST).is_file() and (root / TESTING_LIST).is_file()
    if require_lists and not has_lists:
        raise DatasetError(
            f"{root} is not in the Speech Commands layout: {VALIDATION_LIST} and {TESTING_LIST} "
            "are missing (use the 'folder' dataset for other labelled folders)"
        )
    pattern = compile_speaker_regex(speaker_regex) if speaker_regex else None

    rows: list[tuple[str, str, str]] = []
    no_speaker = 0
    for word_dir in sorted(os.scandir(root), key=lambda e: e.name):
        if not word_dir.is_dir() or word_dir.name.startswith((".", "_")):
            continue  # _background_noise_ and hidden folders are not classes
        for entry in os.scandir(word_dir.path):
            name = entry.name
            if not name.lower().endswith(AUDIO_EXTENSIONS) or not entry.is_file():
                continue
            speaker = speaker_from_name(pattern, name) if pattern is not None else ""
            if not speaker:
                no_speaker += 1
            rows.append((f"{word_dir.name}/{name}", word_dir.name, speaker))
    if not rows:
        raise DatasetError(
            f"no audio clips found in {root}: expected <label>/<clip>.(wav|flac|ogg) sub-folders"
        )
    rows.sort()
    paths = [r[0] for r in rows]
    words = [r[1] for r in rows]
    speakers = [r[2] for r in rows]
    notes: list[str] = []

    if has_lists:
        val = _read_list(root / VALIDATION_LIST)
        test = _read_list(root / TESTING_LIST)
        keys = [os.path.splitext(p)[0] for p in paths]
        word_split = ["test" if k in test else "validation" if k in val else "train" for k in keys]
        missing = len((val | test) - set(keys))
        if missing:
            notes.append(f"{missing} clip(s) named in the split lists are not on disk")
    else:
        word_split = _seeded_split(words, paths, split_seed)
        notes.append(f"no split lists: words split 80/10/10 per word, seed {split_seed}")

    speaker_split = ["" for _ in paths]
    with_spk = [i for i, s in enumerate(speakers) if s]
    if with_spk:
        sub = _seeded_split(
            [speakers[i] for i in with_spk], [paths[i] for i in with_spk], split_seed
        )
        for i, s in zip(with_spk, sub, strict=True):
            speaker_split[i] = s
    if no_speaker:
        notes.append(
            f"{no_speaker} clip(s) without a speaker label (excluded from the speakers task)"
        )

    return ClipTable(
        root=root,
        dataset=dataset,
        paths=tuple(paths),
        words=tuple(words),
        speakers=tuple(speakers),
        word_split=tuple(word_split),
        speaker_split=tuple(speaker_split),
        split_seed=split_seed,
        notes=tuple(notes),
    )


def load_table(
    dataset: str,
    root: str | os.PathLike | None = None,
    *,
    download: bool = False,
    progress: ProgressFn | None = None,
    speaker_regex: str | None = None,
    split_seed: int = 0,
) -> ClipTable:
    """Index a registered dataset (optionally downloading it first) into a :class:`ClipTable`."""
    spec = get_dataset(dataset)
    if root is None:
        if spec.default_root is None:
            raise DatasetError(
                f"{spec.title!r} needs a folder: choose one (Setup's Folder field, --root on the "
                "command line)"
            )
        root = spec.default_root()
    root = Path(root).expanduser()
    if spec.layout == "speech_commands":
        root = _resolve_speech_commands_root(root)
        if not (root / VALIDATION_LIST).is_file():
            if download and spec.downloadable:
                root = download_speech_commands(
                    root, url=spec.url or SPEECH_COMMANDS_URL, sha256=spec.sha256, progress=progress
                )
            elif not root.exists():
                hint = (
                    f", or download it ({spec.download_size}: `python -m core download`)"
                    if spec.downloadable
                    else ""
                )
                env = f" or ${SPEECH_COMMANDS_ENV}" if spec.key == "speech-commands" else ""
                raise DatasetError(
                    f"{spec.title} not found at {root}: choose a folder in its layout "
                    f"(<word>/<speaker>_nohash_<n>.wav plus {VALIDATION_LIST}) as the Folder on "
                    f"Setup (--root{env} on the command line){hint}."
                )
        regex = speaker_regex or spec.speaker_regex
        return scan_folder(
            root, dataset=spec.key, speaker_regex=regex, require_lists=True, split_seed=split_seed
        )
    regex = spec.speaker_regex if speaker_regex is None else speaker_regex
    return scan_folder(root, dataset=spec.key, speaker_regex=regex, split_seed=split_seed)


# ---------------------------------------------------------------------------------------------
# Tasks


def default_min_clips(table: ClipTable) -> int:
    """The speakers-task ``min_clips`` default of the table's dataset (10 when not registered)."""
    spec = DATASETS.get(table.dataset)
    return spec.default_min_clips if spec else 10


@dataclass(frozen=True)
class SpeakerRule:
    """Which speakers the speakers task keeps: at least ``min_clips`` clips in the whole dataset."""

    dataset: str
    min_clips: int
    is_default: bool  # the registry's rule for ``dataset`` (not a --min-clips override)
    kept: tuple[str, ...]
    dropped: tuple[str, ...]

    def describe(self) -> str:
        """One line, e.g. ``speakers task (rule of 'folder': >= 10 clips per speaker): keeps 3 of 4``."""
        origin = f"rule of {self.dataset!r}" if self.is_default else "--min-clips"
        total = len(self.kept) + len(self.dropped)
        return (
            f"speakers task ({origin}: >= {self.min_clips} clips per speaker): "
            f"keeps {len(self.kept)} of {total} speakers"
        )

    def to_dict(self) -> dict[str, object]:
        """Plain dict for JSON."""
        return {
            "dataset": self.dataset,
            "min_clips": self.min_clips,
            "is_default": self.is_default,
            "kept": list(self.kept),
            "dropped": list(self.dropped),
        }


def speaker_rule(table: ClipTable, min_clips: int | None = None) -> SpeakerRule:
    """The speakers the speakers task keeps under the dataset's rule (or ``min_clips``), counted on
    the whole table (all words, all splits) before splitting; what :func:`select` and ``datasets`` use."""
    floor = default_min_clips(table) if min_clips is None else int(min_clips)
    counts = class_counts(table, "speakers")
    return SpeakerRule(
        dataset=table.dataset,
        min_clips=floor,
        is_default=min_clips is None,
        kept=tuple(s for s, n in counts.items() if n >= floor),
        dropped=tuple(s for s, n in counts.items() if n < floor),
    )


def _stratified_subsample(labels: Sequence[str], max_clips: int, seed: int) -> list[int]:
    """Seeded stratified subset: >= 1 per class, the rest proportional (largest remainder)."""
    by_class: dict[str, list[int]] = {}
    for i, c in enumerate(labels):
        by_class.setdefault(c, []).append(i)
    classes = sorted(by_class)
    if max_clips < len(classes):
        raise DatasetError(
            f"max_clips={max_clips} is fewer than the {len(classes)} classes; "
            "a stratified slice needs at least one clip per class"
        )
    sizes = np.array([len(by_class[c]) for c in classes])
    quota = np.ones(len(classes), dtype=int)
    spare = max_clips - len(classes)
    rest = sizes - 1
    if spare > 0 and rest.sum() > 0:
        share = spare * rest / rest.sum()
        extra = np.minimum(np.floor(share).astype(int), rest)
        left = spare - int(extra.sum())
        frac = share - extra
        for j in sorted(range(len(classes)), key=lambda j: (-frac[j], classes[j])):
            if left <= 0:
                break
            if extra[j] < rest[j]:
                extra[j] += 1
                left -= 1
        quota += extra
    chosen: list[int] = []
    for c, q in zip(classes, quota, strict=True):
        idx = by_class[c]  # already in table (path) order
        order = _stable_rng(seed, c).permutation(len(idx))
        chosen.extend(idx[j] for j in order[:q])
    return sorted(chosen)


def select(
    table: ClipTable,
    task: str,
    split: str = "all",
    *,
    max_clips: int | None = None,
    seed: int = 0,
    min_clips: int | None = None,
) -> ClipTable:
    """The clips of one task and split ("all" for every split), speaker-filtered and subsampled."""
    _check_task(task)
    if split != "all" and split not in SPLITS:
        raise DatasetError(f"unknown split {split!r}; splits: all, {', '.join(SPLITS)}")
    labels = table.labels(task)
    splits = table.splits(task)
    keep = [i for i, lab in enumerate(labels) if lab]
    if task == "speakers":
        if not keep:
            raise DatasetError(
                f"no clip of {table.dataset!r} at {table.root} has a speaker id in its file name; "
                "give a speaker rule (a regex: Setup's speaker field, --speaker-regex on the "
                "command line) whose named group 'speaker' or first group matches it"
            )
        rule = speaker_rule(table, min_clips)
        kept = set(rule.kept)
        keep = [i for i in keep if labels[i] in kept]
        if not keep:
            counts = class_counts(table, "speakers")
            raise DatasetError(
                f"no speaker in {table.dataset!r} has >= {rule.min_clips} clips "
                f"(largest: {max(counts.values(), default=0)}); lower the minimum clips per "
                "speaker (--min-clips)"
            )
    if split != "all":
        keep = [i for i in keep if splits[i] == split]
    if not keep:
        raise DatasetError(f"task {task!r}, split {split!r} of {table.dataset!r} has no clips")
    if max_clips is not None and max_clips < len(keep):
        sub = _stratified_subsample([labels[i] for i in keep], int(max_clips), seed)
        keep = [keep[j] for j in sub]
    return table.take(keep)


def class_counts(table: ClipTable, task: str) -> dict[str, int]:
    """Clips per class for ``task``, sorted by label (unlabelled clips left out)."""
    counts = Counter(lab for lab in table.labels(task) if lab)
    return dict(sorted(counts.items()))


def split_counts(table: ClipTable, task: str) -> dict[str, int]:
    """Clips per split for ``task`` (train/validation/test), for a quick report."""
    counts = Counter(
        s for s, lab in zip(table.splits(task), table.labels(task), strict=True) if lab
    )
    return {s: counts.get(s, 0) for s in SPLITS}


# ---------------------------------------------------------------------------------------------
# Download (Speech Commands): resumable, verified, atomic extraction


def download_file(
    url: str,
    dest: str | os.PathLike,
    *,
    sha256: str | None = None,
    progress: ProgressFn | None = None,
    chunk: int = 1 << 20,
    timeout: float = 60.0,
) -> Path:
    """Fetch ``url`` to ``dest`` via ``dest.part``, resuming with HTTP Range; verify, then rename."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    req = urllib.request.Request(url, headers={"User-Agent": "convexity-lab"})
    if have:
        req.add_header("Range", f"bytes={have}-")
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # asked past the end: the .part is already complete
            resp = None
        else:
            raise DatasetError(f"download of {url} failed: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise DatasetError(f"download of {url} failed: {exc}") from exc

    if resp is not None:
        with resp:
            status = getattr(resp, "status", None) or resp.getcode()
            length = resp.headers.get("Content-Length")
            if have and status == 206:
                mode = "ab"
                total = have + int(length) if length else -1
                crange = resp.headers.get("Content-Range", "")
                if "/" in crange and crange.rsplit("/", 1)[1].isdigit():
                    total = int(crange.rsplit("/", 1)[1])
            else:  # server ignored the Range (or fresh start): start over
                mode, have = "wb", 0
                total = int(length) if length else -1
            done = have
            if progress is not None:
                progress(done, total)
            with open(part, mode) as fh:
                while block := resp.read(chunk):
                    fh.write(block)
                    done += len(block)
                    if progress is not None:
                        progress(done, total)
                fh.flush()
                os.fsync(fh.fileno())
        if total >= 0 and done != total:
            raise DatasetError(
                f"download of {url} stopped at {done} of {total} bytes; run again to resume"
            )
    if sha256 is not None:
        from core.io.atomic import sha256_file

        got = sha256_file(part)
        if got != sha256.lower():
            part.unlink(missing_ok=True)
            raise DatasetError(
                f"checksum mismatch for {url}: got {got}, expected {sha256}; "
                "the partial file was deleted, run again to re-download"
            )
    os.replace(part, dest)
    return dest


def extract_tar_atomic(archive: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Safely extract a tar archive (filter="data") into a temp folder, then rename it to ``dest``."""
    archive, dest = Path(archive), Path(dest)
    if dest.exists():
        raise DatasetError(f"{dest} already exists; remove it or choose another folder")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.extract-"))
    try:
        with tarfile.open(archive, "r:*") as tar:
            tar.extractall(tmp, filter="data")
        entries = [p for p in tmp.iterdir()]
        src = tmp
        if len(entries) == 1 and entries[0].is_dir() and not (tmp / VALIDATION_LIST).exists():
            src = entries[0]  # archive wrapped everything in one top folder
        os.replace(src, dest)
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise DatasetError(f"could not extract {archive}: {exc}") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def download_speech_commands(
    root: str | os.PathLike | None = None,
    *,
    url: str = SPEECH_COMMANDS_URL,
    sha256: str | None = SPEECH_COMMANDS_SHA256,
    progress: ProgressFn | None = None,
    keep_archive: bool = False,
    chunk: int = 1 << 20,
) -> Path:
    """Download (resumable) and extract Speech Commands v0.02 into ``root``; a crash leaves no half folder."""
    root = Path(root) if root is not None else _speech_commands_root()
    if (root / VALIDATION_LIST).is_file():
        return root
    if root.exists() and any(root.iterdir()):
        raise DatasetError(
            f"{root} exists but is not a complete Speech Commands folder; "
            "remove it or choose another root"
        )
    if root.exists():
        root.rmdir()
    root.parent.mkdir(parents=True, exist_ok=True)
    for stale in root.parent.glob(f".{root.name}.extract-*"):  # leftovers of a crash mid-extract
        shutil.rmtree(stale, ignore_errors=True)
    archive = root.with_name(root.name + ".tar.gz")
    if not archive.exists():
        download_file(url, archive, sha256=sha256, progress=progress, chunk=chunk)
    extract_tar_atomic(archive, root)
    if not (root / VALIDATION_LIST).is_file():
        shutil.rmtree(root, ignore_errors=True)
        raise DatasetError(f"{archive} did not contain {VALIDATION_LIST}: not Speech Commands?")
    if not keep_archive:
        archive.unlink(missing_ok=True)
    return root


def describe(table: ClipTable) -> str:
    """A short multi-line summary (clips, classes, splits per task) for logs and UIs."""
    lines = [f"{table.dataset}: {len(table)} clips at {table.root}"]
    for task in TASKS:
        counts = class_counts(table, task)
        if counts:
            sp = split_counts(table, task)
            lines.append(
                f"  {task}: {len(counts)} classes, " + ", ".join(f"{k} {v}" for k, v in sp.items())
            )
    lines.extend(f"  note: {n}" for n in table.notes)
    return "\n".join(lines)


__all__ = [
    "DATASETS",
    "TASKS",
    "SPLITS",
    "ClipTable",
    "label_set",
    "DatasetError",
    "DatasetSpec",
    "SpeakerRule",
    "class_counts",
    "compile_speaker_regex",
    "default_min_clips",
    "describe",
    "download_file",
    "download_speech_commands",
    "extract_tar_atomic",
    "get_dataset",
    "load_table",
    "scan_folder",
    "select",
    "speaker_from_name",
    "speaker_rule",
    "split_counts",
]
