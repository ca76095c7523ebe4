"""The gymnasium ports on MJX (pes_rl.envs.mjx_gymnasium) with the Newton line search capped at 6 and at
MuJoCo's 50: are 32 envs x 300 env steps of uniform random actions bit-identical (qpos, rewards), and
how fast is each (env steps/s of a jitted scan, after compilation)? Episodes are not reset: the
walkers fall and lie on the floor, so contacts are exercised throughout.

    python docs/perf/2026-11-26g/ls_cap_ports.py hopper walker2d halfcheetah
"""
import json
import sys
import time

import jax
import numpy as np

from pes_rl.envs.mjx_gymnasium import MjxGymnasiumEnv

N, STEPS = 32, 300
out = {}
for name in sys.argv[1:]:
    result = {}
    trajectories = {}
    for cap in (50, 6):
        env = MjxGymnasiumEnv(name, ls_iterations=cap)
        keys = jax.random.split(jax.random.PRNGKey(0), N)
        actions = jax.random.uniform(jax.random.PRNGKey(1), (STEPS, N, env.action_size), minval=-1, maxval=1)

        def rollout(keys, actions, env=env):
            def step(s, a):
                s = jax.vmap(env.step)(s, a)
                return s, (s.physics.qpos, s.reward)
            return jax.lax.scan(step, jax.vmap(env.reset)(keys), actions)[1]

        t = time.time()
        compiled = jax.jit(rollout).lower(keys, actions).compile()
        compile_s = time.time() - t
        runs = []
        for _ in range(2):
            t = time.time()
            trajectories[cap] = jax.device_get(jax.block_until_ready(compiled(keys, actions)))
            runs.append(time.time() - t)
        result[f"ls{cap}"] = dict(compile_s=round(compile_s, 1), env_steps_per_s=round(N * STEPS / min(runs)))
    (q50, r50), (q6, r6) = trajectories[50], trajectories[6]
    result["bit_identical"] = bool(np.array_equal(q50, q6) and np.array_equal(r50, r6))
    result["min_height"] = float(q50[:, :, 1].min())
    out[name] = result
    print(name, json.dumps(result), flush=True)
print(json.dumps(out))
