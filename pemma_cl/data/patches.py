"""What a case dataset serves when a volume is not the network's cubic patch: a random patch, a centred one, or all.

A case of any shape (an nnU-Net dataset's resampled volumes) trains on patches of the preset's ``img_size`` cubed
and is evaluated whole. Each dataset serves its volumes by one :data:`SAMPLINGS` rule:

* ``random`` (segmentation training, the bases' pre-training): one patch per draw, centred on a foreground voxel
  or on a background one with equal odds (MONAI's ``RandCropByPosNegLabeld``, ``pos=1, neg=1``); image channels
  and label are cropped together.
* ``centred`` (prognosis, training and evaluation): the patch centred on the label's foreground (its centre of mass,
  rounded to the nearest voxel, ties to even; the volume's centre when there is no foreground), moved inside the
  volume where it would cross an edge. Prognosis reads the encoder's tokens of this one patch, so a risk is always computed from the
  same voxels of a case.
* ``whole`` (segmentation evaluation): the whole volume; the template runs MONAI's sliding window over a volume
  that is not the patch (which also pads one smaller than the patch and crops its output back).

A volume equal to the patch is served untouched by every rule, with no random draw (the built-in cohort's cubes
keep their numbers). One smaller than the patch in some axis is padded to it first, symmetrically, with
:data:`PAD_VALUE`.

**Seeding.** Each random patch is cut by a crop whose random state is seeded with one draw from torch's global
generator, which a run seeds with the run seed before every strategy (``seed_everything``) and the bases'
pre-training with its own seed. The same seed thus gives the same patches, and a strategy's patches do not depend on
which strategies ran before it in the same process (a generator kept by the shared dataset would).
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Sequence

import torch
from monai.transforms import RandCropByPosNegLabeld, SpatialCrop, SpatialPad
from monai.transforms.utils import correct_crop_centers

#: The sampling rules (see the module docstring).
RANDOM, CENTRED, WHOLE = "random", "centred", "whole"
SAMPLINGS: tuple[str, ...] = (RANDOM, CENTRED, WHOLE)

#: Odds of a random patch centred on a foreground voxel against a background one (nnU-Net-style balance).
POS, NEG = 1.0, 1.0

#: Padding of a volume smaller than the patch, in every channel: what the input windows map their low end to
#: (:mod:`pemma_cl.data.dataset`: CT air and below, PET no uptake, both 0 after normalisation) and background in the
#: label. MONAI's sliding window pads with the same 0 at evaluation.
PAD_VALUE = 0.0

# A case without foreground (a healthy scan) can only give background-centred patches; MONAI says so at every draw.
warnings.filterwarnings("ignore", message=r".*unable to generate class balanced samples.*")


def served_shape(shape: Sequence[int], patch: int | None, sampling: str) -> tuple[int, int, int]:
    """The spatial shape a dataset serves for a volume of ``shape`` (``patch`` None: the volume's own)."""
    if patch is None or sampling == WHOLE:
        return tuple(shape)
    return (patch,) * 3


def padding_notice(shapes: Sequence[Sequence[int]], patch: int) -> str | None:
    """The one line a run prints when some of the volumes' ``shapes`` are smaller than the patch in some axis (they
    are padded); None when none is."""
    n = sum(any(side < patch for side in shape) for shape in shapes)
    if not n:
        return None
    verb = "are" if n > 1 else "is"
    return f"{n} case{'s' if n > 1 else ''} {verb} smaller than the patch ({'x'.join([str(patch)] * 3)}) in some " \
           f"axis and {verb} padded"


#: The notices this process has printed (a multi-seed run builds its stream once per seed; it says so once).
_said: set[str] = set()


def say_padding(shapes: Sequence[Sequence[int]], patch: int) -> None:
    """Print :func:`padding_notice` on stderr, once per process, when some volumes are smaller than the patch."""
    notice = padding_notice(shapes, patch)
    if notice is not None and notice not in _said:
        _said.add(notice)
        print(notice, file=sys.stderr, flush=True)


def padded(x: torch.Tensor, y: torch.Tensor, patch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``x`` [C, D, H, W] and ``y`` [1, D, H, W] padded symmetrically with :data:`PAD_VALUE` to at least ``patch``
    in every axis (axes already as large are left as they are)."""
    pad = SpatialPad((patch,) * 3, method="symmetric", mode="constant", value=PAD_VALUE)
    return _plain(pad(x)), _plain(pad(y))


def random_patch(x: torch.Tensor, y: torch.Tensor, patch: int, seed: int, pos: float = POS,
                 neg: float = NEG) -> tuple[torch.Tensor, torch.Tensor]:
    """A ``patch``-cubed crop of ``x`` and ``y`` (each at least ``patch`` in every axis) by MONAI's
    ``RandCropByPosNegLabeld`` (foreground: label > 0) with its random state seeded with ``seed``."""
    crop = RandCropByPosNegLabeld(keys=("x", "y"), label_key="y", spatial_size=(patch,) * 3, pos=pos, neg=neg,
                                  num_samples=1)
    crop.set_random_state(seed=seed)
    (sample,) = crop({"x": x, "y": y})
    return _plain(sample["x"]), _plain(sample["y"])


def centred_patch(x: torch.Tensor, y: torch.Tensor, patch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``patch``-cubed crop of ``x`` and ``y`` (each at least ``patch`` in every axis) centred on the label's
    foreground centre of mass (the volume's centre without foreground), kept inside the volume."""
    foreground = torch.nonzero(y[0] > 0)
    shape = tuple(y.shape[1:])
    if len(foreground):
        centre = [int(c) for c in torch.round(foreground.double().mean(dim=0))]
    else:
        centre = [n // 2 for n in shape]
    crop = SpatialCrop(roi_center=correct_crop_centers(centre, (patch,) * 3, shape), roi_size=(patch,) * 3)
    return _plain(crop(x)), _plain(crop(y))


def serve(x: torch.Tensor, y: torch.Tensor, patch: int | None, sampling: str) -> tuple[torch.Tensor, torch.Tensor]:
    """What a dataset serves for the volume ``x`` [C, D, H, W], ``y`` [1, D, H, W] under ``sampling`` (see the module
    docstring); ``patch`` None serves the volume itself."""
    if patch is None or sampling == WHOLE or tuple(x.shape[1:]) == (patch,) * 3:
        return x, y
    x, y = padded(x, y, patch)
    if tuple(x.shape[1:]) == (patch,) * 3:
        return x, y
    if sampling == RANDOM:
        return random_patch(x, y, patch, seed=int(torch.randint(2 ** 31 - 1, ())))
    return centred_patch(x, y, patch)


def _plain(tensor: torch.Tensor) -> torch.Tensor:
    """A MONAI MetaTensor as a plain tensor (its metadata is not needed and slows every forward pass)."""
    return tensor.as_subclass(torch.Tensor)
