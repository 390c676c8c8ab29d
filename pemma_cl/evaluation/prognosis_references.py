"""What a learned prognosis model is read against: classical Cox models (lifelines) and, on synthetic data, the
ceiling of what each modality can reveal.

All are fitted on the training cases of the stream's last prognosis experience and scored on its test cases (the
cases every strategy's C-index is measured on), with the same bootstrap draws as the strategies.

* **CoxPH, clinical**: penalised Cox model on the EHR vector (values and missingness indicators).
* **CoxPH, predicted-mask features + clinical**: tumour volume, PET SUVmax, SUVmean and total lesion glycolysis
  (TLG = SUVmean x volume) measured inside the tumour mask (every foreground structure of the data, together) that
  the shared CT base predicts from CT, plus the EHR vector: the pipeline a clinic could run without any continual
  learning.
* **Ceilings** (synthetic cohort only, from :attr:`CaseRecord.truth`): the C-index of the true latent risk, and
  of Cox models on the true quantities each modality can reveal: tumour volume (CT), + true primary SUVmax (PET),
  + the recorded clinical fields (EHR).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from lifelines import CoxPHFitter
from monai.inferers import sliding_window_inference
from torch import nn

from pemma_cl.data.dataset import case_tensors
from pemma_cl.data.description import ClinicalField
from pemma_cl.data.ehr import ehr_columns, ehr_vector
from pemma_cl.data.records import CaseRecord
from pemma_cl.stats.cindex import cindex_with_interval

#: Ridge penalty of every reference Cox model (lifelines' ``penalizer``; stabilises fits with indicators).
PENALIZER = 0.1
#: Cases per forward pass of the CT base.
MASK_BATCH = 16
#: Mask features of the image-derived reference.
MASK_FEATURES: tuple[str, ...] = ("log_volume_ml", "suv_max", "suv_mean", "log_tlg")


def base_mask_predictor(unetr: nn.Module, roi_size: int, device: torch.device
                        ) -> Callable[[Sequence[CaseRecord]], list[np.ndarray]]:
    """The tumour masks (voxels of any foreground structure) that the CT base ``unetr`` (one input channel) predicts
    from CT alone."""
    model = unetr.to(device).eval()

    @torch.no_grad()
    def predict(cases: Sequence[CaseRecord]) -> list[np.ndarray]:
        masks = []
        for batch in _same_shape_batches(cases):
            ct = torch.stack([case_tensors(c)[0][:1] for c in batch]).to(device)
            logits = sliding_window_inference(ct, (roi_size,) * 3, sw_batch_size=MASK_BATCH, predictor=model,
                                              overlap=0.5)
            masks += list((logits.argmax(dim=1) > 0).cpu().numpy())
        return masks

    return predict


def _same_shape_batches(cases: Sequence[CaseRecord]) -> list[list[CaseRecord]]:
    """Consecutive cases in batches of at most :data:`MASK_BATCH` that share one volume shape (they stack)."""
    batches: list[list[CaseRecord]] = []
    for case in cases:
        if batches and len(batches[-1]) < MASK_BATCH and batches[-1][0].ct.shape == case.ct.shape:
            batches[-1].append(case)
        else:
            batches.append([case])
    return batches


def mask_features(case: CaseRecord, mask: np.ndarray) -> dict[str, float]:
    """Volume, SUVmax, SUVmean and TLG of ``case`` inside the boolean ``mask`` (all zero for an empty mask)."""
    voxels = int(mask.sum())
    volume_ml = voxels * float(np.prod(case.spacing)) / 1000.0
    suv = case.pet[mask] if voxels else np.zeros(1)
    suv_mean = float(suv.mean()) if voxels else 0.0
    return {"log_volume_ml": float(np.log1p(volume_ml)), "suv_max": float(suv.max()), "suv_mean": suv_mean,
            "log_tlg": float(np.log1p(suv_mean * volume_ml))}


def _frame(cases: Sequence[CaseRecord], features: Callable[[CaseRecord], dict[str, float]]) -> pd.DataFrame:
    rows = [{**features(c), "time": c.rfs_days, "event": c.relapse} for c in cases]
    return pd.DataFrame(rows)


def cox_reference(train: pd.DataFrame, test: pd.DataFrame, seed: int) -> dict:
    """A penalised CoxPH fitted on ``train`` (columns: features, ``time``, ``event``), scored on ``test``; features
    constant over the training cases are left out (nothing to learn from them)."""
    varying = [c for c in train.columns if c not in ("time", "event") and train[c].nunique() > 1]
    fitter = CoxPHFitter(penalizer=PENALIZER).fit(train[[*varying, "time", "event"]], "time", "event")
    risk = fitter.predict_log_partial_hazard(test[varying]).to_numpy()
    return {**cindex_with_interval(test["time"], test["event"], risk, seed), "features": varying}


def prognosis_references(train: Sequence[CaseRecord], test: Sequence[CaseRecord],
                         predicted_masks: Callable[[Sequence[CaseRecord]], list[np.ndarray]] | None,
                         seed: int, clinical_fields: Mapping[str, ClinicalField]) -> dict[str, dict]:
    """Every reference of the module docstring that the data allow, by name.

    Args:
        train: training cases (with an RFS endpoint).
        test: the scored cases.
        predicted_masks: the CT base's tumour masks of a list of cases; None leaves out the mask reference.
        seed: seed of the bootstrap draws (the strategies' seed: paired intervals).
        clinical_fields: the data's clinical fields (the EHR vector's entries).
    """
    # A cohort without clinical fields gets no EHR reference and mask features alone.
    with_ehr = any(name in c.clinical for c in [*train, *test] for name in clinical_fields)

    def ehr(case: CaseRecord) -> dict[str, float]:
        return dict(zip(ehr_columns(clinical_fields), ehr_vector(case.clinical, clinical_fields).tolist()))

    references = {}
    if with_ehr:
        references["CoxPH: clinical (EHR)"] = cox_reference(_frame(train, ehr), _frame(test, ehr), seed)
    if predicted_masks is not None:
        masks = {c.case_id: m for c, m in zip([*train, *test], predicted_masks([*train, *test]))}

        def image_features(case: CaseRecord) -> dict[str, float]:
            return {**mask_features(case, masks[case.case_id]), **(ehr(case) if with_ehr else {})}

        name = "CoxPH: CT-base mask features (volume, SUVmax, SUVmean, TLG)" + (" + EHR" if with_ehr else "")
        references[name] = cox_reference(_frame(train, image_features), _frame(test, image_features), seed)
    if all(c.truth for c in [*train, *test]):
        scored = _frame(test, lambda c: {"risk": c.truth["risk"]})
        references["ceiling: true latent risk"] = {
            **cindex_with_interval(scored["time"], scored["event"], scored["risk"], seed), "features": ["risk"]}
        sets = {"ceiling: true tumour volume (CT)": lambda c: {"log_volume": float(np.log(c.truth["volume_ml"]))},
                "ceiling: + true SUVmax (PET)": lambda c: {"log_volume": float(np.log(c.truth["volume_ml"])),
                                                           "suv_max": c.truth["suv_max"]}}
        sets["ceiling: + recorded clinical fields (EHR)"] = lambda c: {**sets["ceiling: + true SUVmax (PET)"](c),
                                                                       **ehr(c)}
        for name, features in sets.items():
            references[name] = cox_reference(_frame(train, features), _frame(test, features), seed)
    return references
