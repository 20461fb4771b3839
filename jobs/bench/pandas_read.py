"""Reference for docs/BENCHMARKS.md: pandas (C engine) reading the same CSV files, best of N.
usage: python pandas_read.py DIR [REPEAT]  → last line: `pandas_read interactions_rows_per_s=… all_files_seconds=…`"""
import sys, time
import pandas as pd

d = sys.argv[1]
repeat = int(sys.argv[2]) if len(sys.argv) > 2 else 3
best_i, best_all, rows = float("inf"), float("inf"), 0
for _ in range(repeat):
    t0 = time.perf_counter()
    users = pd.read_csv(f"{d}/users.csv", dtype={"user_id": str})
    videos = pd.read_csv(f"{d}/videos.csv", dtype={"video_id": str})
    t1 = time.perf_counter()
    ix = pd.read_csv(f"{d}/interactions.csv", dtype={"user_id": str, "video_id": str, "query": str, "device": str})
    t2 = time.perf_counter()
    rows = len(ix)
    best_i, best_all = min(best_i, t2 - t1), min(best_all, t2 - t0)
print(f"pandas {pd.__version__}: interactions.csv {rows} rows in {best_i:.3f} s; all three files {best_all:.3f} s")
print(f"pandas_read interactions_rows_per_s={rows / best_i:.0f} interactions_seconds={best_i:.3f} all_files_seconds={best_all:.3f} rows={rows}")
