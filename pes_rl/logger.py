"""Run logs: ``progress.csv`` (one row per logged iteration), TensorBoard events, a progress bar."""

from __future__ import annotations

import csv
import io
import math
import os

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


def _iteration(row: dict) -> int | None:
    try:
        return int(row.get("iteration") or "")
    except ValueError:
        return None  # a damaged row (the process was killed mid-write) is dropped


class RunLogger:
    """Writes rows to ``RUN_DIR/progress.csv`` and ``RUN_DIR/tb``; shows a tqdm bar.

    On resume, rows after ``resume_iteration`` (written after the checkpoint the
    run resumes from) are dropped, so the CSV reads as one uninterrupted run.
    """

    def __init__(self, run_dir: str | None, total_steps: int, initial_steps: int, progress_bar: bool, resume_iteration: int | None = None):
        self.run_dir = run_dir
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
            header = csv.DictWriter(text, fieldnames=COLUMNS, extrasaction="ignore")
            header.writeheader()
            header.writerows(kept)
            atomic_write_text(path, text.getvalue())
            self.csv_file = open(path, "a", newline="")
            self.csv = csv.DictWriter(self.csv_file, fieldnames=COLUMNS)
            from tensorboardX import SummaryWriter

            self.writer = SummaryWriter(os.path.join(run_dir, "tb"))
        self.bar = tqdm(total=total_steps, initial=min(initial_steps, total_steps), unit="step", unit_scale=True,
                        disable=not progress_bar, dynamic_ncols=True, desc="pes")

    def log(self, row: dict) -> None:
        if self.csv_file is not None:
            self.csv.writerow({k: ("" if row.get(k) is None or (isinstance(row.get(k), float) and math.isnan(row[k])) else row[k]) for k in COLUMNS})
            self.csv_file.flush()
        if self.writer is not None:
            for k, v in row.items():
                if k in ("iteration", "env_steps") or v is None:
                    continue
                if isinstance(v, list):  # a vector metric: one curve per entry (e.g. per window index)
                    for j, x in enumerate(v, start=1):
                        if math.isfinite(x):
                            self.writer.add_scalar(f"{k}/{j}", x, row["env_steps"])
                elif not (isinstance(v, float) and math.isnan(v)):
                    self.writer.add_scalar(k, v, row["env_steps"])
        shown = row.get("eval_return_mean")
        if shown is None or (isinstance(shown, float) and math.isnan(shown)):
            shown = row.get("train_episode_return")
        postfix = {"sps": f"{row['steps_per_s']:.0f}"}
        if shown is not None and not (isinstance(shown, float) and math.isnan(shown)):
            postfix["return"] = f"{shown:.1f}"
        self.bar.set_postfix(postfix, refresh=False)
        self.bar.update(max(0, min(row["env_steps"], self.bar.total) - self.bar.n))

    def close(self) -> None:
        self.bar.close()
        if self.csv_file is not None:
            self.csv_file.close()
        if self.writer is not None:
            self.writer.close()
