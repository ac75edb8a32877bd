"""Elapsed time and time remaining of a fine-tune, from its metrics rows (issue 11, defect 11)."""

from __future__ import annotations

import pytest

from core.runs.eta import TrainingEta, training_eta


def _train(epoch: int, progress: float, t: float) -> dict:
    return {"kind": "train", "epoch": epoch, "epoch_progress": progress, "time": t, "step": 1}


def test_first_epoch_uses_its_own_rate() -> None:
    rows = [_train(1, 0.25, 110.0), _train(1, 0.5, 120.0)]  # 10 s per quarter epoch
    eta = training_eta(rows, epochs=3, started=100.0, now=121.0)
    assert eta.elapsed == pytest.approx(21.0)
    assert eta.epoch == 1 and eta.seconds_per_epoch == pytest.approx(40.0)
    assert eta.epoch_remaining == pytest.approx(20.0)
    assert eta.total_remaining == pytest.approx(20.0 + 2 * 40.0)


def test_later_epochs_use_the_median_of_finished_ones() -> None:
    rows = [
        _train(1, 1.0, 130.0),
        {"kind": "eval", "epoch": 1, "epoch_seconds": 30.0, "time": 131.0},
        {"kind": "eval", "epoch": 2, "epoch_seconds": 50.0, "time": 182.0},
        _train(3, 0.5, 200.0),
    ]
    eta = training_eta(rows, epochs=4, now=201.0)
    assert eta.elapsed == pytest.approx(71.0)  # from the first row
    assert (eta.epoch, eta.epoch_fraction, eta.seconds_per_epoch) == (3, 0.5, 40.0)
    assert eta.epoch_remaining == pytest.approx(20.0)
    assert eta.total_remaining == pytest.approx(60.0)
    assert TrainingEta.from_dict(eta.to_dict()) == eta


def test_unknown_until_there_is_a_rate_and_zero_when_done() -> None:
    assert training_eta([_train(1, 0.1, 5.0)], epochs=2, now=6.0).total_remaining is None
    assert training_eta([], epochs=2, now=6.0).epoch_remaining is None
    done = [{"kind": "eval", "epoch": 2, "epoch_seconds": 9.0, "time": 20.0}]
    assert training_eta(done, epochs=2, now=30.0).total_remaining == 0.0
