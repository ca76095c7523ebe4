"""Where the time of one MJX Swimmer env step goes, on the device JAX uses.

MJX on a GPU is latency-bound at small and middling batches: the time of one env step hardly
changes with the number of envs. This probe times, for one batch size, one jitted vmapped call
of each piece (inside a ``lax.scan`` of ``--steps`` steps, compilation excluded), every one with the
same control of 0.5 on both actuators (the constraint solver's work depends on the forces):

* ``env_step``: :meth:`pes_rl.envs.mjx_swimmer.MjxSwimmer.step` (4 RK4 physics steps in a
  ``fori_loop``, reward, observation, time limit), as training runs it;
* ``env_step_ls50``: the same with MuJoCo's default line-search cap of 50 instead of the env's
  ``LS_ITERATIONS`` (what the env cost before the cap; same trajectory);
* ``env_step_mjx_step``: the same with ``mjx.step`` for each physics step instead of the env's
  :func:`~pes_rl.envs.mjx_swimmer.rk4_step` (four copies of ``forward`` to compile, not one);
* ``mjx_step_rk4``: one ``mjx.step`` with Swimmer's own RK4 integrator (4 model evaluations);
* ``mjx_step_euler``: one ``mjx.step`` with the Euler integrator (1 model evaluation; a different
  integrator, so not gymnasium's dynamics: shown only to split RK4's cost);
* ``mjx_forward``: one ``mjx.forward``.

One JSON object per piece on stdout as soon as it is measured (a run stopped by its time limit keeps
what it measured):

    python scripts/mjx_latency.py --num-envs 2048
"""

from __future__ import annotations

import argparse
import json
import time

import jax
import jax.numpy as jnp
import mujoco

from pes_rl.envs.base import quiet_mjx_import
from pes_rl.envs.mjx_swimmer import MjxSwimmer

with quiet_mjx_import():
    from mujoco import mjx


def seconds_per_call(fn, carry, steps: int, repeats: int = 3) -> tuple[float, float]:
    """(seconds per call of ``fn`` inside a jitted scan of ``steps`` calls, compile seconds)."""
    scan = jax.jit(lambda c: jax.lax.scan(lambda c, _: (fn(c), None), c, None, length=steps)[0])
    t0 = time.perf_counter()
    carry = jax.block_until_ready(scan(carry))
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(repeats):
        carry = scan(carry)
    jax.block_until_ready(carry)
    return (time.perf_counter() - t0) / (repeats * steps), compile_s


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-envs", type=int, default=2048)
    parser.add_argument("--steps", type=int, default=20, help="calls per jitted scan")
    parser.add_argument("--pieces", default=None, help="comma-separated subset of the pieces (default: all)")
    args = parser.parse_args(argv)

    env = MjxSwimmer()
    env_ls50 = MjxSwimmer(ls_iterations=50)
    env_mjx_step = MjxSwimmer(compact_rk4=False)
    keys = jax.random.split(jax.random.PRNGKey(0), args.num_envs)
    states = jax.jit(jax.vmap(env.reset))(keys)
    action = jnp.full((args.num_envs, env.action_size), 0.5)
    physics = states.physics.replace(ctrl=action)
    euler = env.model.replace(opt=env.model.opt.replace(integrator=mujoco.mjtIntegrator.mjINT_EULER))

    pieces = {
        "env_step": (lambda s: jax.vmap(env.step)(s, action), states),
        "env_step_ls50": (lambda s: jax.vmap(env_ls50.step)(s, action), states),
        "env_step_mjx_step": (lambda s: jax.vmap(env_mjx_step.step)(s, action), states),
        "mjx_step_rk4": (lambda d: jax.vmap(mjx.step, in_axes=(None, 0))(env.model, d), physics),
        "mjx_step_euler": (lambda d: jax.vmap(mjx.step, in_axes=(None, 0))(euler, d), physics),
        "mjx_forward": (lambda d: jax.vmap(mjx.forward, in_axes=(None, 0))(env.model, d), physics),
    }
    device = str(jax.devices()[0])
    chosen = args.pieces.split(",") if args.pieces else list(pieces)
    for name in chosen:
        fn, carry = pieces[name]
        seconds, compile_s = seconds_per_call(fn, carry, args.steps)
        print(json.dumps({"piece": name, "num_envs": args.num_envs, "device": device, "ms_per_call": 1e3 * seconds,
                          "env_steps_per_s": args.num_envs / seconds if name.startswith("env_step") else None,
                          "compile_s": compile_s}), flush=True)


if __name__ == "__main__":
    main()
