"""Avalanche's own loggers for ``run --logger``: every strategy's metrics go where its users already look.

Each (seed, strategy) unit logs into its own folder of the run (``seeds/seed<S>/logs/<strategy>/``):

* ``tensorboard``: Avalanche's :class:`TensorboardLogger` (``tensorboard --logdir <run folder>``);
* ``csv``: :class:`SegmentationCSVLogger`, Avalanche's :class:`CSVLogger` writing Dice/HD95 instead of the
  classification accuracy it is written for;
* ``text``: Avalanche's :class:`TextLogger` into ``log.txt``;
* ``wandb``: Avalanche's :class:`WandBLogger`, project ``pemma-cl`` (needs ``wandb login`` or
  ``WANDB_MODE=offline``; never used by the tests).

They receive the segmentation metrics (``Dice/...`` and ``HD95/...`` per experience, input setting and
structure, after every evaluation) and the training loss per epoch. The run's results files never depend
on them.
"""

from __future__ import annotations

import contextlib
import secrets
import types
from collections.abc import Iterator, Sequence
from pathlib import Path

from avalanche.logging import BaseLogger, CSVLogger, TensorboardLogger, TextLogger

__all__ = ["SegmentationCSVLogger", "unit_loggers"]

#: W&B project every run logs to.
WANDB_PROJECT = "pemma-cl"


class SegmentationCSVLogger(CSVLogger):
    """Avalanche's CSV logger with segmentation columns.

    Avalanche 0.6.0's ``CSVLogger`` keeps only metrics named like classification accuracy
    (``Top1_Acc_*``) and loss; on this suite its accuracy columns would read 0. This subclass keeps its files,
    folder and hooks and writes ``training_results.csv`` (experience, epoch, training loss) and
    ``eval_results.csv`` (one row per segmentation metric value).
    """

    def __init__(self, log_folder: Path) -> None:
        super().__init__(log_folder=str(log_folder))
        for handle, header in ((self.training_file, "training_exp,epoch,training_loss"),
                               (self.eval_file, "eval_exp,training_exp,metric,value")):
            handle.seek(0)
            handle.truncate()
            print(header, file=handle, flush=True)

    def print_train_metrics(self, training_exp, epoch, train_acc, val_acc, train_loss, val_loss) -> None:
        print(training_exp, epoch, self._val_to_str(train_loss), sep=",", file=self.training_file, flush=True)

    def after_eval_exp(self, strategy, metric_values, **kwargs) -> None:
        for value in metric_values:
            if value.name.startswith(("Dice/", "HD95/")):
                trained = -1 if self.training_exp_id is None else self.training_exp_id  # -1: before any training
                print(strategy.experience.current_experience, trained, value.name,
                      self._val_to_str(float(value.value)), sep=",", file=self.eval_file, flush=True)


@contextlib.contextmanager
def unit_loggers(names: Sequence[str], folder: Path | None, label: str) -> Iterator[list[BaseLogger]]:
    """The loggers ``names`` of one unit, writing under ``folder``, closed when the block ends.

    Args:
        names: logger names (see the module docstring); empty for none.
        folder: the unit's (empty) log folder; None only without loggers.
        label: the unit's name in tools that show several runs (``<run>/seed<S>/<strategy>``).
    """
    with contextlib.ExitStack() as stack:
        loggers: list[BaseLogger] = []
        for name in names:
            if name == "tensorboard":
                board = TensorboardLogger(tb_log_dir=folder / "tensorboard")
                stack.callback(board.writer.close)  # flushes the event file; Avalanche never closes it
                loggers.append(board)
            elif name == "csv":
                table = SegmentationCSVLogger(folder / "csv")
                stack.callback(table.close)
                loggers.append(table)
            elif name == "text":
                loggers.append(TextLogger(stack.enter_context(open(folder / "log.txt", "w", encoding="utf-8"))))
            elif name == "wandb":
                remote = _wandb_logger(run_name=label, folder=folder)
                stack.callback(remote.wandb.finish)  # one W&B run per unit
                loggers.append(remote)
            else:
                raise ValueError(f"unknown logger {name!r}")
        yield loggers


def _wandb_logger(run_name: str, folder: Path) -> BaseLogger:
    """Avalanche's WandBLogger, made to work with the wandb it installs.

    Avalanche 0.6.0 (pinned) was written for an older wandb: it makes run ids with ``wandb.util.generate_id`` and
    checks values against ``wandb.viz.CustomChart``, both gone from wandb 0.31 (``CustomChart`` lives in
    ``wandb.plot`` now). We give it a run id and point ``wandb.viz`` at the new place.
    """
    import wandb
    from avalanche.logging import WandBLogger  # imports wandb, which is slow

    if not hasattr(wandb, "viz"):
        wandb.viz = types.SimpleNamespace(CustomChart=wandb.plot.CustomChart)
    return WandBLogger(project_name=WANDB_PROJECT, run_name=run_name, dir=folder, path=folder / "checkpoints",
                       save_code=False, params={"id": secrets.token_hex(4)})
