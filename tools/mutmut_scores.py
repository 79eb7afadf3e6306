"""The kill rate of each module mutmut has run over, from `mutmut results --all true`.

A mutant is killed, survived, timed out, or had no test reach it ("no tests": here only the
Windows branch of the file lock, which cannot run on Linux). The rate is killed over the
mutants that ran; the table says how many did not.

    .venv/bin/python tools/mutmut_scores.py
"""

import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def module_of(mutant: str) -> str:
    """`pipeline.storage.files.x_sha256_of__mutmut_3` -> `pipeline.storage.files`."""
    return mutant.split(".x")[0]


def main() -> int:
    mutmut = Path(sys.executable).with_name("mutmut")
    listing = subprocess.run(
        [str(mutmut), "results", "--all", "true"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    counts: dict[str, Counter] = defaultdict(Counter)
    for line in listing.splitlines():
        name, _, status = line.strip().rpartition(": ")
        if name and status != "not checked":
            counts[module_of(name)][status] += 1
    print(f"{'module':<34} {'killed':>7} {'survived':>9} {'other':>6} {'no tests':>9} {'rate':>7}")
    for module, seen in sorted(counts.items()):
        ran = sum(n for status, n in seen.items() if status != "no tests")
        other = ran - seen["killed"] - seen["survived"]
        rate = seen["killed"] / ran if ran else float("nan")
        print(
            f"{module:<34} {seen['killed']:>7} {seen['survived']:>9} {other:>6} "
            f"{seen['no tests']:>9} {rate:>7.1%}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
