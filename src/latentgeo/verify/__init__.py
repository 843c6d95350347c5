"""``latentgeo verify``: was the committed study reproduced, within stated tolerances?

Another machine (another CPU's vector units, thread count, BLAS kernels) changes the last bits of
the token vectors, and those bits flow into every measure, fine-tuning loss and score, so a rerun
is rarely byte-identical. This package compares the workspace's results (tables CSV, metrics JSON,
the CSV data behind the figures; never image bytes) with those committed at a revision, value by
value, against the tolerances measured and stated in ``tolerances/<profile>.yaml``
(docs/reproducibility.md says how they were measured, ``bench/tolerances.py`` redoes it).

    from latentgeo.verify import verify_study
    outcome = verify_study(".", rev="HEAD")
    for verdict in outcome.verdicts:
        print(verdict.describe())
    print(outcome.summary())

* :mod:`.tolerances` — the tolerance file: schema, glob rules, loading;
* :mod:`.compare` — one result file against its reference, leaf by leaf;
* :mod:`.sources` — the two sides: the workspace, and git at a revision (plus the profile diff);
* :mod:`.study` — the whole study and its one-line verdict.
"""

from latentgeo.verify.compare import IDENTICAL, OUT, WITHIN, FileVerdict, compare_result
from latentgeo.verify.study import NOT_REPRODUCED, REPRODUCED_IDENTICAL, REPRODUCED_WITHIN, Verification, verify_study
from latentgeo.verify.tolerances import ToleranceFile, load_tolerances

__all__ = [
    "IDENTICAL", "WITHIN", "OUT", "FileVerdict", "compare_result",
    "NOT_REPRODUCED", "REPRODUCED_IDENTICAL", "REPRODUCED_WITHIN", "Verification", "verify_study",
    "ToleranceFile", "load_tolerances",
]
