"""The tables of scripts/gpu_figures.sh's output, and the crossover population it implies for ``auto``.

Reads ``OUT/results.jsonl`` (one JSON object per step: its name, exit code, seconds and stdout) and
writes ``OUT/report.md`` (markdown tables for docs/gpu.md and docs/performance.md) and
``OUT/report.json``:

* every mjx batch `pes-rl bench` measured: envs, raw and PES env steps/s, PES/raw, and the seconds
  per env step of the PES loop (envs / PES steps/s, the latency ``auto`` assumes);
* the host's threaded C MuJoCo rate per core (the ``bench_cpu`` step), and from the two the
  crossover population ``cores x rate per core x seconds per step`` of each mjx batch
  (``pes_rl.backend_choice``: the constants to re-measure);
* the wall time to 350 of each seed's mjx run (from the training loop's start, from the ``train``
  call and from launch: scripts/swimmer_sample_efficiency.py), and each step that failed or ran
  out of time.

    python scripts/gpu_report.py runs/gpu
"""

from __future__ import annotations

import argparse
import json
import math
import os


def read_steps(path: str) -> list[dict]:
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def _json_lines(stdout: str) -> list[dict]:
    out = []
    for line in stdout.splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            pass
    return out


def summarise(steps: list[dict]) -> dict:
    """Bench points, the CPU rate, crossovers, wall times and failed steps from the step records."""
    report: dict = {"mjx": [], "wall_to_350": [], "failed": [], "cpu": None}
    for step in steps:
        if step["rc"] != 0:
            report["failed"].append({"step": step["step"], "rc": step["rc"], "seconds": step["seconds"],
                                     "why": "time limit" if step["rc"] in (124, 137) else "error"})
            continue
        for obj in _json_lines(step["stdout"]):
            if "seed" in obj and "wall_to_350" in obj:
                report["wall_to_350"].append({"seed": obj["seed"], "steps": obj["steps_to_350"],
                                              "wall_s": obj["wall_to_350"], "call_s": obj.get("call_to_350"),
                                              "launch_s": obj.get("launch_to_350"), "step": step["step"]})
            for where in ("gpu", "cpu"):
                entry = obj.get(where, {})
                for point in entry.get("mjx", {}).get("curve", [entry["mjx"]] if "mjx" in entry else []):
                    report["mjx"].append({"env": obj["env"], "where": where, **point,
                                          "seconds_per_step": point["num_envs"] / point["pes_steps_per_s"]})
                if "gymnasium" in entry:
                    g = entry["gymnasium"]
                    report["cpu"] = {"env": obj["env"], "threads": entry["threads"], "num_envs": g["num_envs"],
                                     "pes_steps_per_s": g["pes_steps_per_s"],
                                     "per_core": g["pes_steps_per_s"] / entry["threads"]}
    if report["cpu"]:
        cpu = report["cpu"]
        for point in report["mjx"]:
            point["crossover_particles"] = math.ceil(cpu["threads"] * cpu["per_core"] * point["seconds_per_step"])
    return report


def markdown(report: dict) -> str:
    lines = ["| env | envs | raw steps/s | PES steps/s | PES/raw | s per env step | crossover particles |",
             "|---|---|---|---|---|---|---|"]
    for p in report["mjx"]:
        cross = f"{p['crossover_particles']:,}" if "crossover_particles" in p else "no CPU figure"
        lines.append(f"| {p['env']} | {p['num_envs']:,} | {p['raw_steps_per_s']:,.0f} | {p['pes_steps_per_s']:,.0f} | "
                     f"{p['ratio']:.2f} | {p['seconds_per_step']:.4f} | {cross} |")
    cpu = report["cpu"]
    lines.append("")
    lines.append(f"Host CPU path: {cpu['pes_steps_per_s']:,.0f} env steps/s on {cpu['threads']} threads "
                 f"({cpu['per_core']:,.0f} per core), {cpu['env']}, {cpu['num_envs']:,} envs." if cpu
                 else "Host CPU path: not measured (the bench_cpu step is missing or failed).")
    for w in report["wall_to_350"]:
        more = "".join(f"; {what} {w[key]:.1f} s" for what, key in (("from the train call", "call_s"),
                                                                    ("from launch", "launch_s")) if w.get(key))
        lines.append(f"Wall time to 350, seed {w['seed']} ({w['step']}): " +
                     (f"{w['wall_s']:.1f} s from the training loop's start ({w['steps']:,} env steps){more}"
                      if w["steps"] else "not reached"))
    for f in report["failed"]:
        lines.append(f"Step {f['step']}: no figure ({f['why']}, exit {f['rc']}, {f['seconds']:.0f} s).")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="the OUT folder of scripts/gpu_figures.sh")
    args = parser.parse_args(argv)
    path = os.path.join(args.out, "results.jsonl")
    if not os.path.isfile(path):
        parser.error(f"out: {path} does not exist (the OUT folder of scripts/gpu_figures.sh holds it)")
    report = summarise(read_steps(path))
    with open(os.path.join(args.out, "report.json"), "w") as f:
        json.dump(report, f, indent=2)
    text = markdown(report)
    with open(os.path.join(args.out, "report.md"), "w") as f:
        f.write(text)
    print(text, end="")
    return report


if __name__ == "__main__":
    main()
