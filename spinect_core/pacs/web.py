"""The same services over DICOMweb with dicomweb-client: QIDO-RS (find), WADO-RS (retrieve),
STOW-RS (store); "echo" is a QIDO-RS request for one study.

Failures map onto the :mod:`spinect_core.pacs.errors` types like the DIMSE client's: connection
refused or unknown host -> :class:`PacsUnreachableError`, no answer in time ->
:class:`PacsTimeoutError`, HTTP 401/403 -> :class:`AssociationRejectedError` (the service refuses
us), other HTTP errors -> :class:`PacsRequestError`. A retrieve is staged like the DIMSE one
(:func:`spinect_core.pacs.files.staged_folder`).
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any, Iterable, Iterator

from spinect_core.errors import Cancelled
from spinect_core.pacs.errors import (AssociationRejectedError, PacsRequestError, PacsStoreError,
                                      PacsTimeoutError, PacsUnreachableError,
                                      PartialRetrieveError)
from spinect_core.pacs.files import collect_dicom_files, instance_path, staged_folder
from spinect_core.pacs.model import (PacsSeries, PacsStudy, Query, RetrieveResult, StoreResult,
                                     int_or_none)
from spinect_core.pacs.nodes import DEFAULT_TIMEOUT_S, WebNode
from spinect_core.progress import ProgressCallback, report

__all__ = ["DicomWebClient"]

#: Instances per STOW-RS request (one multipart body each).
STOW_BATCH = 20


def _first(item: dict[str, Any], tag: str) -> Any:
    """First value of a DICOM JSON attribute (``"0020000D"``) or None."""
    values = (item.get(tag) or {}).get("Value") or []
    return values[0] if values else None


class DicomWebClient:
    """A DICOMweb client of one service.

    Parameters
    ----------
    node : WebNode
    timeout_s : float
        Seconds for the connection and each response.
    """

    def __init__(self, node: WebNode, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        for name in ("dicomweb_client", "urllib3"):
            logging.getLogger(name).setLevel(logging.WARNING)
        self.node = node
        self.timeout_s = float(timeout_s)

    def _client(self) -> Any:
        from dicomweb_client import DICOMwebClient

        return DICOMwebClient(url=self.node.url, timeout=self.timeout_s)

    @contextlib.contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        import requests

        try:
            yield
        except requests.exceptions.Timeout:
            raise PacsTimeoutError(f"the DICOMweb service {self.node} did not answer the {what} "
                                   f"within {self.timeout_s:g} s") from None
        except requests.exceptions.ConnectionError as exc:
            text = str(exc)
            if "Name or service not known" in text or "getaddrinfo" in text or \
                    "nodename nor servname" in text:
                raise PacsUnreachableError(f"the DICOMweb host of {self.node} is unknown (no such "
                                           "name); check the URL") from None
            raise PacsUnreachableError(f"nothing answers at {self.node} (connection refused or "
                                       "unreachable): the service is not running there or the "
                                       "URL is wrong") from None
        except requests.exceptions.HTTPError as exc:
            code = getattr(exc.response, "status_code", None)
            if code in (401, 403):
                raise AssociationRejectedError(f"the DICOMweb service {self.node} refused the "
                                               f"{what} (HTTP {code}): not authorised") from None
            raise PacsRequestError(f"the DICOMweb service {self.node} refused the {what} (HTTP "
                                   f"{code}); check the URL (it must be the DICOMweb root, e.g. "
                                   ".../dicom-web)") from None
        except requests.exceptions.RequestException as exc:
            raise PacsRequestError(f"the {what} to {self.node} failed: "
                                   f"{type(exc).__name__}") from None

    def echo(self) -> None:
        """A QIDO-RS search for one study: the service answers DICOMweb."""
        with self._errors("echo (QIDO-RS)"):
            self._client().search_for_studies(limit=1)

    def find(self, query: Query, *, progress: ProgressCallback | None = None) -> list[PacsStudy]:
        """QIDO-RS studies, then the series of each (see :meth:`DimseClient.find`)."""
        filters: dict[str, Any] = {}
        if query.patient_id:
            filters["PatientID"] = query.patient_id
        if query.accession:
            filters["AccessionNumber"] = query.accession
        if query.date:
            filters["StudyDate"] = query.date
        if query.study_uid:
            filters["StudyInstanceUID"] = query.study_uid
        report(progress, 0.0, "searching")
        client = self._client()
        studies: list[PacsStudy] = []
        with self._errors("study search (QIDO-RS)"):
            found = client.search_for_studies(
                search_filters=filters,
                fields=["ModalitiesInStudy", "StudyDescription", "StudyDate"]) or []
        for item in found:
            uid = _first(item, "0020000D")
            if not uid:
                continue
            mods = (item.get("00080061") or {}).get("Value") or []
            studies.append(PacsStudy(study_uid=str(uid), modalities=[str(m) for m in mods],
                                     date=str(_first(item, "00080020") or ""),
                                     description=str(_first(item, "00081030") or "")))
        for i, study in enumerate(studies):
            report(progress, (i + 1) / (len(studies) + 1), f"series of study {i + 1}")
            with self._errors("series search (QIDO-RS)"):
                series = client.search_for_series(
                    study_instance_uid=study.study_uid,
                    fields=["SeriesDescription", "NumberOfSeriesRelatedInstances"]) or []
            for item in series:
                uid = _first(item, "0020000E")
                if uid:
                    study.series.append(PacsSeries(
                        series_uid=str(uid), modality=str(_first(item, "00080060") or ""),
                        series_number=int_or_none(_first(item, "00200011")),
                        instances=int_or_none(_first(item, "00201209")),
                        description=str(_first(item, "0008103E") or "")))
            study.settle()
        studies.sort(key=lambda s: (s.date, s.study_uid))
        report(progress, 1.0, f"{len(studies)} studies found")
        return studies

    def retrieve(self, study_uid: str, out_dir: str | Path, *, series_uid: str | None = None,
                 move: bool = False,
                 progress: ProgressCallback | None = None) -> RetrieveResult:
        """WADO-RS a study or one series into ``out_dir`` (staged; see
        :meth:`DimseClient.retrieve`). ``move`` has no meaning over DICOMweb and is ignored."""
        client = self._client()
        expected: int | None = None
        with self._errors("instance count (QIDO-RS)"):
            found = client.search_for_series(study_instance_uid=study_uid,
                                             fields=["NumberOfSeriesRelatedInstances"]) or []
        counts = {str(_first(i, "0020000E")): int_or_none(_first(i, "00201209")) for i in found}
        wanted = [series_uid] if series_uid else list(counts)
        if wanted and all(counts.get(u) is not None for u in wanted):
            expected = sum(counts[u] or 0 for u in wanted)
        written: list[Path] = []
        series_seen: set[str] = set()
        report(progress, 0.0, "retrieving")
        with staged_folder(out_dir) as tmp:
            with self._errors("retrieve (WADO-RS)"):
                if series_uid:
                    instances = client.iter_series(study_uid, series_uid)
                else:
                    instances = client.iter_study(study_uid)
                for ds in instances:
                    series = str(ds.get("SeriesInstanceUID", "") or "")
                    path = instance_path(tmp, series, str(ds.get("SOPInstanceUID", "") or ""))
                    path.parent.mkdir(parents=True, exist_ok=True)
                    ds.save_as(path, enforce_file_format=True)
                    written.append(path)
                    series_seen.add(series)
                    total = expected or 0
                    if progress is not None and progress(
                            min(len(written) / total, 0.99) if total else 0.5,
                            f"{len(written)} of {total or '?'} instances") is False:
                        raise Cancelled()
            if not written:
                raise PacsRequestError(f"the DICOMweb service {self.node} sent no instance; "
                                       "check the UID")
            if expected is not None and len(written) < expected:
                raise PartialRetrieveError(f"received {len(written)} of the {expected} instances "
                                           f"{self.node} announced; nothing was kept; try again")
            files = [Path(out_dir) / f.relative_to(tmp) for f in written]
        report(progress, 1.0, f"{len(files)} instances retrieved")
        return RetrieveResult(folder=Path(out_dir), files=files, series_uids=sorted(series_seen))

    def store(self, paths: Iterable[str | Path], *,
              progress: ProgressCallback | None = None) -> StoreResult:
        """STOW-RS every DICOM file named or found under ``paths`` (in batches)."""
        from pydicom import dcmread

        files, skipped = collect_dicom_files(paths)
        if not files:
            raise PacsStoreError("no DICOM files to send")
        client = self._client()
        stored = 0
        for start in range(0, len(files), STOW_BATCH):
            report(progress, start / len(files), f"sending {start + 1} of {len(files)}")
            batch = [dcmread(f) for f in files[start:start + STOW_BATCH]]
            with self._errors("store (STOW-RS)"):
                response = client.store_instances(datasets=batch)
            failed = (response.get("00081198") or {}).get("Value") or [] if response else []
            if failed:
                raise PacsStoreError(f"the DICOMweb service {self.node} refused {len(failed)} "
                                     f"instances; {stored} were stored")
            stored += len(batch)
        report(progress, 1.0, f"{stored} instances sent")
        return StoreResult(stored=stored, skipped=skipped)
