"""Python's usual way to run commands in parallel, for bench/run_bench.lua.

    python3 bench/run_peers.py COUNT [JOBS]

Runs COUNT copies of ["true"] with subprocess.run(capture_output=True) on a
ThreadPoolExecutor of JOBS (2) threads, and prints the seconds it took
(interpreter start-up excluded, as the other runners' is).
"""
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor


def one(_):
    return subprocess.run(["true"], capture_output=True).returncode


def main():
    count = int(sys.argv[1])
    jobs = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    start = time.monotonic()
    with ThreadPoolExecutor(jobs) as pool:
        failed = sum(1 for rc in pool.map(one, range(count)) if rc != 0)
    secs = time.monotonic() - start
    if failed:
        sys.exit(f"run_peers.py: {failed} commands failed")
    print(f"{secs:.6f}")


if __name__ == "__main__":
    main()
