"""Run logs: ``progress.csv`` (one row per logged iteration), TensorBoard events, a progress bar.

Every progress bar of ``pes-rl`` (training here, ``pes-rl record`` in :mod:`pes_rl.video`) is a
tqdm bar made by :func:`make_progress_bar`: written to stderr, so that stdout carries only results.
"""

from __future__ import annotations

import csv
import io
import math
import os
import sys

from tqdm.auto import tqdm

from pes_rl.rundir import atomic_write_text

COLUMNS = (
    "iteration",
    "env_steps",
    "wall_time",
    "steps_per_s",
    "window_return_mean",
    "window_return_std",
    "train_episode_return",
    "eval_return_mean",
    "eval_return_std",
    "grad_norm",
    "grad_spread",
    "param_norm",
    "resets",
)


def make_progress_bar(total: int, *, unit: str, desc: str, enabled: bool = True, initial: int = 0,
                      unit_scale: bool = True) -> tqdm:
    """A tqdm bar on stderr (``enabled=False``: a disabled bar whose calls do nothing);
    ``unit_scale``: counts as 1.2M rather than 1200000."""
    return tqdm(total=total, initial=min(initial, total), unit=unit, unit_scale=unit_scale, disable=not enabled,
                dynamic_ncols=True, desc=desc, file=sys.stderr)


def _finite(value) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def _iteration(row: dict) -> int | None:
    try:
        return int(row.get("iteration") or "")
    except ValueError:
        return None  # a damaged row (the process was killed mid-write) is dropped


class RunLogger:
    """Writes rows to ``RUN_DIR/progress.csv`` and ``RUN_DIR/tb``; shows a tqdm bar.

    On resume, rows after ``resume_iteration`` (written after the checkpoint the
    run resumes from) are dropped, so the CSV reads as one uninterrupted run; its wall time goes
    on from the last kept row's (:attr:`wall_time_offset`).
    """

    def __init__(self, run_dir: str | None, total_steps: int, initial_steps: int, progress_bar: bool,
                 resume_iteration: int | None = None, *, columns: tuple[str, ...] = COLUMNS,
                 x_key: str = "env_steps", desc: str = "pes"):
        """``columns``: progress.csv's; ``x_key``: the column the bar counts (to ``total_steps``)
        and TensorBoard plots against (a training run's env steps; an unroll run's iterations)."""
        self.run_dir = run_dir
        self.columns, self.x_key = columns, x_key
        self.wall_time_offset = 0.0  # seconds the run had trained before this process resumed it
        self.csv_file = None
        self.writer = None
        if run_dir is not None:
            path = os.path.join(run_dir, "progress.csv")
            kept = []
            if resume_iteration is not None and os.path.exists(path):
                with open(path, newline="") as f:
                    kept = [r for r in csv.DictReader(f) if _iteration(r) is not None and _iteration(r) <= resume_iteration]
            # the kept rows replace the file in one rename: a kill here never leaves a truncated log
            text = io.StringIO()
            header = csv.DictWriter(text, fieldnames=columns, extrasaction="ignore")
            header.writeheader()
            header.writerows(kept)
            if kept and kept[-1].get("wall_time"):
                self.wall_time_offset = float(kept[-1]["wall_time"])
            atomic_write_text(path, text.getvalue())
            self.csv_file = open(path, "a", newline="")
            self.csv = csv.DictWriter(self.csv_file, fieldnames=columns)
            from tensorboardX import SummaryWriter

            self.writer = SummaryWriter(os.path.join(run_dir, "tb"))
        unit = "step" if x_key.endswith("steps") else x_key
        self.bar = make_progress_bar(total_steps, unit=unit, desc=desc, enabled=progress_bar, initial=initial_steps)
        # the bar's two returns, each kept until a newer one comes: the mean return of the training
        # episodes that ended in the last logged chunk, and the last evaluation's mean return
        self.train_return: float | None = None
        self.eval_return: float | None = None

    def log(self, row: dict) -> None:
        if self.csv_file is not None:
            self.csv.writerow({k: ("" if row.get(k) is None or (isinstance(row.get(k), float) and math.isnan(row[k])) else row[k]) for k in self.columns})
            self.csv_file.flush()
        if self.writer is not None:
            for k, v in row.items():
                if k in ("iteration", self.x_key) or v is None:
                    continue
                if isinstance(v, list):  # a vector metric: one curve per entry (e.g. per window index)
                    for j, x in enumerate(v, start=1):
                        if math.isfinite(x):
                            self.writer.add_scalar(f"{k}/{j}", x, row[self.x_key])
                elif not (isinstance(v, float) and math.isnan(v)):
                    self.writer.add_scalar(k, v, row[self.x_key])
        if _finite(row.get("train_episode_return")):
            self.train_return = row["train_episode_return"]
        if _finite(row.get("eval_return_mean")):
            self.eval_return = row["eval_return_mean"]
        self.bar.set_postfix(self.postfix(row["steps_per_s"]), refresh=False)
        self.bar.update(max(0, min(row[self.x_key], self.bar.total) - self.bar.n))

    def postfix(self, steps_per_s: float) -> dict[str, str]:
        """The bar's fields: ``sps`` (env steps/s of the last chunk), ``train_return`` (mean return of
        the training episodes that ended most recently) and ``eval_return`` (the last evaluation's
        mean return); a return not yet known is left out."""
        postfix = {"sps": f"{steps_per_s:.0f}"}
        if self.train_return is not None:
            postfix["train_return"] = f"{self.train_return:.1f}"
        if self.eval_return is not None:
            postfix["eval_return"] = f"{self.eval_return:.1f}"
        return postfix

    def close(self) -> None:
        self.bar.close()
        if self.csv_file is not None:
            self.csv_file.close()
        if self.writer is not None:
            self.writer.close()
