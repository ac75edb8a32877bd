"""How long a pruning plan's retraining-free score takes: prints figures, asserts nothing.

    python bench/plans.py                                   # whisper-tiny.en-offline on the bundled sample
    python bench/plans.py --model wavlm-base --labels speaker

Steps timed (wall clock, this machine, torch's thread count unless --threads):

- the full model's features (from the cache when ``python -m core extract MODEL sample`` ran before);
- the similarity map (linear CKA over hidden states 0..L) and its redundancy blocks;
- a top-p plan of a model without a final LayerNorm: a cached column plus the probes (seconds);
- a top-p plan of Whisper (final LayerNorm) and a block-drop plan: one pruned run over the clips, then
  the probes; and the same plan again, now read from the plan's feature cache.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.data.features import Selection, extract_features  # noqa: E402
from core.geometry.criteria import linear_cka  # noqa: E402
from core.geometry.redundancy import redundancy_blocks  # noqa: E402
from core.models.loading import resolve  # noqa: E402
from core.models.plans import PruningPlan  # noqa: E402
from core.models.request import ModelRequest  # noqa: E402
from core.training.probe_score import ProbeOptions, score_plan, selection_entry  # noqa: E402


def main() -> None:
    """Time one model's plans on one dataset and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="whisper-tiny.en-offline")
    parser.add_argument("--dataset", default="sample")
    parser.add_argument("--labels", choices=("word", "speaker"), default="word")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--threshold", type=float, default=0.9)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    t0 = time.perf_counter()
    full = resolve(ModelRequest(args.model)).load(device="cpu")
    selection = Selection.of(args.dataset, task="words" if args.labels == "word" else "speakers")
    features = extract_features(full, selection)
    base = selection_entry(full, selection)
    print(
        f"model {args.model}, {features.features.shape[0]} clips, L = {features.n_layers}, "
        f"torch threads {torch.get_num_threads()}"
    )
    print(f"full features: {time.perf_counter() - t0:.1f} s (from cache: {features.from_cache})")

    t1 = time.perf_counter()
    cka = linear_cka(features.features)
    redundancy = redundancy_blocks(cka.values, args.threshold, criterion="linear_cka")
    blocks = ", ".join(f"{b.first}-{b.last}" for b in redundancy.blocks) or "none"
    print(
        f"linear CKA + blocks (>= {args.threshold}): {time.perf_counter() - t1:.2f} s; blocks: {blocks}"
    )

    n_layers = features.n_layers
    options = ProbeOptions(labels=args.labels)
    plans = [PruningPlan.top(n_layers, n_layers), PruningPlan.top(max(1, n_layers // 2), n_layers)]
    if redundancy.blocks:
        plans.append(PruningPlan.drop(redundancy.blocks[0].dropped, n_layers))
    else:
        plans.append(PruningPlan.drop([max(2, n_layers // 2)], n_layers))
    for plan in plans:
        for attempt in ("first", "again"):
            score = score_plan(full, features, base, plan, options)
            parts = ", ".join(
                f"{s.probe} {s.accuracy:.3f} [{s.low:.3f}, {s.high:.3f}]" for s in score.scores
            )
            print(
                f"{plan.describe():>14} ({attempt}): {score.seconds:6.1f} s  {parts}  "
                f"[{score.features}]"
            )


if __name__ == "__main__":
    main()
