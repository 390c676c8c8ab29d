"""Rehearsal plugins: a replay buffer of whole cases, and retraining on every experience seen so far."""

from __future__ import annotations

from avalanche.core import SupervisedPlugin
from avalanche.training.plugins import ReplayPlugin
from avalanche.training.storage_policy import ExperienceBalancedBuffer

from pemma_cl.evaluation.cost import dataset_bytes


class CaseReplayPlugin(ReplayPlugin):
    """Avalanche's replay: a buffer of ``budget`` whole cases split evenly over the experiences seen (a random
    reservoir per experience, with its modality mask and task label), ``batch_size_mem`` of them drawn into every
    training mini-batch beside the new experience's cases from the second experience on.

    Args:
        budget: cases the buffer holds in all.
        batch_size_mem: buffer cases added to each mini-batch.
    """

    def __init__(self, budget: int, batch_size_mem: int) -> None:
        super().__init__(mem_size=budget, batch_size_mem=batch_size_mem,
                         storage_policy=ExperienceBalancedBuffer(max_size=budget, adaptive_size=True))

    def stored_bytes(self) -> int:
        """The buffer's cases (inputs, labels, masks)."""
        return dataset_bytes(self.storage_policy.buffer)


class CumulativeDataPlugin(SupervisedPlugin):
    """Trains each experience on the union of the training data of every experience seen so far.

    Avalanche's ``Cumulative`` does this as a strategy template; as a plugin it runs on the suite's segmentation
    template. The model is not reset: each experience continues from the previous one's weights (as Avalanche's).
    """

    def __init__(self) -> None:
        super().__init__()
        self.seen = None

    def after_train_dataset_adaptation(self, strategy, **kwargs) -> None:
        current = strategy.adapted_dataset
        self.seen = current if self.seen is None else self.seen.concat(current)
        strategy.adapted_dataset = self.seen

    def stored_bytes(self) -> int:
        """Every case seen so far (all of it is retrained on at the next experience)."""
        return 0 if self.seen is None else dataset_bytes(self.seen)
