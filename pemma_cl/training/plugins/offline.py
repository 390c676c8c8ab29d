"""The offline upper bound: one model trained once on every experience's training data."""

from __future__ import annotations

from collections.abc import Sequence

from avalanche.benchmarks.utils import concat_datasets
from avalanche.core import SupervisedPlugin

from pemma_cl.evaluation.cost import dataset_bytes


class JointTrainingPlugin(SupervisedPlugin):
    """At the stream's first experience, trains on the union of all experiences' training data (each case once
    per epoch); later experiences train nothing. Not a continual method: the runner still evaluates after every
    experience, and each of those rows is the one joint model (see :mod:`pemma_cl.core.protocol`).

    Avalanche's ``JointTraining`` template does this for a whole stream passed to one ``train`` call; the
    suite's runner trains experience by experience on its segmentation template, hence this plugin.

    Args:
        datasets: the training data of every experience of the stream.
    """

    #: Read by :func:`pemma_cl.core.protocol.evaluation_protocol`.
    offline_reference = True

    def __init__(self, datasets: Sequence) -> None:
        super().__init__()
        self.data = concat_datasets(list(datasets))

    def after_train_dataset_adaptation(self, strategy, **kwargs) -> None:
        if strategy.experience.current_experience == 0:
            strategy.adapted_dataset = self.data.train()

    def before_training_exp(self, strategy, **kwargs) -> None:
        if strategy.experience.current_experience > 0:
            strategy.stop_training()  # Avalanche ends the experience before its first epoch

    def stored_bytes(self) -> int:
        """All training data of the stream."""
        return dataset_bytes(self.data)
