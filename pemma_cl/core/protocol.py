"""How a strategy is evaluated, read from its plugins, as summaries print it.

* **task-aware**: a plugin reads the test experience's task label (``uses_test_task_label``), e.g. PEMMA's
  per-task adapter sets.
* **task-agnostic**: the same model for every test experience (every continual baseline).
* **offline**: not a continual method (``offline_reference``): ``joint`` trains one model on every experience's
  data at once; each row of its R matrix is that one model, so forgetting, BWT and FWT are not defined for it.
"""

from __future__ import annotations

from collections.abc import Sequence

TASK_AWARE = "task-aware (task label given)"
TASK_AGNOSTIC = "task-agnostic"
OFFLINE = "offline (not continual)"


def evaluation_protocol(plugins: Sequence[object]) -> str:
    """:data:`OFFLINE`, :data:`TASK_AWARE` or :data:`TASK_AGNOSTIC`, from what a strategy's plugins declare."""
    if any(getattr(p, "offline_reference", False) for p in plugins):
        return OFFLINE
    return TASK_AWARE if any(getattr(p, "uses_test_task_label", False) for p in plugins) else TASK_AGNOSTIC
