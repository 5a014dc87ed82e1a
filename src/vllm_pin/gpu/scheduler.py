"""Running a gpu-sweep's plan: ``jobs`` configurations at once, each backend's probe first.

Several small configurations share the one GPU. A backend's other configurations start only
once its probe says they are worth running, outcomes already in the work dir are not run again
(a resumed sweep), and what the ``--budget`` leaves no time for is recorded as skipped.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from vllm_pin.gpu.outcome import outcome_from_run, skip_reason, skipped, unlocks_dependents
from vllm_pin.gpu.plan import Config, Knobs, Plan
from vllm_pin.gpu.process import Running, start
from vllm_pin.gpu.work_dir import WorkDir, read_json
from vllm_pin.matrix.observed import Outcome

#: seconds between two "still waiting" lines while configurations run
PROGRESS_EVERY_S = 15.0


def waiting_line(running: list[Running], queued: int, now: float) -> str:
    """What the sweep waits for: how many run, and the longest-running one's last log line."""
    oldest = min(running, key=lambda r: r.started)
    return (
        f"gpu-sweep: still waiting: {len(running)} running, {queued} queued; longest "
        f"{oldest.config.label} {now - oldest.started:.0f}s of {oldest.timeout:.0f}s "
        f"({oldest.last_log_line() or 'no output yet'})"
    )


def _line(o: Outcome) -> str:
    what = f"{o.selected_backend or o.backend or '?'}/{o.selected_mode or '?'}"
    detail = f"{what} ids={[list(r) for r in o.token_ids]}" if o.status == "ok" else o.error
    return f"{o.label:<42} {o.status:<7} {o.wall_s:>6.1f}s  {detail}"


@dataclass
class Sweep:
    """Runs a plan with ``jobs`` processes at a time and records each outcome in ``work``."""

    work: WorkDir
    knobs: Knobs
    base_kwargs: Mapping[str, Any]
    jobs: int
    timeout: float
    deadline: float | None
    outcomes: dict[str, Outcome] = field(default_factory=dict)

    def run(self, the_plan: Plan) -> dict[str, Outcome]:
        """Run every configuration not already recorded in the work dir (a resumed sweep)."""
        self.work.make()
        for config in the_plan.all():
            recorded = self.work.load(config.label)
            if recorded is not None and recorded.status != "skipped":
                self.outcomes[config.label] = recorded
        pending = [c for c in the_plan.probes if c.label not in self.outcomes]
        probes = {c.label for c in the_plan.probes}
        for backend, deps in the_plan.dependents.items():
            label = Config(backend=backend).label
            probe = self.outcomes.get(label)
            if probe is not None or not backend or label not in probes:
                pending += self._release(probe, deps)
        running: list[Running] = []
        total = len(the_plan.all())
        said = time.monotonic()
        while pending or running:
            if running and time.monotonic() - said >= PROGRESS_EVERY_S:
                said = time.monotonic()
                print(waiting_line(running, len(pending), said), flush=True)
            for r in [r for r in running if r.finished()]:
                running.remove(r)
                outcome = self._record(r)
                print(f"gpu-sweep: [{len(self.outcomes)}/{total}] {_line(outcome)}", flush=True)
                if r.config.run == 1 and r.config == Config(backend=r.config.backend):
                    pending += self._release(
                        outcome,
                        the_plan.dependents.get(r.config.backend, ()) if r.config.backend else (),
                    )
            while pending and len(running) < self.jobs:
                config = pending.pop(0)
                left = None if self.deadline is None else self.deadline - time.monotonic()
                if left is not None and left < 60:
                    self._save(skipped(config, "not started: the sweep's --budget ran out"))
                    continue
                timeout = self.timeout if left is None else min(self.timeout, left)
                running.append(start(config, self.knobs, self.work, self.base_kwargs, timeout))
            time.sleep(0.5)
        return self.outcomes

    def _release(self, probe: Outcome | None, deps: Iterable[Config]) -> list[Config]:
        """The dependents to run now; the others are recorded as skipped."""
        todo = [c for c in deps if c.label not in self.outcomes]
        if probe is None or unlocks_dependents(probe):
            return todo
        for c in todo:
            self._save(skipped(c, skip_reason(probe)))
        return []

    def _record(self, r: Running) -> Outcome:
        code, wall = r.stop()
        if r.timed_out and r.timeout < self.timeout:  # cut short by --budget: rerun on resume
            outcome = skipped(r.config, "stopped: the sweep's --budget ran out while it ran")
            self._save(outcome)
            return outcome
        log = self.work.log(r.config.label).read_text(encoding="utf-8", errors="replace")
        result = read_json(self.work.raw(r.config.label))
        outcome = outcome_from_run(
            r.config, log, result, returncode=code, wall_s=wall, timeout_s=r.timeout
        )
        self._save(outcome)
        return outcome

    def _save(self, outcome: Outcome) -> None:
        self.outcomes[outcome.label] = outcome
        self.work.save(outcome)
