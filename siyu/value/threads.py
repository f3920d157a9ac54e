"""How many threads the scikit-learn models may use (k-means, gradient boosting).

One by default (`SIYU_VALUE_THREADS` raises it): the models run beside the server on small
machines, and OpenMP's busy-waiting threads collapse when the cores are already busy — measured
on the 2-core development machine at load 8, a 3,000-row gradient-boosting fit took 43 s with
OpenMP's default threads and 1.4 s with one.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from threadpoolctl import threadpool_limits


def model_threads() -> int:
    try:
        return max(1, int(os.environ.get("SIYU_VALUE_THREADS", "1")))
    except ValueError:
        return 1


@contextmanager
def limited_threads() -> Iterator[None]:
    with threadpool_limits(limits=model_threads()):
        yield
