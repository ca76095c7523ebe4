"""env steps/s of an mjx task's own step (pes_rl.envs.make(NAME, "mjx")): a jitted 20-step scan at 64
envs with deterministic actions, timed (best of 3) after compilation.

    python docs/perf/2026-11-26g/step_speed.py hopper brax_hopper walker2d brax_walker2d halfcheetah brax_halfcheetah
"""
import sys
import time

import jax
import jax.numpy as jnp

from pes_rl import envs

N, LENGTH = 64, 20
for name in sys.argv[1:]:
    env = envs.make(name, "mjx")
    states = jax.jit(jax.vmap(env.reset))(jax.random.split(jax.random.PRNGKey(0), N))

    def rollout(s, env=env):
        def body(s, i):
            action = 0.5 * jnp.sin(jnp.arange(env.action_size) + 0.3 * i + jnp.arange(N)[:, None])
            s = jax.vmap(env.step)(s, action)
            return s, s.reward
        return jax.lax.scan(body, s, jnp.arange(LENGTH))

    t = time.time()
    compiled = jax.jit(rollout).lower(states).compile()
    compile_s = time.time() - t
    runs = []
    for _ in range(3):
        t = time.time()
        jax.block_until_ready(compiled(states))
        runs.append(time.time() - t)
    print(f"{name}: {type(env).__name__}, compile {compile_s:.1f} s, {N * LENGTH / min(runs):,.0f} env steps/s", flush=True)
