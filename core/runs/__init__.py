"""Background runs on disk: the only code that knows run folders (launch, status, cancel, resume, views)."""

from core._exports import lazy_exports

_EXPORTS = {
    "ACTIVE": "jobs",
    "FINAL": "jobs",
    "cancel": "jobs",
    "create_run": "jobs",
    "list_runs": "jobs",
    "max_jobs": "jobs",
    "read_metrics": "jobs",
    "read_status": "jobs",
    "resume": "jobs",
    "run_dir": "jobs",
    "run_job": "jobs",
    "runs_root": "jobs",
    "start": "jobs",
    "submit": "jobs",
    "wait": "jobs",
    "TrainingEta": "eta",
    "training_eta": "eta",
    "BackgroundTask": "views",
    "benchmarks_root": "views",
    "finished_results": "views",
    "list_benchmarks": "views",
    "log_tail": "views",
    "params_by_prune_point": "views",
    "read_json": "views",
    "run_benchmark_to_folder": "views",
    "sweep_view": "views",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
