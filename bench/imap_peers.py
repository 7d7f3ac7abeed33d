"""imap_peers.py: Python's multiprocessing Pool(2).imap on par.imap's benchmark work.

    python3 bench/imap_peers.py imap|imap_unordered N

One run: fn = x * 2 over a generator of 1..N, Pool(2) (fork context) with
chunksize=1000, the results summed by the caller as they come.  Prints
"seconds sum"; the seconds include starting the pool, as par.imap's
include its forks.  bench/imap_bench.lua runs it under bench/treemem.
"""
import multiprocessing
import sys
import time


def double(x):
    return x * 2


def gen(n):
    for i in range(1, n + 1):
        yield i


def main():
    how, n = sys.argv[1], int(sys.argv[2])
    t = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(2) as pool:
        s = 0
        for v in getattr(pool, how)(double, gen(n), chunksize=1000):
            s += v
    print("%.6f %d" % (time.perf_counter() - t, s))


if __name__ == "__main__":
    main()
