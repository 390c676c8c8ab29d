"""The ``pemma-bench`` data commands: ``synth`` (the built-in cohort as a HECKTOR folder) and ``prepare`` (a HECKTOR
folder checked and cached for ``run``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from pemma_cl.cli.common import OnBadCaseOption, guarded
from pemma_cl.core.errors import UserError
from pemma_cl.run.config import ON_BAD_CASE

SizeOption = Annotated[int, typer.Option("--size", metavar="N", help="Voxels per side of each volume.")]


@guarded
def synth(
    out: Annotated[Path, typer.Option("--out", metavar="DIR", help="Folder to create (must not hold files).")],
    seed: Annotated[int, typer.Option("--seed", help="Cohort seed.")] = 0,
    case_scale: Annotated[
        float, typer.Option("--case-scale", metavar="X", help="Share of HECKTOR 2022's cases per centre (min 5).")
    ] = 0.2,
    size: SizeOption = 32,
    centre: Annotated[
        list[str] | None,
        typer.Option("--centre", metavar="NAME", help="Centre to write; repeatable. Default: all seven.",
                     show_default=False),
    ] = None,
) -> None:
    """Write the built-in synthetic cohort as an official HECKTOR 2022 training folder (NIfTI + CSVs)."""
    from pemma_cl.data.synthetic.centres import CENTRES
    from pemma_cl.data.synthetic.export import export_synthetic  # heavy: SimpleITK, pandas

    count = export_synthetic(out, seed=seed, case_scale=case_scale, size=size, centres=tuple(centre or CENTRES))
    typer.echo(f"wrote {count} cases to {out}")


@guarded
def prepare(
    hecktor: Annotated[
        Path, typer.Option("--hecktor", metavar="DIR", help="The HECKTOR 2022 training folder.")
    ],
    cache: Annotated[
        Path | None,
        typer.Option("--cache", metavar="DIR", help="Cache folder (then give 'run' the same --cache). "
                     "Default: DIR/.pemma_cache/size<N>, the one 'run --data hecktor:DIR' reads by default.",
                     show_default=False),
    ] = None,
    size: SizeOption = 32,
    on_bad_case: OnBadCaseOption = "refuse",
    workers: Annotated[
        int | None,
        typer.Option("--workers", metavar="N", help="Worker processes. Default: one per CPU core.",
                     show_default=False),
    ] = None,
) -> None:
    """Check every case of a HECKTOR 2022 folder and cache it cropped and resampled for 'run'.

    Resumable: cases already in the cache are skipped. Writes prepare_report.csv in the cache folder.
    """
    if on_bad_case not in ON_BAD_CASE:
        raise UserError(f"--on-bad-case: expected one of [{', '.join(ON_BAD_CASE)}], got {on_bad_case!r}")
    if size < 8:
        raise UserError(f"--size: expected an integer >= 8, got {size}")
    if workers is not None and workers < 1:
        raise UserError(f"--workers: expected a positive integer, got {workers}")
    if not hecktor.is_dir():
        raise UserError(f"--hecktor: folder '{hecktor}' does not exist")

    from pemma_cl.data.hecktor.prepare import prepare_folder  # heavy: SimpleITK, pandas

    done = prepare_folder(hecktor, cache, size, on_bad_case, workers or os.cpu_count() or 1)
    if done.prepared:
        typer.echo(f"prepared {done.prepared} cases in {done.seconds:.1f} s: {done.cases_per_second:.2f} cases/s "
                   f"on {done.workers} worker process(es)")
    typer.echo(f"{done.cached} cases were already cached; {len(done.bad)} bad cases skipped (reasons in the report)")
    typer.echo(str(done.report))
