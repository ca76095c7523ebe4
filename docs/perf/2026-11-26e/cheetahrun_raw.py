"""Raw MJX stepping of Playground's CheetahRun (impl jax) at N envs: one jitted 100-step scan.

    python3 -P docs/perf/2026-11-26e/cheetahrun_raw.py 4096
"""
import json, sys, time
import jax, jax.numpy as jnp
from pes_rl import envs
n = int(sys.argv[1])
env = envs.make("CheetahRun", "mjx", impl="jax")
keys = jax.random.split(jax.random.PRNGKey(0), n)
states = jax.jit(jax.vmap(env.reset))(keys)
act = jnp.zeros((n, env.action_size)) + 0.3
@jax.jit
def roll(s):
    return jax.lax.scan(lambda s, _: (jax.vmap(env.step)(s, act), None), s, None, length=100)[0]
t = time.perf_counter(); s = jax.block_until_ready(roll(states)); c = time.perf_counter() - t
t = time.perf_counter(); s = jax.block_until_ready(roll(s)); r = time.perf_counter() - t
print(json.dumps({"env": "CheetahRun", "impl": "jax", "num_envs": n, "compile_s": c, "raw_steps_per_s": 100 * n / r,
                  "device": str(jax.devices()[0])}), flush=True)
