#!/usr/bin/env python3
"""Input for the window_average benchmark: lines `SENSOR,EVENT_TIME_MS,VALUE` (ARCHITECTURE.md
section 9), deterministic by seed.

Record i has a base time START + i * STEP_MS; its event time is that minus a delay. Most delays
are uniform in [0, 1500] ms, inside the 2 000 ms bound, so those records are never late; a share
LATE_SHARE of them is uniform in [2000, 8000] ms, so some of those arrive after the watermark has
passed their window's end and are dropped as late (whether one is depends on where the window
edge falls). Values have 2 decimals, some negative, so the sign of a mean is exercised too.

    gen_input.py --lines N [--sensors 1000] [--seed 1] [--step-ms 1] OUT
"""
import argparse
import random
import sys

START = 1_700_000_000_000


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lines", type=int, required=True)
    p.add_argument("--sensors", type=int, default=1000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--step-ms", type=int, default=1)
    p.add_argument("--late-share", type=float, default=0.005)
    p.add_argument("out")
    a = p.parse_args()
    rng = random.Random(a.seed)
    rand = rng.random
    randrange = rng.randrange
    names = ["s%04d" % k for k in range(a.sensors)]
    n_sensors = a.sensors
    late_share = a.late_share
    step = a.step_ms
    chunk = 100_000
    with (sys.stdout if a.out == "-" else open(a.out, "w", buffering=1 << 20)) as f:
        i = 0
        while i < a.lines:
            end = min(a.lines, i + chunk)
            buf = []
            append = buf.append
            for j in range(i, end):
                if rand() < late_share:
                    delay = 2000 + randrange(6001)
                else:
                    delay = randrange(1501)
                t = START + j * step - delay
                # cents in [-20.00, 40.00)
                cents = randrange(6000) - 2000
                sign = "-" if cents < 0 else ""
                c = -cents if cents < 0 else cents
                append("%s,%d,%s%d.%02d\n" % (names[randrange(n_sensors)], t, sign, c // 100, c % 100))
            f.write("".join(buf))
            i = end


if __name__ == "__main__":
    main()
