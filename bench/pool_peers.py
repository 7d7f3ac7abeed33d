"""pool_peers.py: Python's process pools on par.pool's benchmark work.

    python3 bench/pool_peers.py calls CALLS ITEMS [HEAP_MB]
    python3 bench/pool_peers.py roundtrip N
    python3 bench/pool_peers.py many N
    python3 bench/pool_peers.py tiny N
    python3 bench/pool_peers.py strings N

One round of one case; bench/pool_bench.lua runs a round of this beside a
round of par, alternating.  Prints one line per runner: "name seconds"
(the seconds of the whole case, or, for roundtrip, the median seconds of
one round trip), and "heap MiB items" when it built a heap.  Every pool has
2 workers, is made with the fork start method (multiprocessing's default on
Linux with 3.11, but named, as it is the fast one and par forks too), and
is warmed by a first call before the clock starts: the timed calls reuse
it, as a program that made one pool would.

  calls      CALLS x Pool(2).map(double, range(ITEMS)); with HEAP_MB, the
             process first builds a list of about HEAP_MB MiB of small lists
             (measured as the growth of its RSS), then makes the pool.
  roundtrip  N x Pool.apply(double, (i,)), N x ProcessPoolExecutor
             .submit(double, i).result(): the median of one round trip;
             and the floor: N x one byte to a forked process and back
             over pipes (os.write, os.read), which no pool beats.
  many       N submits, then every result: ProcessPoolExecutor.submit and
             Pool.apply_async.
  tiny       Pool.map(double, range(N)), default and explicit chunksizes.
  strings    a fresh 10 KB bytes object per item, with Pool.map,
             Pool.imap and ProcessPoolExecutor.map, several chunksizes.
"""
import concurrent.futures
import multiprocessing
import os
import statistics
import sys
import time

CTX = multiprocessing.get_context("fork")
now = time.perf_counter


def double(x):
    return x * 2


def fresh10k(x):
    return (b"%08d" % x) * 1280          # 10240 bytes, one new object


def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def heap(mb):
    """A list of small lists of numbers and short strings, like
    bench/util.lua's heap (16 slots each), until this process's RSS has
    grown by mb MiB.  Returns the list and the growth in MiB."""
    r0 = rss()
    keys = ["k%d" % k for k in range(4096)]   # Lua interns its short strings
    h, i = [], 0
    while rss() - r0 < mb * 2**20:
        for _ in range(10000):
            i += 1
            h.append([i, i * 0.5, i + 1, i + 2, i + 3, i + 4, i + 5, i + 6, i + 7,
                      i + 8, i + 9, i + 10, i + 11, i + 12, keys[i % 4096], "v"])
    return h, (rss() - r0) / 2**20


def out(name, secs):
    print("%s %.9f" % (name, secs))


def calls(ncalls, nitems, mb=0):
    h = None
    if mb > 0:
        h, grown = heap(mb)
        print("heap %.1f %d" % (grown, len(h)))
    items = list(range(1, nitems + 1))
    with CTX.Pool(2) as pool:
        pool.map(double, items)
        t = now()
        for _ in range(ncalls):
            pool.map(double, items)
        out("Pool(2).map", now() - t)
    del h


def pingpong(n):
    """The floor of a round trip between two processes: one byte over a
    pipe to a forked child and back, timed one at a time."""
    r1, w1 = os.pipe()
    r2, w2 = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(w1)
        while os.read(r1, 1):
            os.write(w2, b"x")
        os._exit(0)
    os.close(r1)
    os.write(w1, b"x")
    os.read(r2, 1)
    ts = []
    for _ in range(n):
        t = now()
        os.write(w1, b"x")
        os.read(r2, 1)
        ts.append(now() - t)
    os.close(w1)
    os.waitpid(pid, 0)
    return statistics.median(ts)


def roundtrip(n):
    out("floor: 1 byte over a pipe to a forked process and back", pingpong(n))
    with CTX.Pool(2) as pool:
        pool.apply(double, (0,))
        ts = []
        for i in range(n):
            t = now()
            pool.apply(double, (i,))
            ts.append(now() - t)
        out("Pool(2).apply", statistics.median(ts))
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=CTX) as ex:
        ex.submit(double, 0).result()
        ts = []
        for i in range(n):
            t = now()
            ex.submit(double, i).result()
            ts.append(now() - t)
        out("ProcessPoolExecutor(2).submit().result()", statistics.median(ts))


def many(n):
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=CTX) as ex:
        list(ex.map(double, range(100)))      # both workers up
        t = now()
        fs = [ex.submit(double, i) for i in range(n)]
        for f in fs:
            f.result()
        out("ProcessPoolExecutor(2).submit", now() - t)
    with CTX.Pool(2) as pool:
        pool.map(double, range(100))
        t = now()
        rs = [pool.apply_async(double, (i,)) for i in range(n)]
        for r in rs:
            r.get()
        out("Pool(2).apply_async", now() - t)


def tiny(n):
    items = list(range(1, n + 1))
    with CTX.Pool(2) as pool:
        pool.map(double, items)               # warm, as par's runs are
        for c in (None, 10000):
            t = now()
            pool.map(double, items, c)
            out("Pool(2).map chunksize=%s" % (c or "default"), now() - t)


def strings(n):
    items = list(range(1, n + 1))
    with CTX.Pool(2) as pool:
        pool.map(fresh10k, items)
        for c in (None, 10, 100, 1000):
            t = now()
            pool.map(fresh10k, items, c)
            out("Pool(2).map chunksize=%s" % (c or "default"), now() - t)
        for c in (10, 100, 1000):
            t = now()
            list(pool.imap(fresh10k, items, c))
            out("Pool(2).imap chunksize=%d" % c, now() - t)
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=CTX) as ex:
        list(ex.map(fresh10k, items, chunksize=100))
        for c in (10, 100, 1000):
            t = now()
            list(ex.map(fresh10k, items, chunksize=c))
            out("ProcessPoolExecutor(2).map chunksize=%d" % c, now() - t)


def main():
    case, args = sys.argv[1], [int(a) for a in sys.argv[2:]]
    {"calls": calls, "roundtrip": roundtrip, "many": many, "tiny": tiny,
     "strings": strings}[case](*args)


if __name__ == "__main__":
    main()
