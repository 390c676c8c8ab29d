"""The ``pemma-bench`` data commands: ``synth`` (the built-in cohort as a HECKTOR folder) and ``prepare`` (a HECKTOR
folder checked and cached for ``run``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from pemma_cl.cli.common import CaseTableOption, OnBadCaseOption, SpacingOption, guarded, parsed_spacing
from pemma_cl.core.errors import UserError
from pemma_cl.run.config import ON_BAD_CASE

SizeOption = Annotated[int, typer.Option("--size", metavar="N", help="Voxels per side of each volume.")]
#: The layouts ``synth`` writes.
SYNTH_FORMATS = ("hecktor", "nnunet")


@guarded
def synth(
    out: Annotated[Path, typer.Option("--out", metavar="DIR", help="Folder to create (must not hold files).")],
    format_: Annotated[
        str, typer.Option("--format", metavar="hecktor|nnunet",
                          help="hecktor: the official HECKTOR 2022 training folder (life-size field of view, int16 "
                               "CT, coarser PET grid); nnunet: nnU-Net's raw layout with a case table (cases.csv), "
                               "holding exactly the training and test cases '--data synthetic' has at --size.")
    ] = "hecktor",
    seed: Annotated[int, typer.Option("--seed", help="Cohort seed.")] = 0,
    case_scale: Annotated[
        float | None,
        typer.Option("--case-scale", metavar="X", help="Share of HECKTOR 2022's cases per centre (min 5). "
                     "Default: 0.2 (hecktor); the built-in run's 0.18 (nnunet).", show_default=False),
    ] = None,
    test_cases_per_centre: Annotated[
        int | None,
        typer.Option("--test-cases-per-centre", metavar="N", help="nnunet only: FDG test cases per centre "
                     "(PSMA: half as many). Default: the built-in run's 25.", show_default=False),
    ] = None,
    size: SizeOption = 32,
    centre: Annotated[
        list[str] | None,
        typer.Option("--centre", metavar="NAME", help="Centre to write; repeatable. Default: all seven.",
                     show_default=False),
    ] = None,
    tracer: Annotated[
        list[str] | None,
        typer.Option("--tracer", metavar="NAME", help="PET tracer to write (FDG, PSMA); repeatable. Default: FDG. "
                     "PSMA only in nnunet.", show_default=False),
    ] = None,
) -> None:
    """Write the built-in synthetic cohort as a HECKTOR 2022 training folder or in nnU-Net's raw layout."""
    from pemma_cl.data.synthetic.centres import CENTRES
    from pemma_cl.data.synthetic.tracers import DEFAULT_TRACERS, check_tracers

    if format_ not in SYNTH_FORMATS:
        raise UserError(f"--format: expected one of [{', '.join(SYNTH_FORMATS)}], got {format_!r}")
    if size < 8:
        raise UserError(f"--size: expected an integer >= 8, got {size}")
    tracers = check_tracers(tracer or DEFAULT_TRACERS, "--tracer")
    centres = tuple(centre or CENTRES)
    if format_ == "hecktor":
        if test_cases_per_centre is not None:
            raise UserError("--test-cases-per-centre: only with --format nnunet (a HECKTOR training folder has no "
                            "test cases)")
        if tracers != DEFAULT_TRACERS:
            raise UserError("--tracer: a HECKTOR folder holds FDG cases only; write PSMA with --format nnunet")
        from pemma_cl.data.synthetic.export import HECKTOR_CASE_SCALE, export_synthetic  # heavy: SimpleITK, pandas

        scale = HECKTOR_CASE_SCALE if case_scale is None else case_scale
        count = export_synthetic(out, seed=seed, case_scale=scale, size=size, centres=centres)
        typer.echo(f"wrote {count} cases to {out}")
        return
    if test_cases_per_centre is not None and test_cases_per_centre < 1:
        raise UserError(f"--test-cases-per-centre: expected a positive integer, got {test_cases_per_centre}")
    from pemma_cl.data.sources import SYNTHETIC_CASE_SCALE, SYNTHETIC_TEST_CASES_PER_CENTRE
    from pemma_cl.data.synthetic.nnunet_export import export_nnunet  # heavy: SimpleITK, pandas

    scale = SYNTHETIC_CASE_SCALE if case_scale is None else case_scale
    n_train, n_test = export_nnunet(out, seed=seed, case_scale=scale,
                                    test_cases_per_centre=test_cases_per_centre or SYNTHETIC_TEST_CASES_PER_CENTRE,
                                    size=size, centres=centres, tracers=tracers)
    typer.echo(f"wrote {n_train} training and {n_test} test cases to {out} (nnU-Net raw layout with cases.csv)")


@guarded
def prepare(
    ctx: typer.Context,
    hecktor: Annotated[
        Path | None, typer.Option("--hecktor", metavar="DIR", help="The HECKTOR 2022 training folder (the same as "
                                  "--data hecktor:DIR).", show_default=False)
    ] = None,
    data: Annotated[
        str | None, typer.Option("--data", metavar="SOURCE", help="'hecktor:DIR' or 'nnunet:DIR' (a PET/CT dataset "
                                 "in nnU-Net's raw layout with a case table).", show_default=False)
    ] = None,
    cache: Annotated[
        Path | None,
        typer.Option("--cache", metavar="DIR", help="Cache folder (then give 'run' the same --cache). "
                     "Default: DIR/.pemma_cache/size<N> (HECKTOR) or DIR/.pemma_cache/spacing<Z>x<Y>x<X> (nnU-Net), "
                     "the one 'run --data ...:DIR' reads by default.", show_default=False),
    ] = None,
    size: SizeOption = 32,
    case_table: CaseTableOption = None,
    spacing: SpacingOption = None,
    on_bad_case: OnBadCaseOption = "refuse",
    workers: Annotated[
        int | None,
        typer.Option("--workers", metavar="N", help="Worker processes. Default: one per CPU core.",
                     show_default=False),
    ] = None,
) -> None:
    """Check every case of a HECKTOR 2022 folder or nnU-Net dataset and cache it for 'run'.

    HECKTOR: cropped to the head-and-neck box and resampled to --size voxels per side. nnU-Net: whole volumes
    resampled to one spacing (--spacing, default the dataset's median). Resumable: cases already in the cache are
    skipped. Writes prepare_report.csv in the cache folder.
    """
    if on_bad_case not in ON_BAD_CASE:
        raise UserError(f"--on-bad-case: expected one of [{', '.join(ON_BAD_CASE)}], got {on_bad_case!r}")
    if workers is not None and workers < 1:
        raise UserError(f"--workers: expected a positive integer, got {workers}")
    if (hecktor is None) == (data is None):
        raise UserError("prepare: give the data once: --data nnunet:DIR, --data hecktor:DIR or --hecktor DIR")
    kind, colon, folder = ("hecktor", ":", str(hecktor)) if hecktor is not None else data.partition(":")
    if kind not in ("hecktor", "nnunet") or not colon or not folder:
        raise UserError(f"--data: expected 'hecktor:DIR' or 'nnunet:DIR', got {data!r}")
    option = "--hecktor" if hecktor is not None else "--data"
    given = [name for name in ("size", "case_table", "spacing")
             if getattr(ctx.get_parameter_source(name), "name", None) == "COMMANDLINE"]
    if kind == "hecktor" and {"case_table", "spacing"} & set(given):
        raise UserError(f"--{given[-1].replace('_', '-')}: only for an nnU-Net dataset (--data nnunet:DIR)")
    if kind == "nnunet" and "size" in given:
        raise UserError("--size: only for a HECKTOR folder; an nnU-Net dataset keeps whole volumes (give --spacing)")
    if size < 8:
        raise UserError(f"--size: expected an integer >= 8, got {size}")
    if not Path(folder).is_dir():
        raise UserError(f"{option}: folder '{folder}' does not exist")
    n_workers = workers or os.cpu_count() or 1
    if kind == "hecktor":
        from pemma_cl.data.hecktor.prepare import prepare_folder  # heavy: SimpleITK, pandas

        done = prepare_folder(Path(folder), cache, size, on_bad_case, n_workers)
    else:
        from pemma_cl.data.nnunet.prepare import prepare_dataset  # heavy: SimpleITK, pandas

        done = prepare_dataset(Path(folder), case_table, cache, parsed_spacing(spacing), on_bad_case, n_workers)
    if done.prepared:
        typer.echo(f"prepared {done.prepared} cases in {done.seconds:.1f} s: {done.cases_per_second:.2f} cases/s "
                   f"({60 * done.cases_per_second:.1f} cases/min) on {done.workers} worker process(es)")
    typer.echo(f"{done.cached} cases were already cached; {len(done.bad)} bad cases skipped (reasons in the report)")
    typer.echo(str(done.report))
