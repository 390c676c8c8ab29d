"""The starting point of full fine-tuning and every continual baseline: PEMMA's architecture on the CT base."""

from __future__ import annotations

from collections.abc import Sequence

from avalanche.core import SupervisedPlugin

from pemma_cl.models.pemma import PemmaNetwork
from pemma_cl.training.context import BuildContext
from pemma_cl.training.template import SegmentationTemplate


def build_on_ct_base(ctx: BuildContext, plugins: Sequence[SupervisedPlugin] = ()) -> SegmentationTemplate:
    """PEMMA's network (CT base + PET embedding, fusion, missing-modality adapters, PET skip; no LoRA) with every
    parameter trained at the run's full fine-tuning rate and modality dropout, plus the baseline's ``plugins``."""
    return ctx.make_strategy(PemmaNetwork(ctx.bases.get("ct"), ctx.preset, ehr_size=ctx.ehr_size), plugins=plugins)
