"""``python -m pes_rl`` is the ``pes-rl`` command (where the console script is not on PATH)."""

from pes_rl.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
