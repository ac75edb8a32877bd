"""Importing features extracted elsewhere: the CLI path (files on disk) and Setup's upload path (streams
copied to a temp folder first), on the same arrays in the same run; prints figures, asserts nothing.

    python bench/import_features.py                  # N = 4,000, 13 hidden states, D = 768 (160 MB)
    python bench/import_features.py --n 1000 --d 256

Each path imports a .npy of (N, L+1, D) float32 and an .npz of one (N, D) array per hidden state into
a fresh cache (so nothing is a cache hit), best of ``--repeats``; the ratio is upload / file.
Every figure is printed with the load average: the machine is shared, so rely on same-run ratios.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.data.imported import import_features, import_uploaded  # noqa: E402


def load() -> str:
    """The 1/5/15-minute load averages, to print beside every figure."""
    return "load avg " + "/".join(f"{v:.1f}" for v in os.getloadavg())


def best(repeats: int, work) -> float:
    """Best wall time of ``work(i)`` over ``repeats`` calls, each into a fresh cache."""
    times = []
    for i in range(repeats):
        with tempfile.TemporaryDirectory() as cache:
            os.environ["CONVEXITY_LAB_CACHE"] = cache
            t0 = time.perf_counter()
            work(i)
            times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=4000)
    p.add_argument("--states", type=int, default=13)
    p.add_argument("--d", type=int, default=768)
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    rng = np.random.default_rng(0)
    hidden = rng.standard_normal((a.n, a.states, a.d), dtype=np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        np.save(folder / "h.npy", hidden)
        np.savez(folder / "h.npz", **{f"layer_{i}": hidden[:, i] for i in range(a.states)})
        labels = folder / "labels.csv"
        labels.write_text("word,speaker\n" + "".join(f"w{i % 35},s{i % 9}\n" for i in range(a.n)))
        print(
            f"N = {a.n}, {a.states} hidden states, D = {a.d}: {hidden.nbytes / 1e6:.0f} MB float32"
        )
        for name in ("h.npy", "h.npz"):
            data, table = (folder / name).read_bytes(), labels.read_bytes()
            file_s = best(a.repeats, lambda i, n=name: import_features(folder / n, labels))
            upload_s = best(
                a.repeats,
                lambda i, n=name, data=data, table=table: import_uploaded(
                    io.BytesIO(data), n, io.BytesIO(table), "labels.csv"
                ),
            )
            mb = len(data) / 1e6
            print(
                f"{name}: file {file_s:.2f} s ({mb / file_s:.0f} MB/s), upload {upload_s:.2f} s "
                f"({mb / upload_s:.0f} MB/s), upload / file = {upload_s / file_s:.2f} ({load()})"
            )


if __name__ == "__main__":
    main()
