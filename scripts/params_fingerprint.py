"""Parameters after short fixed trainings on both backends, for checking that a refactor changed nothing.

Trains Swimmer with every agent and Hopper with PES and ARS on the gymnasium backend, and Swimmer with
PES and NRES on mjx (tiny sizes, fixed seeds, every hyperparameter that a preset change could move set
explicitly), and writes ``{run: flat parameters}`` as JSON. Run it on two commits and compare:

    python scripts/params_fingerprint.py after.json
    git worktree add /tmp/before REV && (cd /tmp/before && PYTHONPATH=. python scripts/params_fingerprint.py /tmp/b.json)
    python -c "import json; a, b = (json.load(open(p)) for p in ('after.json', '/tmp/b.json')); print(a == b)"

(A commit from before ``envs``/``agents`` moved under ``pes_rl`` imports them from its checkout's
root, hence PYTHONPATH.) About two minutes on a 2-core CPU, most of it compiling MJX.
"""

from __future__ import annotations

import json
import sys

import pes_rl

COMMON = dict(eval_every=0, checkpoint_every=0, progress_bar=False)
RUNS = {
    **{f"gymnasium_swimmer_{agent}": dict(env="swimmer", backend="gymnasium", agent=agent, seed=3, num_pairs=3,
                                          truncation_length=50, horizon=200, total_steps=6000, sigma=0.1, lr=0.15)
       for agent in ("pes", "tes", "nres", "es", "ars")},
    "gymnasium_hopper_pes": dict(env="hopper", backend="gymnasium", seed=1, num_pairs=4, total_steps=20000, sigma=0.025,
                                 lr=0.02),
    "gymnasium_hopper_ars": dict(env="hopper", backend="gymnasium", agent="ars", seed=1, num_pairs=4,
                                 total_steps=20000, sigma=0.025, lr=0.01),
    **{f"mjx_swimmer_{agent}": dict(env="swimmer", backend="mjx", agent=agent, seed=2, num_pairs=2,
                                    truncation_length=20, horizon=100, total_steps=2000, sigma=0.1, lr=0.15)
       for agent in ("pes", "nres")},
}


def main(argv: list[str] | None = None) -> dict:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        raise SystemExit("usage: params_fingerprint.py OUT.json")
    out = {name: pes_rl.train(**run, **COMMON).flat_params.tolist() for name, run in RUNS.items()}
    with open(argv[0], "w") as f:
        json.dump(out, f)
    print(f"{len(out)} runs written to {argv[0]}")
    return out


if __name__ == "__main__":
    main()
