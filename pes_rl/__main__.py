"""``python -m pes_rl`` is the ``pes-rl`` command (for a checkout on PYTHONPATH, not installed)."""

from pes_rl.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
