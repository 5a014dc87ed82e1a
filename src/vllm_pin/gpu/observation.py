"""A gpu-sweep's result: its observation file's content, and the summary for the terminal."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from vllm_pin.gpu.consistency import check_consistency
from vllm_pin.gpu.plan import Config
from vllm_pin.matrix.observed import Meta, Observation, Outcome


def build_observation(meta: Meta, outcomes: Iterable[Outcome]) -> Observation:
    """The observation file's content: outcomes in a fixed order, consistency computed."""
    ordered = sorted(
        outcomes,
        key=lambda o: Config(
            o.backend, o.cudagraph_mode, o.batch_invariant, o.enforce_eager, o.run
        ).order(),
    )
    return Observation(meta=meta, consistency=check_consistency(ordered), outcomes=tuple(ordered))


def summary(obs: Observation) -> list[str]:
    """A few lines for the terminal: counts, divergences, failures by signature."""
    counts = Counter(o.status for o in obs.outcomes)
    c = obs.consistency
    lines = [
        f"gpu-sweep: vllm {obs.meta.release} on {obs.meta.gpu}: "
        + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())),
        f"gpu-sweep: reference {c.reference or '-'} token ids {[list(r) for r in c.token_ids]}",
        f"gpu-sweep: {len(c.agree)} agree; diverging: {', '.join(c.diverge) or 'none'}",
    ]
    if c.nondeterministic:
        lines.append(f"gpu-sweep: different ids on repeated runs: {', '.join(c.nondeterministic)}")
    errors = Counter(o.error for o in obs.outcomes if o.status in ("error", "timeout"))
    lines += [f"gpu-sweep: {n:>3} x {e}" for e, n in errors.most_common()]
    return lines
