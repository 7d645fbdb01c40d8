"""How long does the analysis take on a paper-size results table?

    python bench/analyse.py [--archive PATH] [--repeats 3] [--protocol paper]

Loads the authors' published results (../shared/data, as the reproduction tests do; one
row per trained model, about 17,000) and times stats.analyse, which both the analysis
rule and the summary rule run on the results table. Prints the rows and the sorted
wall times in seconds.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from tstransfer.analysis import stats
from tstransfer.analysis.published import load_published
from tstransfer.devtools.reference_data import PUBLISHED_RESULTS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archive", type=Path, default=PUBLISHED_RESULTS)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--protocol", default="paper", choices=stats.PROTOCOLS)
    args = parser.parse_args()
    table = load_published(args.archive)
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        stats.analyse(table, args.protocol)
        times.append(time.perf_counter() - start)
    print(f"{len(table)} rows; stats.analyse({args.protocol!r}) s: {[round(t, 3) for t in sorted(times)]}")


if __name__ == "__main__":
    main()
