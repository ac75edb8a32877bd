"""Background runs on disk: the only code that knows run folders (launch, status, cancel, resume, views)."""

from core._exports import lazy_exports

_EXPORTS = {
    "RUN_ID_PATTERN": "folders",
    "read_json": "folders",
    "read_metrics": "folders",
    "read_status": "folders",
    "run_dir": "folders",
    "runs_root": "folders",
    "ACTIVE": "records",
    "FINAL": "records",
    "RunProgress": "records",
    "RunStatus": "records",
    "convexity": "records",
    "estimate_progress": "records",
    "list_runs": "records",
    "log_tail": "records",
    "progress": "records",
    "result": "records",
    "status": "records",
    "KINDS": "jobs",
    "cancel": "jobs",
    "create_run": "jobs",
    "max_jobs": "jobs",
    "restart": "jobs",
    "resume": "jobs",
    "run_job": "jobs",
    "start": "jobs",
    "submit": "jobs",
    "wait": "jobs",
    "BackgroundTask": "views",
    "benchmarks_root": "views",
    "finished_results": "views",
    "list_benchmarks": "views",
    "run_benchmark_to_folder": "views",
    "sweep_view": "views",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
