"""Rehearsal plugins: a replay buffer of whole cases, retraining on every experience seen so far, and A-GEM's
episodic memory."""

from __future__ import annotations

import torch
from avalanche.benchmarks.utils import concat_datasets
from avalanche.core import SupervisedPlugin
from avalanche.training.plugins import AGEMPlugin, ReplayPlugin
from avalanche.training.storage_policy import ExperienceBalancedBuffer

from pemma_cl.evaluation.cost import dataset_bytes
from pemma_cl.training.single_case import segment


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


class SegmentationAGEMPlugin(AGEMPlugin):
    """Avalanche's A-GEM (Chaudhry et al., 2019): when a step's gradient would raise the loss on an episodic memory
    of earlier cases, it is projected so that it does not. Avalanche's gradient projection is used as it is; the
    memory is redone: Avalanche 0.6.0 runs the reference batch as ``model(x)`` without its modality mask, and splits
    ``sample_size`` evenly over experiences (``sample_size // n``: zero cases once there are more experiences than
    ``sample_size``). Here each reference batch is ``sample_size`` cases drawn at random from the whole memory and
    run under their own modality masks.

    Args:
        patterns_per_experience: cases kept from each experience (a random subset).
        sample_size: cases in each reference batch.
    """

    #: Avalanche 0.6.0's after_backward flattens each gradient with ``.view(-1)``, which a channels-last gradient
    #: does not allow: the template keeps this strategy's weights in the default layout.
    needs_contiguous_weights = True

    def __init__(self, patterns_per_experience: int, sample_size: int) -> None:
        super().__init__(patterns_per_experience, sample_size)
        self.memory = None

    def before_training_iteration(self, strategy, **kwargs) -> None:
        if self.memory is None:
            return
        strategy.model.train()
        strategy.optimizer.zero_grad()
        x, y, mask = (t.to(strategy.device) for t in self.sample_from_memory()[:3])
        strategy._criterion(segment(strategy.model, x, mask.bool()), y).backward()
        self.reference_gradients = torch.cat([
            p.grad.view(-1) if p.grad is not None else torch.zeros(p.numel(), device=strategy.device)
            for p in strategy.model.parameters()])
        strategy.optimizer.zero_grad()

    def sample_from_memory(self):
        indices = torch.randint(len(self.memory), (self.sample_size,)).tolist()
        return self.memory.collate_fn([self.memory[i] for i in indices])

    @torch.no_grad()
    def update_memory(self, dataset, num_workers=0, **kwargs) -> None:
        kept = torch.randperm(len(dataset))[: self.patterns_per_experience].tolist()
        self.buffers.append(dataset.subset(sorted(kept)))
        self.memory = concat_datasets(self.buffers)

    def stored_bytes(self) -> int:
        """The episodic memory's cases."""
        return 0 if self.memory is None else dataset_bytes(self.memory)
