"""Validate like the study: automatic against manual labels on a cohort (``spinect validate``).

:mod:`.cohort` finds the cases and runs each (segment, Table 2 metrics, both plans, windows at
the same views), caching one record per case; :mod:`.statistics` holds the tests (Shapiro-Wilk,
paired t-test or Wilcoxon, Bland-Altman); :mod:`.tables` builds Tables 2 and 4 and the
best-view agreement; :mod:`.report` writes the CSV, JSON, plots and HTML page.
"""

from spinect_core.validation.cohort import (CohortCase, CohortRun, ValidationOptions,
                                            discover_cohort, network_segment_function, run_case,
                                            run_cohort)
from spinect_core.validation.report import write_validation_outputs
from spinect_core.validation.statistics import (bland_altman, describe, paired_test)
from spinect_core.validation.tables import summarise_cohort

__all__ = ["CohortCase", "CohortRun", "ValidationOptions", "discover_cohort",
           "network_segment_function", "run_case", "run_cohort", "write_validation_outputs",
           "bland_altman", "describe", "paired_test", "summarise_cohort"]
