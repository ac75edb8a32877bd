"""A user's own data end to end in a real browser: a generated audio folder and a local model folder,
through Setup -> Convexity -> Prune & fine-tune (full and pruned, to the end) -> Benchmarks -> Prune sweep.

Starts ``streamlit run app.py`` with a private ``CONVEXITY_LAB_CACHE`` and drives Debian's Chromium with
Playwright (skipped without them). Fails on a Python traceback on any page, a browser console error or
a request to any host but this machine (``Watch`` of the main browser test).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.io.run_folder import RunFolder
from tests.helpers.app_server import running_app
from tests.helpers.browser import ARGS, CHROMIUM, Watch, idle, metric

LONG = 180_000  # ms
REGEX = r"^(spk\d)_"
LAYERS = 3
STATE: dict[str, object] = {}  # what the journey leaves for the sweep step

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} not installed"),
]


@pytest.fixture(scope="module")
def journey(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    """A generated 2-word, 3-speaker folder, a tiny local wav2vec2 folder and the served dashboard."""
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    from tests.helpers.tiny_assets import make_tone_noise_dataset, make_trainable_wav2vec2

    base = tmp_path_factory.mktemp("folder-journey")
    data = make_tone_noise_dataset(base / "my clips", speakers=3, per_speaker=6)
    model = make_trainable_wav2vec2(base / "my model", layers=LAYERS)
    cache = base / "cache"
    cache.mkdir()
    with running_app(cache) as url:
        yield {"url": url, "data": str(data), "model": str(model), "cache": cache}
        _cancel_runs(cache)


def _cancel_runs(cache: Path) -> None:
    """Stop any run the test left behind (runs live in the server's cache)."""
    from core import runs
    from core.runs import lifecycle

    old = os.environ.get("CONVEXITY_LAB_CACHE")
    os.environ["CONVEXITY_LAB_CACHE"] = str(cache)
    try:
        for run in runs.list_runs():
            if run.active:
                lifecycle.cancel(run.run_id, force=True)
    finally:
        if old is None:
            os.environ.pop("CONVEXITY_LAB_CACHE", None)
        else:
            os.environ["CONVEXITY_LAB_CACHE"] = old


def _go(page, title: str, heading: str) -> None:
    """Open a page through the sidebar and wait for its run to end."""
    page.locator('[data-testid="stSidebarNav"] a', has_text=title).first.click()
    page.get_by_role("heading", name=heading).first.wait_for(timeout=LONG)
    idle(page, LONG)


def _type(page, label: str, value: str) -> None:
    """Fill a text or number input and commit it (Enter), then wait for the rerun."""
    box = page.get_by_label(label, exact=True)
    box.fill(value)
    box.press("Enter")
    idle(page, LONG)


def _choose(page, label: str, option: str | re.Pattern) -> None:
    """Pick an option of the selectbox called ``label``."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    box = page.locator('[data-testid="stSelectbox"]').filter(has_text=label).first
    for _ in range(10):  # a rerun (a live view's poll) can close the list just opened
        box.click()
        try:
            page.get_by_role("option", name=option).first.click(timeout=5000)
            break
        except PlaywrightTimeout:
            page.keyboard.press("Escape")
            page.wait_for_timeout(1000)
    else:
        raise AssertionError(f"no option {option!r} in {label!r}")
    idle(page, LONG)


def _picker(page) -> str:
    """The text the "Show run" picker displays (its label, shown option and any input's value)."""
    box = page.locator('[data-testid="stSelectbox"]').filter(has_text="Show run").first
    return box.evaluate(
        "el => [el.innerText, ...[...el.querySelectorAll('input')].map(i => i.value),"
        " ...[...el.querySelectorAll('[title]')].map(t => t.title)].join(' | ')"
    )


def _picker_shows(page, pattern: re.Pattern, seconds: float = 30) -> str:
    """Wait until the picker displays ``pattern``; returns what it displays."""
    deadline = time.monotonic() + seconds
    text = _picker(page)
    while not pattern.search(text) and time.monotonic() < deadline:
        page.wait_for_timeout(500)
        text = _picker(page)
    return text


def _no_traceback(page, where: str) -> None:
    assert not page.locator('[data-testid="stException"]').count(), where


def _wait_done(page, seconds: float) -> str:
    """Poll the shown run's status metric until it is final; returns it."""
    deadline = time.monotonic() + seconds
    state = ""
    while time.monotonic() < deadline:
        state = metric(page, "status").inner_text()
        if state in ("done", "failed", "cancelled"):
            break
        page.wait_for_timeout(1000)
    return state


def test_own_folder_from_setup_to_benchmarks(journey: dict[str, object], tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=LONG)
    t0 = time.monotonic()
    shots = Path(os.environ.get("E2E_SCREENSHOTS") or tmp_path)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(LONG)
        watch = Watch(page)
        try:
            page.goto(f"{journey['url']}/setup")
            page.get_by_role("heading", name="Setup").wait_for()
            idle(page, LONG)

            # Setup: the local model folder, the audio folder and its speaker rule
            _type(page, "...or a Hugging Face id or local model folder", str(journey["model"]))
            _choose(page, "Dataset", "Any labelled audio folder")
            _type(page, "Folder", str(journey["data"]))
            _type(page, "Speaker rule (regex on the file name)", REGEX)
            page.get_by_role("button", name="Extract features").click()
            expect(page.get_by_text(f"36 clips x {LAYERS + 1} hidden states")).to_be_visible()
            expect(page.get_by_text("encoder + classification head")).to_be_visible()
            idle(page, LONG)
            _no_traceback(page, "setup")
            page.screenshot(path=str(shots / "folder-1-setup.png"), full_page=True)

            # Convexity: the curves of these features
            _go(page, "Convexity", "Graph convexity per layer")
            expect(page.locator(".js-plotly-plot").first).to_be_visible()
            _no_traceback(page, "convexity")

            # Prune & fine-tune: full and pruned, one short epoch each, to the end
            _go(page, "Prune & fine-tune", "Prune & fine-tune")
            expect(page.get_by_text("Cannot fine-tune")).to_have_count(0)
            epochs = page.get_by_label("Epochs", exact=True)
            epochs.fill("500")  # out of range: refused with a visible reason, never kept silently
            epochs.press("Enter")
            expect(epochs).to_have_attribute("aria-invalid", "true")
            expect(page.get_by_role("alert").filter(has_text="between 1 and 100")).to_have_count(1)
            _type(page, "Epochs", "1")
            expect(epochs).not_to_have_attribute("aria-invalid", "true")
            prune = page.locator(
                'input[type="range"][aria-label="Prune point p (keep transformer layers 1..p)"]'
            )
            prune.focus()
            while int(prune.input_value()) > 1:
                now = prune.input_value()
                prune.press("ArrowLeft")
                expect(prune).not_to_have_value(now)
            idle(page, LONG)
            page.get_by_role("button", name="Fine-tune both").click()
            toast = page.get_by_text(re.compile(r"^Started \S+ and \S+; showing \S+$"))
            expect(toast).to_be_visible()
            shown = toast.inner_text().rsplit(" ", 1)[1]
            idle(page, LONG)
            _no_traceback(page, "finetune launch")
            assert shown in _picker(page)  # the toast names the run shown
            assert "p = 1" in _picker(page)  # the toast's shown run is the pruned one
            pruned_state = _wait_done(page, 150)
            page.screenshot(path=str(shots / "folder-2-pruned.png"), full_page=True)
            assert pruned_state == "done", page.locator('[data-testid="stAlert"]').all_inner_texts()
            expect(
                page.get_by_text(re.compile(r"^Test accuracy \d\.\d{3} on \d+ test clips"))
            ).to_be_visible()
            expect(metric(page, "test accuracy")).to_have_text(re.compile(r"\d\.\d{3}"))
            done_label = re.compile(r"· done · test acc \d\.\d{3} \(\d+ clips\)")
            shown_text = _picker_shows(page, done_label)
            assert done_label.search(shown_text), shown_text  # follows the state: not "running"
            _choose(page, "Show run", re.compile("full model"))
            full_state = _wait_done(page, 120)
            assert full_state == "done", page.locator('[data-testid="stAlert"]').all_inner_texts()
            full_label = re.compile(r"full model · done · test acc")
            shown_text = _picker_shows(page, full_label)
            assert full_label.search(shown_text), shown_text
            assert int(prune.input_value()) == LAYERS  # the form follows the shown (full) run
            _no_traceback(page, "finetune done")
            page.screenshot(path=str(shots / "folder-3-full.png"), full_page=True)

            # Benchmarks: both runs side by side
            _go(page, "Benchmarks", "Benchmarks")
            expect(page.get_by_role("heading", name="Full vs pruned runs")).to_be_visible()
            expect(page.get_by_text("Needs one finished full")).to_have_count(0, timeout=20_000)
            table = page.locator('[data-testid="stTable"]').first
            expect(table).to_contain_text("full model")
            expect(table).to_contain_text("pruned model")
            expect(table).to_contain_text("parameters (total)")
            _no_traceback(page, "benchmarks")
            page.screenshot(path=str(shots / "folder-4-benchmarks.png"), full_page=True)
            watch.check()
        except Exception:
            page.screenshot(path=str(shots / "folder-failure.png"), full_page=True)
            raise
        finally:
            browser.close()
    STATE["journey_done"] = True
    print(f"folder journey: {time.monotonic() - t0:.0f} s")  # a figure, not an assert


def test_own_folder_prune_sweep(journey: dict[str, object], tmp_path: Path) -> None:
    """The sweep step of the journey: a sweep of the features' own model and folder."""
    from playwright.sync_api import expect, sync_playwright

    if not STATE.get("journey_done"):
        pytest.skip("needs the journey above (its features and runs)")
    expect.set_options(timeout=LONG)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(LONG)
        watch = Watch(page)
        try:
            watch.goto(f"{journey['url']}/sweep")
            page.get_by_role("heading", name="Prune sweep").first.wait_for()
            idle(page, LONG)
            _no_traceback(page, "sweep")
            model_box = page.locator('[data-testid="stSelectbox"]').filter(has_text="Model").first
            model_box.click()
            offered = page.get_by_role("option").all_inner_texts()
            page.keyboard.press("Escape")
            watch.check()
            assert any(str(journey["model"]) in o or "my model" in o for o in offered), offered
            _choose(page, "Model", re.compile("my model"))
            page.get_by_role("button", name="Start sweep").click()
            expect(
                page.get_by_text(re.compile(r"Sweep .* started in the background"))
            ).to_be_visible()
            idle(page, LONG)
            _no_traceback(page, "sweep launched")
            watch.check()
        finally:
            browser.close()
    # the sweep trains the features' model on their folder, with their speaker rule
    sweeps = [RunFolder(p).read_spec() for p in sorted((Path(journey["cache"]) / "runs").iterdir())]
    (sweep,) = [s for s in sweeps if s is not None and s.kind == "sweep"]
    assert sweep.config["model"] == str(journey["model"])
    assert sweep.config["root"] == str(journey["data"]) and sweep.config["dataset"] == "folder"
    assert sweep.config["speaker_regex"] == REGEX
