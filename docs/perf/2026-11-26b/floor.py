"""Swimmer, 20 envs, 2 threads, 3,000 env steps of fixed random controls: the C MuJoCo limit (one
rollout call) vs one bare ``Batch.step`` call per env step (the env's private batch) vs the env's own
``step`` (observation, reward, bookkeeping). Prints env steps/s and the ratios to the limit."""
import time, json, numpy as np
from pes_rl import envs
S = 3000
env = envs.make("swimmer", "gymnasium", num_envs=20, num_threads=2)
env.reset(np.arange(20))
rng = np.random.default_rng(0)
controls = rng.uniform(-1, 1, (20, S, 2))
phys0 = env.physics.copy()
out = {}
for rep in range(2):
    t = time.perf_counter(); env.open_loop(phys0, controls); out["limit_rollout"] = 20 * S / (time.perf_counter() - t)
    env.physics[:] = phys0
    t = time.perf_counter()
    for s in range(S):
        env._views["ctrl"][:] = controls[:, s]
        env.sim.step(None, nstep=env.frame_skip)
    out["batch_step_calls"] = 20 * S / (time.perf_counter() - t)
    env.physics[:] = phys0
    t = time.perf_counter()
    for s in range(S):
        env.step(controls[:, s])
    out["env_step"] = 20 * S / (time.perf_counter() - t)
out["ratios_to_limit"] = {k: out[k] / out["limit_rollout"] for k in ("batch_step_calls", "env_step")}
print(json.dumps(out))
