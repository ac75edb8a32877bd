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
    "Cancelled": "finetune",
    "FinetuneConfig": "finetune",
    "build_classifier": "finetune",
    "classifier_encoder": "finetune",
    "evaluate": "finetune",
    "finetune": "finetune",
    "load_classifier": "finetune",
    "load_split": "finetune",
    "SweepConfig": "sweep",
    "pretrained_convexity": "sweep",
    "run_sweep": "sweep",
    "suggest_prune_point": "sweep",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
