"""The Plans page's data: which plan was picked, the rows of plans at its size with the evidence that exists
(retraining-free scores from the stored table, fine-tuned accuracy and cost ratio from finished runs), and the
background computation of a plans table (progress, time left, cancel)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote_plus

from core.data import FeatureInfo, Selection
from core.errors import LabError
from core.models import ModelRequest, PruningPlan, parse_plan, resolve
from core.runs import finetune_runs, list_benchmarks
from core.training import (
    PlansRequest,
    StoredPlans,
    selection_entry,
    stored_plans_table,
)
from pages.parts.background import BackgroundWork, start

LATENCY = "inference_latency_b1_seconds"  # the benchmark row whose ratio the table shows


def selection_of(info: FeatureInfo) -> Selection:
    """The selection a feature set was extracted with (its source and its meta's selection)."""
    given = info.selection
    return Selection(
        info.source,
        task=str(given.get("task", "words")),
        split=str(given.get("split", "all")),
        max_clips=given.get("max_clips"),
        seed=int(given.get("seed", 0)),
    )


@dataclass(frozen=True)
class PlanEvidence:
    """One plan's row: its retraining-free scores and what finished runs measured of it."""

    plan: PruningPlan
    kind: str
    parameters: int
    scores: dict[str, str]  # probe -> "0.912 [0.880, 0.940] (-0.031)"
    finetuned: str  # "0.934 (run ...)" or "-"
    cost_ratio: str  # "0.52x latency (benchmark ...)" or "-"
    picked: bool = False


def _plan_of_run(config: Any, n_layers: int) -> PruningPlan | None:
    """The plan a run's settings name (a ``plan`` text, else its prune point; None: the full model)."""
    text = getattr(config, "plan", None) if not isinstance(config, dict) else config.get("plan")
    try:
        if text:
            return parse_plan(str(text), n_layers)
        p = (
            getattr(config, "prune_point", None)
            if not isinstance(config, dict)
            else config.get("prune_point")
        )
        return PruningPlan.top(int(p) if isinstance(p, int) else n_layers, n_layers)
    except (LabError, TypeError, ValueError):
        return None


def finetuned_accuracy(model_key: str, task: str, n_layers: int) -> dict[PruningPlan, str]:
    """Plan -> the newest finished fine-tune's test accuracy of that model, task and plan."""
    out: dict[PruningPlan, str] = {}
    for run in finetune_runs():
        settings = run.settings
        if run.test_accuracy is None or settings is None or run.task != task:
            continue
        if settings.model != model_key:
            continue
        plan = _plan_of_run(settings, n_layers)
        if plan is not None and plan not in out:
            out[plan] = f"{run.test_accuracy:.3f} ({run.run_id})"
    return out


def cost_ratios(model_key: str, n_layers: int) -> dict[PruningPlan, str]:
    """Plan -> the newest side-by-side benchmark's batch-1 latency ratio (pruned / full)."""
    out: dict[PruningPlan, str] = {}
    for saved in list_benchmarks():
        data = saved.data
        if str(data.get("model") or "") != model_key:
            continue
        plan = _plan_of_run(data, n_layers)
        rows = {str(r.get("metric")): r for r in data.get("rows") or [] if isinstance(r, dict)}
        ratio = rows.get(LATENCY, {}).get("ratio")
        if plan is not None and plan not in out and isinstance(ratio, int | float):
            out[plan] = f"{ratio:.2f}x latency ({saved.id})"
    return out


def plan_rows(
    stored: StoredPlans, picked: PruningPlan, model_key: str, task: str
) -> list[PlanEvidence]:
    """The full model and every scored plan keeping as many layers as ``picked``, with their evidence."""
    table = stored.table
    n_layers = table.redundancy.n_layers
    tuned = finetuned_accuracy(model_key, task, n_layers)
    costs = cost_ratios(model_key, n_layers)
    rows = []
    for score in table.plans:
        if not (score.plan.is_full or score.plan.size == picked.size):
            continue
        cells = {
            s.probe: f"{s.accuracy:.3f} [{s.low:.3f}, {s.high:.3f}] ({table.change(score, s.probe):+.3f})"
            for s in score.scores
        }
        rows.append(
            PlanEvidence(
                plan=score.plan,
                kind=table.kind(score),
                parameters=score.parameters,
                scores=cells,
                finetuned=tuned.get(score.plan, "-"),
                cost_ratio=costs.get(score.plan, "-") if not score.plan.is_full else "1.00x",
                picked=score.plan == picked,
            )
        )
    return rows


def launch_links(plan: PruningPlan) -> dict[str, str]:
    """Page URL -> label: a fine-tune and a benchmark of ``plan``, prefilled by the ``plan`` parameter."""
    q = quote_plus(plan.describe())
    return {
        f"/finetune?plan={q}": f"Fine-tune {plan.describe()}",
        f"/benchmarks?plan={q}": f"Benchmark {plan.describe()} beside the full model",
    }


@dataclass
class PlansWork(BackgroundWork):
    """A plans table computing in a server thread; ``stop`` cancels it at its next batch."""

    stop: threading.Event = field(default_factory=threading.Event)

    def outcome(self) -> str | None:
        """What the page says once the work ended: None when it stored a table (even where a cancel came
        after its last step), else why there is none."""
        if self.result is not None:
            return None
        if self.stop.is_set():
            return "Cancelled: nothing was stored."
        if self.error:
            return f"The plans table failed: {self.error}"
        return "The plans table ended without a result (see the server log)."


def start_plans_work(info: Any, request: PlansRequest, features: Any) -> PlansWork:
    """Compute (or read) the plans table of a feature set in the background."""
    work = PlansWork(f"plans of {info.model_key}")

    def run(progress: Any) -> StoredPlans:
        selection = selection_of(info)
        resolved = resolve(ModelRequest(info.model_key, info.input_mode or "trimmed"))
        full = resolved.load(device="cpu")
        base = selection_entry(full, selection)
        if base.key != features.key:
            raise LabError(
                "these features cannot be matched to their model and clips again (re-extract them)"
            )
        return stored_plans_table(
            full, features, base, request, progress=progress, should_stop=work.stop.is_set
        )

    return start(work, run)  # type: ignore[return-value]
