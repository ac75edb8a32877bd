"""Precision at k of the label-flip check on cached feature sets: flip 2% of the labels (seeded), find
the layer of peak convexity of the flipped labels, and count how many of the k = #flipped clips with the
lowest clip convexity there were flipped. Prints one line per feature set and label set.

    CONVEXITY_LAB_CACHE=... python scripts/label_flip.py KEY [KEY ...] [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.data.features import load_cached_features  # noqa: E402
from core.geometry.diagnostics import diagnose_layers, precision_at  # noqa: E402
from core.geometry.synthetic import flip_labels  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("keys", nargs="+")
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--fraction", type=float, default=0.02)
    args = p.parse_args()
    for key in args.keys:
        fs = load_cached_features(key)
        for name in ("word", "speaker"):
            for seed in args.seeds:
                labels, flipped = flip_labels(
                    np.array(fs.labels(name), dtype=object), args.fraction, seed
                )
                tables = diagnose_layers(fs.features, {name: labels})[name]
                peak = int(np.argmax([t.score for t in tables]))
                got = precision_at(tables[peak], flipped)
                purity = precision_at(tables[peak], flipped, by="purity")
                print(
                    f"{fs.meta.get('model_key')} {name} seed {seed}: {len(flipped)} flipped, peak hidden "
                    f"state {peak} (convexity {tables[peak].score:.3f}); precision@{len(flipped)} "
                    f"by clip convexity {got:.2f}, by kNN purity {purity:.2f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
