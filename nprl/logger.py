"""TensorBoard scalars under stable tags, and a terminal progress bar.

Tags: ``rollout/ep_rew_mean``, ``rollout/ep_len_mean``, ``eval/mean_reward`` (and
``eval/mean_reward_stochastic`` with ``eval_stochastic``), ``time/fps``, and
``train/<name>`` for every scalar an agent's ``update`` returns (``train/kl``,
``train/cg_residual``, ``train/sFs``, ...).
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

from tensorboard.compat.proto.summary_pb2 import Summary
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm


class Logger:
    """Writes to ``run_dir`` (TensorBoard event files); ``progress`` shows a bar on a TTY."""

    def __init__(self, run_dir: Path, total_steps: int, progress: bool = True,
                 initial_steps: int = 0, purge_step: int | None = None) -> None:
        if purge_step is not None:
            _wait_for_a_later_second(run_dir)
        self.writer = SummaryWriter(str(run_dir), purge_step=purge_step)
        show = progress and sys.stderr.isatty()
        self.bar = tqdm(total=total_steps, initial=initial_steps, unit="step", disable=not show,
                        dynamic_ncols=True, smoothing=0.1)

    def config(self, config: dict) -> None:
        text = "```\n" + json.dumps(config, indent=2, default=str) + "\n```"
        self.writer.add_text("config", text, 0)

    def scalars(self, prefix: str, values: dict[str, float], step: int) -> None:
        """``<prefix>/<name>`` at ``step`` for every finite value, as one event: the ~20
        scalars of an update cost ~1.8 ms as one ``add_scalar`` event each (~0.9 µs per
        env step of a 2,048-step Pendulum batch), mostly the records' checksums."""
        found = [Summary.Value(tag=f"{prefix}/{name}", simple_value=float(value))
                 for name, value in values.items()
                 if value is not None and math.isfinite(float(value))]
        if found:
            self.writer._get_file_writer().add_summary(Summary(value=found), step)

    def progress(self, steps: int, fps: float, last_return: float | None) -> None:
        self.bar.n = steps
        post = {"fps": f"{fps:.0f}"}
        if last_return is not None:
            post["return"] = f"{last_return:.1f}"
        self.bar.set_postfix(post, refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        self.bar.close()
        self.writer.flush()
        self.writer.close()


def _wait_for_a_later_second(run_dir: Path) -> None:
    """Sleep (at most a second) until a new event file would sort after every existing one.

    Readers replay a run's event files in name order, and the name is
    ``events.out.tfevents.<whole seconds>.<host>.<pid>.<counter>``: two files made in the
    same second order by pid and counter as *strings* ("10" < "9"), so a resumed run's file
    could be read before the one it purges, and the purge would miss the steps it must drop.
    """
    stamps = [int(stamp) for p in Path(run_dir).glob("events.out.tfevents.*")
              if (stamp := p.name.split(".")[3]).isdigit()]
    while stamps and int(time.time()) <= max(stamps):
        time.sleep(0.05)
