"""MJX's kinematics (jax implementation), vmapped over 64 envs, for Playground's swimmer built with
3..6 links and for gymnasium's Swimmer-v5, without and with XLA's CPU fast-math; ms per call.

    python docs/perf/2026-11-26f/kinematics_by_links.py
"""
import time

import gymnasium
import jax
import jax.numpy as jnp
import mujoco
from mujoco import mjx
from mujoco.mjx._src import smooth
from mujoco_playground._src.dm_control_suite import common, swimmer

from pes_rl.envs.base import CPU_FAST_MATH


def ms_per_call(model: mujoco.MjModel, options, n: int = 64, reps: int = 20) -> float:
    m = mjx.put_model(model, impl="jax")
    d = jax.vmap(lambda _: mjx.make_data(m))(jnp.arange(n))
    f = jax.jit(jax.vmap(lambda x: smooth.kinematics(m, x)), compiler_options=options)
    jax.block_until_ready(f(d))
    t = time.time()
    for _ in range(reps):
        out = f(d)
    jax.block_until_ready(out)
    return (time.time() - t) / reps * 1e3


models = {f"swimmer, {k} links": mujoco.MjModel.from_xml_string(
    swimmer._make_model(swimmer._XML_PATH.as_posix(), k).decode(), common.get_assets()) for k in (3, 4, 5, 6)}
models["gymnasium Swimmer-v5"] = gymnasium.make("Swimmer-v5").unwrapped.model
for label, model in models.items():
    print(f"{label}: {ms_per_call(model, None):.2f} ms without, {ms_per_call(model, CPU_FAST_MATH):.2f} ms with fast-math")
