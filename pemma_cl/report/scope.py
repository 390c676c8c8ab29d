"""The population a verdict is about: the cohort a run scored, its preset, and PEMMA's trainable share measured in it.

Every verdict the claims table prints names it (:func:`scope_text`), so that a verdict measured on the built-in
synthetic cohort at the ``tiny`` preset (PEMMA training about 19 % of its parameters, not the paper's ~8 %) is not
read as a statement about the paper's data or model.

The cohort comes from the run's data facts (the manifest's per-seed data key and data description) and, for runs
stored before those existed, from the configuration's data source and preset (``synthetic``: the built-in cohort,
volumes of the preset's crop side cubed).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pemma_cl.models.presets import PRESETS

__all__ = ["RunScope", "cohort_text", "run_scope"]

#: What a configuration without a data source or preset ran on (the defaults of ``pemma-bench run``).
DEFAULT_DATA, DEFAULT_PRESET = "synthetic", "tiny"
_SIZE = re.compile(r":size(\d+)")


@dataclass(frozen=True)
class RunScope:
    """A run's population: its cohort, its preset (and backbone) and each strategy's trainable share (percent)."""

    cohort: str
    preset: str
    trainable: Mapping[str, float] = field(default_factory=dict)

    def text(self, strategies: list[str]) -> str:
        """E.g. ``built-in synthetic cohort (32³ phantoms), preset tiny, pemma-lora trains 19.4% of its parameters``.

        Args:
            strategies: the PEMMA strategies whose measured trainable share is named (those without one are left
                out; none: the share is said to be unrecorded).
        """
        shares = [f"{name} trains {self.trainable[name]:.1f}%" for name in strategies if name in self.trainable]
        share = ", ".join(shares) + " of its parameters" if shares else "PEMMA's trainable share not recorded"
        return f"{self.cohort}, preset {self.preset}, {share}"


def cohort_text(data: str, img_size: int | None, facts: Mapping[str, Any] | None = None) -> str:
    """The cohort a run scored, in words.

    Args:
        data: the run's data source (``synthetic``, ``hecktor:DIR``, ``nnunet:DIR``).
        img_size: the preset's crop side (the built-in cohort's volume side when the data key does not say it).
        facts: one seed's data facts from the manifest (``data``: the data key; ``description``: the data
            description's dict), or None for runs stored before the manifest held them.
    """
    facts = facts or {}
    key = str(facts.get("data", ""))
    kind, _, folder = data.partition(":")
    if kind == "synthetic":
        found = _SIZE.search(key)
        side = int(found.group(1)) if found else img_size
        extras = "" if ":noshift" not in key else ", no centre shift"
        return f"built-in synthetic cohort ({side}³ phantoms{extras})"
    if kind == "hecktor":
        return "HECKTOR 2022"
    name = (facts.get("description") or {}).get("name")
    return f"nnU-Net dataset {name or folder}"


def run_scope(config: Mapping[str, Any], summary: Mapping[str, Any], manifest: Mapping[str, Any] | None) -> RunScope:
    """A stored run's :class:`RunScope` from its ``config.json``, ``summary.json`` and (where written) manifest."""
    preset_name = config.get("preset") or DEFAULT_PRESET
    recorded = ((manifest or {}).get("extra") or {}).get("preset") or {}
    img_size = recorded.get("img_size") or getattr(PRESETS.get(preset_name), "img_size", None)
    seeds = ((manifest or {}).get("extra") or {}).get("seeds") or {}
    facts = next(iter(seeds.values()), None)
    backbone = config.get("backbone")
    preset = preset_name + ("" if backbone in (None, "unetr") else f" ({backbone})")
    trainable = {name: float(entry["costs"]["trainable_pct"]) for name, entry in summary["strategies"].items()
                 if (entry.get("costs") or {}).get("trainable_pct") is not None}
    return RunScope(cohort_text(config.get("data") or DEFAULT_DATA, img_size, facts), preset, trainable)
