"""One model per experience: a whole network per task label, each fine-tuned from the CT base on its own
experience (as ``full-finetune`` starts: PEMMA's architecture on the CT base, every parameter trained), picked at
evaluation by the test experience's task label (task-aware).

The upper bound of the task-aware methods that the segmentation continual-learning literature asks for, and the
"trained on that experience alone from the same base" model that plasticity is measured against. Each network is
frozen once its task is trained, so forgetting is zero by construction; the price shows in the cost columns: a
whole network is stored per task (*bytes per task* is one network, *Trainable % (stored)* is 100 / tasks).
"""

from __future__ import annotations

from pemma_cl.strategy_api.registry import register_strategy


@register_strategy("separate-models", "One network per task, each fully fine-tuned from the CT base on its own "
                                      "experience, picked by task label (task-aware; a whole network stored per "
                                      "task)", family="reference", task_kinds=("segmentation", "prognosis"))
def build(ctx):
    import copy

    from pemma_cl.models.pemma import PemmaNetwork
    from pemma_cl.training.plugins.separate_models import PerTaskNetworks, SeparateModelsPlugin

    start = PemmaNetwork(ctx.bases.get("ct"), ctx.preset, ehr_size=ctx.ehr_size)
    model = PerTaskNetworks(copy.deepcopy(start), ctx.task_labels[0])
    return ctx.make_strategy(model, plugins=[SeparateModelsPlugin(start)])
