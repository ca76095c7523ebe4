"""A jitted 20-step lax.scan of a Playground task's own step at 64 envs (MJX's jax implementation),
compiled without (argument 0) or with (1) XLA's CPU fast-math as pes_rl sets it.

    python docs/perf/2026-11-26f/fast_math_step.py SwimmerSwimmer6 20 0
    python docs/perf/2026-11-26f/fast_math_step.py SwimmerSwimmer6 20 1
"""
import sys
import time

import jax
import jax.numpy as jnp

from pes_rl import envs
from pes_rl.envs.base import CPU_FAST_MATH

name, length, fast = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
n = 64
env = envs.make(name, "mjx", impl="jax").playground_env
states = jax.jit(jax.vmap(env.reset))(jax.random.split(jax.random.PRNGKey(0), n))


def rollout(s):
    def body(s, _):
        action = 0.5 * jnp.sin(jnp.arange(env.action_size) + 3 * s.data.time[:, None])
        s = jax.vmap(env.step)(s, action)
        return s, s.reward
    return jax.lax.scan(body, s, None, length=length)


t = time.time()
compiled = jax.jit(rollout, compiler_options=CPU_FAST_MATH if fast else None).lower(states).compile()
compile_s = time.time() - t
runs = []
for _ in range(2):
    t = time.time()
    out = jax.block_until_ready(compiled(states))
    runs.append(time.time() - t)
best = min(runs)
print(f"{name} fast-math {fast}: compile {compile_s:.1f} s, {n * length / best:.0f} env steps/s, "
      f"reward sum {float(out[1].sum()):.5f}")
