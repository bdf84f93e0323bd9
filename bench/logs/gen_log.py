#!/usr/bin/env python3
"""Writes a log of the seed's format (timestamp, level, key=value pairs, some quoted) of about
the given size: `gen_log.py out.log 1024` for 1 GiB. Seconds advance every 200 lines."""

import random
import sys

LEVELS = ["INFO"] * 8 + ["WARN", "ERROR"]
STATUSES = ["FULFILLED", "PENDING", "SHIPPED", "CANCELLED"]


def main():
    path, mib = sys.argv[1], int(sys.argv[2])
    target = mib * 1024 * 1024
    rng = random.Random(42)
    written = 0
    seq = 0
    base = 1705329121  # 2024-01-15 14:32:01 UTC
    import time
    with open(path, "w") as f:
        while written < target:
            chunk = []
            for _ in range(10000):
                t = time.gmtime(base + seq // 200)
                ts = time.strftime("%Y-%m-%d %H:%M:%S", t)
                lvl = LEVELS[seq % 10]
                if seq % 5 == 0:
                    chunk.append(f'{ts} {lvl} order_id=ORD-{seq} status={STATUSES[seq % 4]} '
                                 f'customer="Jane Doe {seq % 97}" amount={rng.randint(1, 99999)/100}\n')
                else:
                    chunk.append(f"{ts} {lvl} order_id=ORD-{seq} status={STATUSES[seq % 4]} "
                                 f"latency_ms={seq % 1000}\n")
                seq += 1
            text = "".join(chunk)
            f.write(text)
            written += len(text)
    print(seq)


if __name__ == "__main__":
    main()
