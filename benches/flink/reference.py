#!/usr/bin/env python3
"""An independent, direct reading of ARCHITECTURE.md section 9, to check the Flink job (and
wallaroo) against on smaller inputs: per sensor tumbling windows of 10 000 ms aligned to 0; the
watermark is the largest event time seen so far minus 2 000 ms, moved record by record; a window
[start, start+10000) fires once the watermark reaches its end, every open window at the end of
the input; a record is late (dropped, counted) when at its arrival the watermark has already
reached its window's end.

    reference.py INPUT OUTPUT      (prints `late=N` to stderr)

Python's `{:.3f}` rounds the exact binary value half to even, and keeps the sign of a negative
value, as Rust's `{:.3}` does.
"""
import heapq
import sys

SIZE = 10_000
BOUND = 2_000


def main():
    src, dst = sys.argv[1], sys.argv[2]
    windows = {}  # (sensor, start) -> [count, sum, max]
    due = []  # heap of (end, sensor, start)
    wm = None
    max_t = None
    late = 0
    out = sys.stdout if dst == "-" else open(dst, "w", buffering=1 << 20)
    w = out.write

    def fire(end, sensor, start):
        count, total, mx = windows.pop((sensor, start))
        w(f"{sensor} [{start},{end}) count={count} mean={total / count:.3f} max={mx:.3f}\n")

    with open(src) as f:
        for line in f:
            sensor, t, v = line.rstrip("\n").split(",")
            t = int(t)
            v = float(v)
            start = t - t % SIZE
            end = start + SIZE
            if wm is not None and wm >= end:
                late += 1
            else:
                acc = windows.get((sensor, start))
                if acc is None:
                    windows[(sensor, start)] = [1, v, v]
                    heapq.heappush(due, (end, sensor, start))
                else:
                    acc[0] += 1
                    acc[1] += v
                    if v > acc[2]:
                        acc[2] = v
            if max_t is None or t > max_t:
                max_t = t
                wm = max_t - BOUND
                while due and due[0][0] <= wm:
                    fire(*heapq.heappop(due))
    while due:
        fire(*heapq.heappop(due))
    out.flush()
    if out is not sys.stdout:
        out.close()
    print(f"late={late}", file=sys.stderr)


if __name__ == "__main__":
    main()
