"""Turn a rollout mp4 into a small GIF (every ``--step``-th frame, downscaled) for the README.

    python scripts/mp4_to_gif.py videos/readme_swimmer.mp4 videos/swimmer.gif --frames 600 --step 2 --scale 2
"""

from __future__ import annotations

import argparse

import imageio


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mp4")
    parser.add_argument("gif")
    parser.add_argument("--frames", type=int, default=600, help="use the first N frames")
    parser.add_argument("--step", type=int, default=2, help="keep every STEP-th frame")
    parser.add_argument("--scale", type=int, default=2, help="downscale by this integer factor")
    args = parser.parse_args(argv)
    reader = imageio.get_reader(args.mp4)
    fps = reader.get_meta_data()["fps"]
    frames = [f[:: args.scale, :: args.scale] for i, f in enumerate(reader) if i < args.frames and i % args.step == 0]
    imageio.mimsave(args.gif, frames, duration=1000 * args.step / fps, loop=0)
    print(f"wrote {args.gif}: {len(frames)} frames")


if __name__ == "__main__":
    main()
