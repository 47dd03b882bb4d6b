"""Logger.scalars: one event per call, read back by TensorBoard as separate tags."""

from __future__ import annotations

import numpy as np
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from nprl.logger import Logger


def test_scalars_round_trip_through_tensorboard(tmp_path):
    log = Logger(tmp_path, total_steps=10, progress=False)
    log.scalars("train", {"kl": 0.0123, "sFs": 3e-5, "skip": float("nan"), "none": None}, 2048)
    log.scalars("train", {"kl": 0.0042, "sFs": -1.5, "cg_residual": float("inf")}, 4096)
    log.scalars("rollout", {"ep_rew_mean": -171.25}, 4096)
    log.close()
    acc = EventAccumulator(str(tmp_path), size_guidance={"scalars": 0})
    acc.Reload()
    assert sorted(acc.Tags()["scalars"]) == ["rollout/ep_rew_mean", "train/kl", "train/sFs"]
    got = {t: [(e.step, e.value) for e in acc.Scalars(t)] for t in acc.Tags()["scalars"]}
    f32 = lambda x: float(np.float32(x))  # noqa: E731  (TensorBoard stores float32)
    assert got["train/kl"] == [(2048, f32(0.0123)), (4096, f32(0.0042))]
    assert got["train/sFs"] == [(2048, f32(3e-5)), (4096, -1.5)]
    assert got["rollout/ep_rew_mean"] == [(4096, -171.25)]
