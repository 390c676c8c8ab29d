"""Mean and 95% interval of a metric over seeds (Student t), used by the seed summary and the plots.

Seeds of a run are few (3 to 10), so the interval is the t-interval ``mean ± t(0.975, n-1) · s / sqrt(n)``
with ``s`` the sample standard deviation. It assumes the per-seed values are roughly normal; it is an
interval over the seeds' draws (cohort, split, initialisation, data order), not over patients. With one
seed there is no interval (``low``/``high`` are None); NaN values (undefined metrics) are left out.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

#: Coverage of every interval the suite reports.
CONFIDENCE = 0.95
#: How the interval is described in summaries.
INTERVAL_NOTE = "95% Student-t interval over seeds (n-1 degrees of freedom); none with one seed"


def finite_mean(values: np.ndarray) -> float:
    """Mean over the finite entries of ``values``; NaN (without a warning) if there are none."""
    finite = values[~np.isnan(values)]
    return float(finite.mean()) if finite.size else math.nan


@dataclass(frozen=True)
class Estimate:
    """Mean of ``n`` finite values and its 95% t-interval (``low``/``high`` None below two values)."""

    mean: float | None
    low: float | None
    high: float | None
    n: int

    def as_dict(self) -> dict[str, float | int | None]:
        return asdict(self)

    def excludes(self, value: float) -> bool:
        """Whether the interval lies entirely above or below ``value`` (False without an interval)."""
        return self.low is not None and self.high is not None and (self.low > value or self.high < value)


def t_interval(values: Iterable[float | None]) -> Estimate:
    """Mean and 95% Student-t interval of the finite ``values`` (None and NaN are left out)."""
    finite = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    n = len(finite)
    if n == 0:
        return Estimate(None, None, None, 0)
    mean = sum(finite) / n
    if n == 1:
        return Estimate(mean, None, None, 1)
    sd = math.sqrt(sum((v - mean) ** 2 for v in finite) / (n - 1))
    half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, df=n - 1)) * sd / math.sqrt(n)
    return Estimate(mean, mean - half, mean + half, n)
