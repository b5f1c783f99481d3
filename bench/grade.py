"""Grading speed (issue: <= 3 s per notebook; 30 submissions in < 60 s with 2 workers on a
2-core machine) and the kernel's memory baseline, which the --memory-mb limit must clear.

Thirty submissions are the student versions of exercises/ filled with the reference solutions,
cycling through the notebooks; each runs in its own kernel exactly as `python -m bpcourse.grade`
runs it.
"""
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bpcourse import grade
from bpcourse.check import TASKS
from bpcourse.kernel import Kernel

SUBMISSIONS = 30


def filled_submissions(folder, count):
    """``count`` notebooks: released student versions with the masters' solutions put back."""
    grade.release(grade.EXERCISES, folder / "student")
    masters = sorted(grade.EXERCISES.glob("*.md"))
    for i in range(count):
        master = masters[i % len(masters)]
        blocks = iter(re.findall(r"^[ \t]*### BEGIN SOLUTION\n(.*?)^[ \t]*### END SOLUTION\n",
                                 master.read_text(), re.M | re.S))
        student = (folder / "student" / master.name).read_text()
        filled = re.sub(r'^[ \t]*raise NotImplementedError\("fill in \w+"\)\n',
                        lambda stub: next(blocks), student, flags=re.M)
        (folder / "batch" / f"student{i:02d}_{master.name}").write_text(filled)
    return folder / "batch"


def kernel_baseline_mb():
    """Address space (VmPeak) and data (VmData) of a grading kernel after `import numpy`."""
    kernel = Kernel()
    try:
        kernel.wait_ready(30)
        kernel.run("import numpy\nprint(open('/proc/self/status').read())", 30)
        status = dict(re.findall(r"(Vm\w+):\s+(\d+) kB", kernel.output))
        return int(status["VmPeak"]) >> 10, int(status["VmData"]) >> 10
    finally:
        kernel.close()


def main():
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "batch").mkdir()
        batch = filled_submissions(Path(tmp), SUBMISSIONS)
        grader = grade.Grader(TASKS)
        for workers in (1, 2):
            start = time.perf_counter()
            reports = list(grader.grade([batch], workers))
            wall = time.perf_counter() - start
            lost = [grade.summary(r) for r in reports
                    if (r["total"], r["status"]) != (r["max"], "ok")]
            if lost:
                sys.exit(f"reference submissions lost points: {lost}")
            per = [r["elapsed"] for r in reports]
            print(f"{SUBMISSIONS} submissions, {workers} worker(s): {wall:.1f} s "
                  f"({wall / SUBMISSIONS:.2f} s each); one notebook: median "
                  f"{statistics.median(per):.2f} s, max {max(per):.2f} s")
    ok = wall < 60 and max(per) <= 3
    print(f"targets (2 workers: < 60 s in all, <= 3 s per notebook): {'met' if ok else 'MISSED'}"
          f" on {os.cpu_count()} cores")
    peak, data = kernel_baseline_mb()
    print(f"kernel after `import numpy`: {peak} MB address space, {data} MB data "
          f"(--memory-mb default {grade.Limits.memory_mb})")


if __name__ == "__main__":
    main()
