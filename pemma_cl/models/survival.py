"""The prognosis head: a risk score (log-hazard) from a segmentation network's encoder tokens and the EHR vector.

A model built for a stream with prognosis experiences carries one :class:`SurvivalHead`; it reads the tokens the
(frozen or trained) ViT encoder produces, mean-pooled, and an EHR branch (a small MLP on the clinical vector with
its missingness indicators, :mod:`pemma_cl.data.ehr`) whose output joins the image features. Only the encoder
runs for prognosis: the decoder is not needed for a risk score.
"""

from __future__ import annotations

import torch
from torch import nn

#: Width of the EHR branch's output.
EHR_WIDTH = 16


class SurvivalHead(nn.Module):
    """Risk = linear(mean-pooled tokens ⊕ MLP(EHR vector)).

    Args:
        hidden_size: width of the encoder tokens.
        ehr_size: length of the EHR vector (:attr:`~pemma_cl.data.description.DatasetDescription.ehr_size`).
    """

    def __init__(self, hidden_size: int, ehr_size: int) -> None:
        super().__init__()
        self.token_norm = nn.LayerNorm(hidden_size)
        self.ehr_branch = nn.Sequential(nn.Linear(ehr_size, EHR_WIDTH), nn.GELU(), nn.Linear(EHR_WIDTH, EHR_WIDTH))
        self.risk = nn.Linear(hidden_size + EHR_WIDTH, 1)

    def forward(self, tokens: torch.Tensor, ehr: torch.Tensor) -> torch.Tensor:
        """Args: tokens [B, N, h] from the encoder; ehr [B, ehr_size]. Returns the risk [B]."""
        image = self.token_norm(tokens.mean(dim=1))
        return self.risk(torch.cat((image, self.ehr_branch(ehr)), dim=-1)).squeeze(-1)


def survival_head(hidden_size: int, ehr_size: int) -> SurvivalHead:
    """A new head, drawn from the global generator without advancing it: adding a prognosis head to a model does
    not change any other initialisation of a run (segmentation-only streams give the same numbers as before)."""
    with torch.random.fork_rng(devices=[]):
        return SurvivalHead(hidden_size, ehr_size)
