"""Background runs on disk: launch, status, cancel, resume, views; their files through ``RunFolder``.

Modules, bottom to top (each imports only those below it; tests/test_layout.py checks it):
``folders`` (run ids, the runs folder), ``metrics`` (typed metric rows), ``spec`` (ExecutorSpec), ``records`` (typed status and
progress), ``queue`` (a waiting run's place and the slot holders), ``views`` (finished runs, sweeps, benchmarks), ``worker`` (the body every executor's worker
shares), ``local`` (the local executor), ``ray_executor`` (Ray), ``parallel`` (sharded extraction, convexity per layer), ``executors`` (the Executor seam),
``lifecycle`` (create, start, cancel, resume, restart, wait), ``grid_runs`` (a grid on an executor).
"""

from core._exports import lazy_exports

_EXPORTS = {
    "RUN_ID_PATTERN": "folders",
    "read_metrics": "folders",
    "read_metrics_file": "folders",
    "read_status": "folders",
    "run_dir": "folders",
    "runs_root": "folders",
    "RunMetrics": "metrics",
    "run_metrics": "metrics",
    "ACTIVE": "records",
    "FINAL": "records",
    "EpochEstimate": "records",
    "PointProgress": "records",
    "RunProgress": "records",
    "RunStatus": "records",
    "convexity": "records",
    "estimate_progress": "records",
    "format_seconds": "records",
    "list_runs": "records",
    "log_tail": "records",
    "progress": "records",
    "result": "records",
    "run_folders": "records",
    "status": "records",
    "status_from": "records",
    "sweep_points": "records",
    "ExecutorSpec": "spec",
    "default_address": "spec",
    "executor_spec": "spec",
    "KINDS": "worker",
    "StopFlag": "worker",
    "cancel_grace": "worker",
    "cancel_wait": "worker",
    "LocalExecutor": "local",
    "max_jobs": "queue",
    "QueuePlace": "queue",
    "queue_place": "queue",
    "RayExecutor": "ray_executor",
    "extract_features_sharded": "parallel",
    "parallel_convexity": "parallel",
    "Executor": "executors",
    "get_executor": "executors",
    "launch_choice_default": "executors",
    "launch_spec": "executors",
    "require_executor": "executors",
    "cancel": "lifecycle",
    "create_run": "lifecycle",
    "create_run_on": "lifecycle",
    "restart": "lifecycle",
    "resume": "lifecycle",
    "run_job": "lifecycle",
    "start": "lifecycle",
    "submit": "lifecycle",
    "submit_run": "lifecycle",
    "wait": "lifecycle",
    "run_grid": "grid_runs",
    "benchmarks_root": "views",
    "finished_results": "views",
    "list_benchmarks": "views",
    "sweep_view": "views",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
