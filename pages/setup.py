"""Setup: pick a model, dataset, split and clip count; extract per-layer features (or reuse cached ones)."""

from __future__ import annotations

import time
from typing import Any

import streamlit as st

from core.data import (
    ARRAY_SUFFIXES,
    DATASETS,
    LABEL_SUFFIXES,
    MAX_UPLOAD_BYTES,
    ClipSource,
    FeatureInfo,
    Selection,
    extract_features,
    import_uploaded,
    is_imported,
)
from core.errors import LabError, UnknownModelError
from core.models import MODELS, ModelRequest, classifier_params_by_prune_point
from core.runs import format_seconds
from pages.parts.cached import (
    cached_feature_list,
    clear_feature_list,
    missing_label_sets,
    offline_models,
)
from pages.parts.messages import one_line
from pages.parts.state import DEFAULT_MODEL, init_state, remember_choice


def model_label(key: str, offline: set[str]) -> str:
    """Model picker label: key, shape and whether it works offline (its parameters are counted once
    loaded, shown after extraction: the count Prune & fine-tune and the runs use)."""
    spec = MODELS[key]
    where = "offline ✓" if key in offline else "needs the Hugging Face hub"
    return f"{key} — {spec.n_layers} layers, {spec.hidden_size}-d — {where}"


def error_line(exc: LabError) -> str:
    """One line for Setup: an unknown model names what to give instead of listing every preset."""
    text = one_line(exc)
    if isinstance(exc, UnknownModelError):
        text = text.split(" Presets: ")[0].rstrip(".") + (
            ". Choose a model from the list, or give a Hugging Face id (owner/name) or a local "
            "model folder with a config.json."
        )
    return text


def progress_text(done: int, total: int, elapsed_s: float, what: str = "Encoding clips") -> str:
    """A work bar's line (extraction, import): items done, time elapsed and the estimate of what remains."""
    left = elapsed_s * (total - done) / done if done else None
    return f"{what}: {done:,}/{total:,} · {format_seconds(elapsed_s)} elapsed · " + (
        "estimating time left" if left is None else f"about {format_seconds(left)} left"
    )


def model_section(offline: set[str]) -> None:
    """The model: a preset, or a hub id or local folder (its own code only when allowed)."""
    state = st.session_state
    keys = list(MODELS)
    st.selectbox("Model", keys, format_func=lambda k: model_label(k, offline), key="model")
    st.text_input(
        "...or a Hugging Face id or local model folder",
        key="custom_model",
        placeholder="e.g. facebook/wav2vec2-base or /path/to/checkpoint",
    )
    custom = state.custom_model.strip()
    spec = MODELS[state.model]
    if custom:
        st.checkbox(
            "Allow the model's own code (trust_remote_code)",
            key="trust_remote_code",
            help="Off by default: only for repositories you trust; runs their Python code here.",
        )
    else:
        st.caption(spec.description)
    if custom or spec.family == "whisper":
        st.radio(
            "Whisper input",
            ["trimmed", "padded"],
            key="whisper_input",
            horizontal=True,
            help="trimmed: the encoder sees the 1-s clip's own 100 mel frames (default, ~40x faster); "
            "padded: Whisper's standard 30-s input, pooled over the frames covering the clip.",
        )
        st.caption(
            f"Input: **{state.whisper_input}** (Whisper models only). Whisper's encoder applies a final "
            "LayerNorm to its last hidden state only."
        )


def data_section() -> None:
    """The dataset, its folder and speaker rule, the split and the number of clips."""
    state = st.session_state
    st.selectbox(
        "Dataset",
        list(DATASETS),
        format_func=lambda k: DATASETS[k].title,
        key="dataset",
    )
    dspec = DATASETS[state.dataset]
    st.caption(f"{dspec.description} Speakers task: {dspec.speaker_rule}.")
    if state.dataset != "sample":
        st.text_input(
            "Folder",
            key="root",
            placeholder="default location"
            if dspec.default_root
            else "required: path to the folder",
        )
        if "setup_speaker_regex" not in state:  # a widget's value is dropped when Setup is left
            state["setup_speaker_regex"] = state.get("_speaker_regex", "")
        st.text_input(
            "Speaker rule (regex on the file name)",
            key="setup_speaker_regex",
            placeholder=f"default: {dspec.speaker_regex}",
            help="The speaker id is the group named `speaker`, else the first group, e.g. "
            r"`^(\w+?)_` for `alice_yes_1.wav`. Runs from these features use the same rule.",
        )
        state["_speaker_regex"] = state.setup_speaker_regex
    st.selectbox("Split", ["all", "train", "validation", "test"], key="split")
    st.number_input(
        "Number of clips (0 = all)",
        min_value=0,
        step=35,
        key="max_clips",
        help="A seeded sample stratified by word.",
    )


def extract_section() -> None:
    """Extract (or load from the cache) the chosen features; say what came out."""
    state = st.session_state
    custom = state.custom_model.strip()
    regex = state.get("_speaker_regex", "").strip() if state.dataset != "sample" else ""

    if st.button("Extract features", type="primary", icon=":material/play_arrow:"):
        bar = st.progress(0.0, text="Loading the model...")
        started = time.monotonic()

        def tick(done: int, total: int) -> None:
            """Progress callback: clips encoded so far, elapsed and remaining time."""
            text = progress_text(done, total, time.monotonic() - started)
            bar.progress(min(done / max(total, 1), 1.0), text=text)

        try:
            source = ClipSource(
                state.dataset,
                (state.root or None) if state.dataset != "sample" else None,
                speaker_regex=regex or None,
            )
            selection = Selection(
                source, task="words", split=state.split, max_clips=int(state.max_clips) or None
            )
            request = ModelRequest(
                custom or state.model,
                state.whisper_input,
                trust_remote_code=bool(custom) and state.trust_remote_code,
            )
            fs = extract_features(request, selection, progress=tick)
        except LabError as exc:
            bar.empty()
            st.error(error_line(exc))
        else:
            bar.empty()
            remember_choice(str(fs.key))
            clear_feature_list()
            how = (
                "loaded from the cache"
                if fs.from_cache
                else f"extracted in {fs.info.seconds:.0f} s"
            )
            st.success(
                f"{fs.features.shape[0]} clips x {fs.features.shape[1]} hidden states, {how}."
            )
            n_words = len(set(fs.words))
            try:
                params = classifier_params_by_prune_point(
                    custom or state.model, n_words, whisper_input=state.whisper_input
                )[fs.n_layers]["total"]
            except LabError:
                params = None
            if params is not None and n_words >= 2:
                st.caption(
                    f"The model fine-tuned on these {n_words} words: {params / 1e6:.2f} M parameters "
                    f"({params:,}: encoder + classification head), as Prune & fine-tune and its runs "
                    "count them."
                )
            if fs.skipped:
                st.warning(f"{len(fs.skipped)} clips could not be read and were skipped.")
            for why in missing_label_sets(fs).values():
                st.warning(f"These clips give {why}.", icon=":material/category:")
            st.page_link(
                "pages/convexity.py", label="See the convexity curves", icon=":material/show_chart:"
            )


def _use_cached(info: FeatureInfo) -> None:
    """Make a cached set the current choice; Setup's widgets show its settings after a rerun (an
    imported set has no model, dataset or input mode of Setup's: those widgets keep their values)."""
    state = st.session_state
    sel = info.selection
    if is_imported(info.model_key, info.dataset):
        remember_choice(info.key)
    else:
        pending = {
            "model": info.model_key if info.model_key in MODELS else state.model,
            "dataset": info.dataset if info.dataset in DATASETS else state.dataset,
            "split": sel.get("split") or "all",
            "max_clips": int(sel.get("max_clips") or 0),
            "root": info.root if info.dataset != "sample" else "",
            "whisper_input": info.input_mode or state.whisper_input,
        }
        remember_choice(info.key, **pending)
        regex = sel.get("speaker_regex") or ""
        state["_setup_pending"] = pending | {"setup_speaker_regex": regex, "_speaker_regex": regex}
    state["_setup_used"] = f"Using {info.label()}."
    st.rerun()


def _import_intro() -> None:
    """The import section's title and what files it takes, with their size limits."""
    st.subheader("Import your own features")
    upload_mb = int(st.get_option("server.maxUploadSize"))
    st.caption(
        "Per-layer embeddings extracted elsewhere (another toolkit, another modality): a `.npy` of shape "
        "(N, L+1, D), or an `.npz` with one such array or one (N, D) array per hidden state "
        "(`layer_0`, `layer_1`, ...), plus a labels table (CSV/TSV with a header: `word` or `class`, "
        "optional `speaker` and `path`), one row per point in the arrays' order. Checked before anything "
        f"is cached: shape, real float dtype, finite values, no pickles. Up to {upload_mb} MB per file "
        f"(`server.maxUploadSize` in `.streamlit/config.toml`) and {MAX_UPLOAD_BYTES / 2**30:.0f} GiB "
        "as float32; larger sets: `python -m core import-features`. Convexity, criteria, Projections "
        "and Compare use them; fine-tuning needs a model."
    )


def _import_uploads() -> tuple[Any, Any]:
    """The features and labels uploaders, each with its optional text field: (features, labels)."""
    u1, u2 = st.columns(2)
    with u1:
        arrays_file = st.file_uploader(
            "Features (.npy / .npz)", type=[s.lstrip(".") for s in ARRAY_SUFFIXES], key="imp_arrays"
        )
        st.text_input(
            "Name (optional)",
            key="imp_name",
            placeholder="default: the features file's name",
            help="Names the representation: its model shows as imported:<name>.",
        )
    with u2:
        labels_file = st.file_uploader(
            "Labels table (.csv / .tsv)",
            type=[s.lstrip(".") for s in LABEL_SUFFIXES],
            key="imp_labels",
        )
        st.text_input(
            "Clip folder (optional)",
            key="imp_root",
            placeholder="the folder the table's paths are relative to",
            help="Only for playing clips on Projections; absolute paths in the table work without it.",
        )
    return arrays_file, labels_file


def _run_import(arrays_file: Any, labels_file: Any) -> None:
    """Check and cache the uploaded files with a progress bar; make them the set in use, or say why not."""
    state = st.session_state
    import_bar = st.progress(0.0, text="Checking the files...")
    import_started = time.monotonic()

    def import_tick(done: int, total: int) -> None:
        """Progress callback: vectors checked and cached, elapsed and remaining time."""
        text = progress_text(
            done, total, time.monotonic() - import_started, "Checking and caching vectors"
        )
        import_bar.progress(min(done / max(total, 1), 1.0), text=text)

    try:
        imported = import_uploaded(
            arrays_file,
            arrays_file.name,
            labels_file,
            labels_file.name,
            name=state.get("imp_name", "").strip() or None,
            root=state.get("imp_root", "").strip() or None,
            progress=import_tick,
        )
    except LabError as exc:
        import_bar.empty()
        st.error(f"Cannot import these features: {one_line(exc)}")
    else:
        import_bar.empty()
        _use_imported(imported)


def _use_imported(imported: Any) -> None:
    """Make the imported features the set in use, say what they are, and link to their curves."""
    remember_choice(str(imported.key))
    clear_feature_list()
    n, states, dim = imported.features.shape
    how = "already cached" if imported.from_cache else "imported"
    st.success(
        f"{imported.info.model_key}: {n} points x {states} hidden states x {dim}, {how}; "
        "now the feature set in use."
    )
    st.page_link(
        "pages/convexity.py", label="See the convexity curves", icon=":material/show_chart:"
    )


def import_section() -> None:
    """Import embeddings extracted elsewhere, with their labels table."""
    _import_intro()
    arrays_file, labels_file = _import_uploads()
    if st.button(
        "Import features",
        icon=":material/upload:",
        disabled=arrays_file is None or labels_file is None,
    ):
        _run_import(arrays_file, labels_file)


def cached_section() -> None:
    """The cached feature sets, and making one of them the set in use."""
    state = st.session_state
    st.subheader("Cached feature sets")
    cached = cached_feature_list()
    if not cached:
        st.caption("Nothing cached yet.")
    else:
        by_key = {info.key: info for info in cached}
        st.dataframe(
            [
                {
                    "key": info.key[:8],
                    "model": info.model_key,
                    "dataset": info.dataset,
                    "split": info.selection.get("split"),
                    "clips": info.n_clips,
                    "input": info.input_mode,
                    "layers": info.n_layers,
                    "created": info.created[:19],
                    "in use": "✓" if info.key == state.feature_key else "",
                }
                for info in cached
            ],
            hide_index=True,
        )
        choice = st.selectbox(
            "Use a cached set",
            list(by_key),
            index=list(by_key).index(state.feature_key) if state.feature_key in by_key else 0,
            format_func=lambda k: by_key[k].label(),
        )
        if st.button("Use this feature set", icon=":material/check:"):
            _use_cached(by_key[choice])
        if "_setup_used" in state:
            st.success(state.pop("_setup_used"))


def main() -> None:
    """The page: model and data, extraction, import, the cached sets."""
    init_state()
    state = st.session_state

    st.title("Setup")
    st.caption(
        "Features are mean-pooled hidden states, one vector per clip and layer, cached on disk: the same "
        "choices later load instantly, here and in the CLI (`python -m core extract`)."
    )

    state.update(state.pop("_setup_pending", None) or {})  # a cached set just chosen: its settings
    offline = set(offline_models())
    keys = list(MODELS)
    if state.model not in keys:
        state.model = DEFAULT_MODEL
    left, right = st.columns(2)
    with left:
        model_section(offline)
    with right:
        data_section()
    extract_section()
    import_section()
    cached_section()


main()
