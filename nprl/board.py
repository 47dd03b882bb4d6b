"""The live display of a comparison: one overall bar, one bar per busy worker, and a line
per finished run. Silent when stderr is not a terminal (CI logs, pipes, tests)."""

from __future__ import annotations

import sys

from tqdm import tqdm


class Board:
    """``start``/``update``/``finish`` are called by the parent as worker messages arrive;
    all of them are no-ops when ``enabled`` is False."""

    def __init__(self, totals: dict[str, int], enabled: bool | None = None) -> None:
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.totals, self.steps = totals, dict.fromkeys(totals, 0)
        self.done, self.failed = 0, 0
        self.slots: dict[int, tqdm] = {}  # worker pid -> its bar
        self.owner: dict[str, int] = {}  # run key -> worker pid
        self.overall = tqdm(total=sum(totals.values()) or None, desc=f"0/{len(totals)} runs",
                            unit="step", dynamic_ncols=True, position=0,
                            disable=not self.enabled, smoothing=0.05)

    def start(self, key: str, pid: int, total: int) -> None:
        if not self.enabled:
            return
        bar = self.slots.get(pid)
        if bar is None:
            bar = tqdm(total=total or None, unit="step", dynamic_ncols=True, leave=False,
                       position=len(self.slots) + 1)
            self.slots[pid] = bar
        else:
            bar.reset(total=total or None)
        bar.set_description(key, refresh=False)
        self.owner[key] = pid

    def update(self, key: str, steps: int, last_return: float | None) -> None:
        if not self.enabled:
            return
        self.steps[key] = steps
        bar = self.slots.get(self.owner.get(key, -1))
        if bar is not None:
            bar.n = steps
            if last_return is not None:
                bar.set_postfix(ret=f"{last_return:.1f}", refresh=False)
            bar.refresh()
        self._overall()

    def finish(self, key: str, status: str, error: str | None) -> None:
        self.done += 1
        self.failed += status != "ok"
        if not self.enabled:
            return
        self.steps[key] = self.totals.get(key, self.steps.get(key, 0))
        note = "" if status == "ok" else f" ({error})" if error else ""
        tqdm.write(f"{key}: {status}{note}", file=sys.stderr)
        self._overall()

    def close(self) -> None:
        for bar in self.slots.values():
            bar.close()
        self.overall.close()

    def _overall(self) -> None:
        self.overall.n = sum(self.steps.values())
        failed = f", {self.failed} failed" if self.failed else ""
        self.overall.set_description(f"{self.done}/{len(self.totals)} runs{failed}",
                                     refresh=False)
        self.overall.refresh()
