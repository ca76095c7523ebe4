"""Where pes_rl.train's time goes before and in the loop on this device: Swimmer --preset gpu,
2 iterations, cold (empty cache) then warm, each profiled:
    python3 -P docs/perf/2026-11-26e/setup_profile.py cold warm
"""
import time
T0 = time.perf_counter()
import cProfile, io, pstats, sys
import jax
t_jax = time.perf_counter() - T0
jax.devices()
t_dev = time.perf_counter() - T0
import pes_rl
from pes_rl import compile_cache
compile_cache.enable()
t_import = time.perf_counter() - T0
print(f"import jax {t_jax:.2f} s, devices {t_dev:.2f} s, pes_rl {t_import:.2f} s", flush=True)
kw = dict(env="swimmer", backend="mjx", preset="gpu", total_steps=409600, eval_every=1, eval_backend="gymnasium",
          progress_bar=False, checkpoint_every=0, seed=10)
for label in sys.argv[1:]:
    rows = []
    pr = cProfile.Profile()
    t = time.perf_counter()
    pr.enable()
    r = pes_rl.train(progress_fn=lambda s, row: rows.append((round(time.perf_counter() - t, 2), round(row["wall_time"], 2))), **kw)
    pr.disable()
    print(label, "(call->row settled, row wall_time)", rows, "total", round(time.perf_counter() - t, 2), flush=True)
    s = io.StringIO()
    pstats.Stats(pr, stream=s).sort_stats("cumulative").print_stats(70)
    print("\n".join(l[:160] for l in s.getvalue().splitlines() if l.strip()), flush=True)
