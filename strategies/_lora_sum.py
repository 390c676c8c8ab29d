"""One LoRA per experience on PEMMA's frozen CT base, the sum of every trained one at inference (task-agnostic): the
shared mechanics of ``o-lora`` and ``inflora``, which differ only in how the new LoRA is kept away from the earlier
ones.

PEMMA's PET parts (PET embedding, token fusion, missing-modality adapters, PET skip) are held once, by the first
experience's adapter set (peft's ``modules_to_save``), and continued through the stream under the modality rule of
:mod:`pemma_cl.models.update_rule`, as ``pemma-lora-shared`` continues them: the comparison with it is about the
LoRA rule only. Later experiences' adapters are LoRA matrices alone.

Imported by the strategies' build functions only (it imports torch, peft and Avalanche).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence

from peft import PeftModel
from peft.tuners.lora import LoraLayer
from torch import nn

from pemma_cl.models.adapters import wrap_with_adapters
from pemma_cl.models.pemma import PemmaNetwork
from pemma_cl.training.context import BuildContext
from pemma_cl.training.plugins.adapters import AdapterPlugin
from pemma_cl.training.template import SegmentationTemplate


def experience_adapter(index: int) -> str:
    """The peft adapter name of the LoRA of the experience at ``index`` (0-based, stream order)."""
    return f"experience{index}"


#: The adapter set that holds PEMMA's PET parts: the first experience's.
OWNER = experience_adapter(0)


def lora_layers(model: nn.Module) -> Iterator[tuple[str, LoraLayer]]:
    """(name, layer) of every LoRA'd linear of ``model``, in module order."""
    for name, module in model.named_modules():
        if isinstance(module, LoraLayer):
            yield name, module


def activate_sum(model: PeftModel, adapters: Sequence[str]) -> None:
    """Make every LoRA of ``adapters`` active (their updates add up) and the first experience's PEMMA modules the
    ones in use; only the last adapter's LoRA stays trainable.

    peft's ``PeftModel.set_adapter`` takes one name; the tuner's own ``set_adapter`` takes a list (each LoRA layer
    then sums every active adapter's update), but a ``modules_to_save`` wrapper accepts at most one adapter of the
    list that has a copy, which only :data:`OWNER` has. The model's ``active_adapter`` stays :data:`OWNER`, so that
    :func:`~pemma_cl.models.adapters.train_only` finds the PEMMA modules in use.
    """
    model.set_adapter(OWNER)
    model.base_model.set_adapter(list(adapters))
    for _, layer in lora_layers(model):
        for name in adapters[:-1]:
            layer.lora_A[name].requires_grad_(False)
            layer.lora_B[name].requires_grad_(False)


class SummedLoraPlugin(AdapterPlugin):
    """A new LoRA for each experience, trained with every earlier one active and frozen; at evaluation the sum of
    every trained LoRA, whatever the test experience (its task label is never read); before any training, the CT
    base itself.

    Args:
        experience_modalities: per experience of the stream (in order), the modalities of its training data.
        experience_kinds: per experience, its task kind.
    """

    def __init__(self, experience_modalities: Sequence[Sequence[str]], experience_kinds: Sequence[str] = ()) -> None:
        super().__init__(experience_modalities, experience_kinds)
        #: Adapter names of the experiences trained so far, in order.
        self.trained: list[str] = []

    @property
    def earlier(self) -> list[str]:
        """While an experience trains, the adapters of the experiences before it (its own is the last trained)."""
        return self.trained[:-1]

    def _activate_for_training(self, strategy) -> None:
        model = strategy.model
        name = experience_adapter(strategy.experience.current_experience)
        if name not in model.peft_config:
            config = copy.deepcopy(model.peft_config[OWNER])
            config.modules_to_save = None  # the PEMMA modules stay the first set's (see the module docstring)
            model.add_adapter(name, config)
        if name not in self.trained:
            self.trained.append(name)
        activate_sum(model, self.trained[:self.trained.index(name) + 1])

    def before_eval_exp(self, strategy, **kwargs) -> None:
        # The last training activated every trained LoRA (activate_sum): their sum is evaluated as it is.
        if not self.trained:
            self._evaluate_base(strategy)


def build_summed_lora(ctx: BuildContext, plugin: SummedLoraPlugin) -> SegmentationTemplate:
    """PEMMA on the shared CT base with LoRA (no DoRA) per experience, driven by ``plugin``."""
    pemma = PemmaNetwork(ctx.bases.get("ct"), ctx.preset)
    model = wrap_with_adapters(pemma, ctx.preset, use_dora=False, first_adapter=OWNER)
    return ctx.make_strategy(model, plugins=[plugin], lr=ctx.preset.adapter_lr)
