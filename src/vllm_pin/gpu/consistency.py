"""Whether every configuration that ran generated the same greedy token ids.

Greedy decoding of one model and prompts should not depend on the attention backend or the
cudagraph mode; a configuration whose ids differ computes something else.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from vllm_pin.matrix.observed import Consistency, Outcome, config_name


def check_consistency(outcomes: Sequence[Outcome]) -> Consistency:
    """Compare the greedy token ids of every configuration that ran.

    The reference is the default configuration when it ran, else the most common ids. A
    configuration run several times whose runs disagree is also listed as nondeterministic.
    """
    ran = sorted((o for o in outcomes if o.status == "ok"), key=lambda o: o.label)
    if not ran:
        return Consistency("", (), (), (), ())
    default = next((o for o in ran if o.label == config_name("", "", False, False)), None)
    if default is not None:
        ref_label, ref_ids = default.label, default.token_ids
    else:
        ref_ids = Counter(o.token_ids for o in ran).most_common(1)[0][0]
        ref_label = next(o.label for o in ran if o.token_ids == ref_ids)
    by_config: dict[str, set[tuple[tuple[int, ...], ...]]] = {}
    for o in ran:
        by_config.setdefault(o.config, set()).add(o.token_ids)
    return Consistency(
        reference=ref_label,
        token_ids=ref_ids,
        agree=tuple(o.label for o in ran if o.token_ids == ref_ids),
        diverge=tuple(o.label for o in ran if o.token_ids != ref_ids),
        nondeterministic=tuple(sorted(c for c, ids in by_config.items() if len(ids) > 1)),
    )
