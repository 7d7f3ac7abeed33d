"""map_peers.py: Python's multiprocessing.Pool(2).map on par.map's benchmark work.

    python3 bench/map_peers.py tiny N ROUNDS
    python3 bench/map_peers.py strings N ROUNDS

Prints one line per runner: "name median_seconds".  The pool is started and
warmed before the clock starts, so these are the pool's best case; par.map's
figures include its forks.  'tiny' is fn = x * 2 over range(N); 'strings'
returns a fresh 10 KB bytes object per item, tried with several chunksizes
(Python's default is len / (4 * processes)).
"""
import multiprocessing
import statistics
import sys
import time


def double(x):
    return x * 2


def fresh10k(x):
    return (b"%08d" % x) * 1280          # 10240 bytes, one new object


def timed(f):
    t = time.perf_counter()
    f()
    return time.perf_counter() - t


def main():
    case, n, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    fn = double if case == "tiny" else fresh10k
    items = list(range(1, n + 1))
    ctx = multiprocessing.get_context("fork")
    chunks = [None] if case == "tiny" else [None, 1, 10, 100, 1000]
    times = {"python serial": []}
    for c in chunks:
        times["python Pool(2).map chunksize=%s" % (c or "default")] = []
    with ctx.Pool(2) as pool:
        pool.map(fn, range(100))          # workers up and warm
        for _ in range(rounds):
            times["python serial"].append(timed(lambda: [fn(x) for x in items]))
            for c in chunks:
                name = "python Pool(2).map chunksize=%s" % (c or "default")
                times[name].append(timed(lambda: pool.map(fn, items, c)))
    for name, ts in times.items():
        print("%s %.6f" % (name, statistics.median(ts)))


if __name__ == "__main__":
    main()
