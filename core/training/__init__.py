"""Fine-tuning full and pruned models, the prune sweep, full-vs-pruned benchmarks, Euclidean convexity."""

from core._exports import lazy_exports

_EXPORTS = {
    "BenchmarkResult": "benchmark",
    "BenchmarkRow": "benchmark",
    "benchmark": "benchmark",
    "benchmark_rows": "benchmark",
    "save_benchmark": "benchmark",
    "EuclideanResult": "euclidean",
    "entry_module": "euclidean",
    "euclidean_convexity": "euclidean",
    "EvalResult": "evaluation",
    "evaluate": "evaluation",
    "FinetuneConfig": "configs",
    "finetune": "finetune",
    "FinetuneResult": "finetune_result",
    "ParamCounts": "finetune_result",
    "ConvexityComparison": "model_convexity",
    "ConvexityScores": "model_convexity",
    "LayerCurve": "model_convexity",
    "GridSpec": "grid",
    "GridTable": "grid",
    "PAPER_RECIPE": "grid",
    "plan_cells": "grid",
    "grid_table": "grid",
    "read_grid_tables": "grid",
    "write_grid_table": "grid",
    "StoredGrid": "grid",
    "guarded": "grid",
    "SweepConfig": "configs",
    "SweepPoint": "sweep",
    "SweepResult": "sweep",
    "pretrained_convexity": "sweep",
    "run_sweep": "sweep",
    "suggest_prune_point": "sweep",
    "LabelledClips": "task_data",
    "clip_table": "task_data",
    "load_split": "task_data",
    "split_rule": "task_data",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
