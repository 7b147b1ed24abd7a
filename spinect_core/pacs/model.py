"""What a PACS query asks and returns, and the results of retrieves and stores.

Results keep only what is needed to choose a series: UIDs, modality, counts, and (shown only
when the user asks, see ``descriptions``) the study date and the free-text descriptions, which
may hold a patient's name. Patient names, IDs, birth dates and accession numbers are never kept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spinect_core.errors import InputError

__all__ = ["Query", "PacsSeries", "PacsStudy", "RetrieveResult", "StoreResult"]

_DATE = re.compile(r"^(\d{8})?(-(\d{8})?)?$")


@dataclass(frozen=True, kw_only=True)
class Query:
    """A study search; at least one key is required (a PACS may hold millions of studies).

    Attributes
    ----------
    patient_id : str
        PatientID to match exactly (wildcards ``*``/``?`` as the PACS allows).
    accession : str
        AccessionNumber.
    date : str
        StudyDate ``YYYYMMDD`` or a range ``YYYYMMDD-YYYYMMDD`` (either end may be open).
    study_uid : str
        StudyInstanceUID.
    """

    patient_id: str = ""
    accession: str = ""
    date: str = ""
    study_uid: str = ""

    def __post_init__(self) -> None:
        for name in ("patient_id", "accession", "date", "study_uid"):
            object.__setattr__(self, name, str(getattr(self, name) or "").strip())
        if self.date and (not _DATE.match(self.date) or self.date == "-"):
            raise InputError(f"date {self.date!r} is not YYYYMMDD or YYYYMMDD-YYYYMMDD")
        for value in (self.date.split("-")):
            if value and not (1 <= int(value[4:6]) <= 12 and 1 <= int(value[6:8]) <= 31):
                raise InputError(f"date {self.date!r} has no valid month or day")
        if not (self.patient_id or self.accession or self.date or self.study_uid):
            raise InputError("give a patient ID, an accession number, a date or a study UID to "
                             "search for (a PACS may hold millions of studies)")


@dataclass(kw_only=True)
class PacsSeries:
    """One series of a study on the PACS.

    Attributes
    ----------
    series_uid : str
    modality : str
    series_number : int or None
    instances : int or None
        NumberOfSeriesRelatedInstances when the PACS gives it.
    description : str
        SeriesDescription (free text; shown only on request).
    """

    series_uid: str
    modality: str = ""
    series_number: int | None = None
    instances: int | None = None
    description: str = ""

    def to_json(self, *, descriptions: bool = False) -> dict[str, Any]:
        doc: dict[str, Any] = {"SeriesInstanceUID": self.series_uid, "Modality": self.modality,
                               "SeriesNumber": self.series_number,
                               "NumberOfSeriesRelatedInstances": self.instances}
        if descriptions:
            doc["SeriesDescription"] = self.description
        return doc


@dataclass(kw_only=True)
class PacsStudy:
    """One study on the PACS with its series.

    Attributes
    ----------
    study_uid : str
    modalities : list of str
        ModalitiesInStudy (or the series' modalities).
    date : str
        StudyDate ``YYYYMMDD`` (shown only on request).
    description : str
        StudyDescription (free text; shown only on request).
    series : list of PacsSeries
    """

    study_uid: str
    modalities: list[str] = field(default_factory=list)
    date: str = ""
    description: str = ""
    series: list[PacsSeries] = field(default_factory=list)

    def settle(self) -> None:
        """Order the series (by number, then UID) and, when the PACS did not say, take the
        study's modalities from its series."""
        self.series.sort(key=lambda s: (s.series_number is None, s.series_number or 0,
                                        s.series_uid))
        if not self.modalities:
            self.modalities = sorted({s.modality for s in self.series if s.modality})

    def to_json(self, *, descriptions: bool = False) -> dict[str, Any]:
        doc: dict[str, Any] = {"StudyInstanceUID": self.study_uid,
                               "ModalitiesInStudy": self.modalities}
        if descriptions:
            doc["StudyDate"] = self.date
            doc["StudyDescription"] = self.description
        doc["series"] = [s.to_json(descriptions=descriptions) for s in self.series]
        return doc


@dataclass(kw_only=True)
class RetrieveResult:
    """Instances retrieved into ``folder`` (``<folder>/<SeriesInstanceUID>/<SOPInstanceUID>.dcm``).

    Attributes
    ----------
    folder : Path
    files : list of Path
    series_uids : list of str
    """

    folder: Path
    files: list[Path] = field(default_factory=list)
    series_uids: list[str] = field(default_factory=list)


@dataclass(kw_only=True)
class StoreResult:
    """Instances stored on the node.

    Attributes
    ----------
    stored : int
    skipped : list of Path
        Files under the given folders that are not DICOM (not sent).
    """

    stored: int = 0
    skipped: list[Path] = field(default_factory=list)


def int_or_none(value: Any) -> int | None:
    """An integer attribute of a query answer, ``None`` when absent or not a number."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
