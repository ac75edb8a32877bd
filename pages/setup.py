"""Setup: pick a model, dataset, split and clip count; extract per-layer features (or reuse cached ones)."""

from __future__ import annotations

import time

import streamlit as st

from core.data.datasets import DATASETS
from core.data.features import Selection, extract_features
from core.errors import LabError, UnknownModelError
from core.models.classifier import classifier_params_by_prune_point
from core.models.registry import MODELS
from core.runs.records import format_seconds
from pages.cached import cached_feature_list, clear_feature_list, offline_models
from pages.feature_choice import describe_entry
from pages.messages import one_line
from pages.state import DEFAULT_MODEL, init_state, remember_choice

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


def model_label(key: str) -> str:
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


def progress_text(done: int, total: int, elapsed_s: float) -> str:
    """The extraction bar's line: clips encoded, time elapsed and the estimate of what remains."""
    left = elapsed_s * (total - done) / done if done else None
    return f"Encoding clips: {done}/{total} · {format_seconds(elapsed_s)} elapsed · " + (
        "estimating time left" if left is None else f"about {format_seconds(left)} left"
    )


left, right = st.columns(2)
with left:
    st.selectbox("Model", keys, format_func=model_label, key="model")
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
with right:
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
            help="The speaker id is the group named 'speaker', else the first group, e.g. "
            r"'^(\w+?)_' for 'alice_yes_1.wav'. Runs from these features use the same rule.",
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

regex = state.get("_speaker_regex", "").strip() if state.dataset != "sample" else ""

if st.button("Extract features", type="primary", icon=":material/play_arrow:"):
    bar = st.progress(0.0, text="Loading the model...")
    started = time.monotonic()

    def tick(done: int, total: int) -> None:
        """Progress callback: clips encoded so far, elapsed and remaining time."""
        text = progress_text(done, total, time.monotonic() - started)
        bar.progress(min(done / max(total, 1), 1.0), text=text)

    try:
        selection = Selection(
            dataset=state.dataset,
            root=(state.root or None) if state.dataset != "sample" else None,
            task="words",
            split=state.split,
            max_clips=int(state.max_clips) or None,
            seed=0,
            speaker_regex=regex or None,
        )
        fs = extract_features(
            custom or state.model,
            selection,
            whisper_input=state.whisper_input,
            progress=tick,
            trust_remote_code=bool(custom) and state.trust_remote_code,
        )
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
            else f"extracted in {fs.meta.get('seconds', 0):.0f} s"
        )
        st.success(f"{fs.features.shape[0]} clips x {fs.features.shape[1]} hidden states, {how}.")
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
        st.page_link(
            "pages/convexity.py", label="See the convexity curves", icon=":material/show_chart:"
        )


def _use_cached(meta: dict) -> None:
    """Make a cached set the current choice; Setup's widgets show its settings after a rerun."""
    sel = meta.get("selection", {})
    pending = {
        "model": meta.get("model_key") if meta.get("model_key") in MODELS else state.model,
        "dataset": meta.get("dataset") or state.dataset,
        "split": sel.get("split") or "all",
        "max_clips": int(sel.get("max_clips") or 0),
        "root": str(meta.get("root") or "") if meta.get("dataset") != "sample" else "",
        "whisper_input": meta.get("input_mode") or state.whisper_input,
    }
    remember_choice(meta["key"], **pending)
    regex = sel.get("speaker_regex") or ""
    state["_setup_pending"] = pending | {"setup_speaker_regex": regex, "_speaker_regex": regex}
    state["_setup_used"] = f"Using {describe_entry(meta)}."
    st.rerun()


st.subheader("Cached feature sets")
cached = cached_feature_list()
if not cached:
    st.caption("Nothing cached yet.")
else:
    by_key = {m["key"]: m for m in cached}
    st.dataframe(
        [
            {
                "key": m["key"][:8],
                "model": m.get("model_key"),
                "dataset": m.get("dataset"),
                "split": m.get("selection", {}).get("split"),
                "clips": m.get("n_clips"),
                "input": m.get("input_mode"),
                "layers": m.get("n_layers"),
                "created": str(m.get("created", ""))[:19],
                "in use": "✓" if m["key"] == state.feature_key else "",
            }
            for m in cached
        ],
        hide_index=True,
    )
    choice = st.selectbox(
        "Use a cached set",
        list(by_key),
        index=list(by_key).index(state.feature_key) if state.feature_key in by_key else 0,
        format_func=lambda k: describe_entry(by_key[k]),
    )
    if st.button("Use this feature set", icon=":material/check:"):
        _use_cached(by_key[choice])
    if "_setup_used" in state:
        st.success(state.pop("_setup_used"))
