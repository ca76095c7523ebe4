"""Importing the envs where no libEGL exists (a GPU server without OpenGL) must not break physics.

With ``MUJOCO_GL=egl`` and no libEGL, ``import mujoco`` fails inside PyOpenGL (AttributeError), so
``envs`` asks for EGL only where ``ctypes.util.find_library`` finds it. Checked in a fresh process
with the library lookup patched to find nothing.
"""

import os
import subprocess
import sys

CODE = """
import ctypes.util, os
import numpy as np
ctypes.util.find_library = lambda name: None
import mujoco
from pes_rl import envs
assert "MUJOCO_GL" not in os.environ, os.environ["MUJOCO_GL"]
env = envs.make("swimmer", "gymnasium", num_envs=2)
env.reset(np.arange(2))
print("ok")
"""


def test_envs_import_without_libegl():
    environ = {k: v for k, v in os.environ.items() if k != "MUJOCO_GL"}
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, env=environ, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["ok"]
