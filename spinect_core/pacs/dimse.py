"""DICOM network services with pynetdicom: C-ECHO, C-FIND (study and series level), C-GET,
C-MOVE to a temporary storage SCP of ours, and C-STORE.

Every operation opens one association, does its work and releases it. Failures become the
:mod:`spinect_core.pacs.errors` types with one-line messages:

* nothing listens at the address, or the host is unknown -> :class:`PacsUnreachableError`;
* no answer within ``timeout_s`` (TCP connect, association, any response) ->
  :class:`PacsTimeoutError`;
* the association is rejected (the node's A-ASSOCIATE-RJ reason is named: called AE title not
  recognised, calling AE title not recognised, ...) -> :class:`AssociationRejectedError`;
* C-MOVE to an AE title the node does not know (status A801) -> :class:`UnknownAETitleError`;
* a retrieve with failed sub-operations or fewer instances than announced ->
  :class:`PartialRetrieveError` (nothing is kept).

pynetdicom's own logger is silenced: at debug level it prints query identifiers (patient IDs),
and its error lines would repeat ours.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from pathlib import Path
from typing import Any, Iterable

from spinect_core.errors import Cancelled
from spinect_core.pacs.errors import (AssociationRejectedError, PacsRequestError, PacsStoreError,
                                      PacsTimeoutError, PacsUnreachableError,
                                      PartialRetrieveError, UnknownAETitleError)
from spinect_core.pacs.files import collect_dicom_files, instance_path, staged_folder
from spinect_core.pacs.model import (PacsSeries, PacsStudy, Query, RetrieveResult, StoreResult,
                                     int_or_none)
from spinect_core.pacs.nodes import DEFAULT_AET, DEFAULT_TIMEOUT_S, DimseNode, check_ae_title
from spinect_core.progress import ProgressCallback, report

__all__ = ["DimseClient"]

_STATUS_MOVE_DESTINATION_UNKNOWN = 0xA801


def _quiet_pynetdicom() -> None:
    log = logging.getLogger("pynetdicom")
    log.setLevel(logging.CRITICAL)
    log.propagate = False
    if not log.handlers:
        log.addHandler(logging.NullHandler())


def _values(value: Any) -> list[str]:
    """A multi-valued string element as a list (pydicom gives a str for one value)."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [v for v in value.split("\\") if v]
    return [str(v) for v in value if str(v)]


def _storage_contexts(limit: int) -> list[Any]:
    """Storage presentation contexts, the SOP classes a planning case uses first (CT, SEG, SC,
    SR, PDF), then the rest of pynetdicom's list, at most ``limit`` (an association carries 128)."""
    from pynetdicom import StoragePresentationContexts
    from pynetdicom.sop_class import (
        BasicTextSRStorage, ComprehensiveSRStorage, CTImageStorage, EncapsulatedPDFStorage,
        EnhancedCTImageStorage, EnhancedSRStorage, MRImageStorage,
        MultiFrameGrayscaleByteSecondaryCaptureImageStorage,
        MultiFrameGrayscaleWordSecondaryCaptureImageStorage,
        MultiFrameTrueColorSecondaryCaptureImageStorage, SecondaryCaptureImageStorage,
        SegmentationStorage)

    first = [CTImageStorage, EnhancedCTImageStorage, SegmentationStorage,
             SecondaryCaptureImageStorage, MultiFrameTrueColorSecondaryCaptureImageStorage,
             MultiFrameGrayscaleByteSecondaryCaptureImageStorage,
             MultiFrameGrayscaleWordSecondaryCaptureImageStorage, ComprehensiveSRStorage,
             EnhancedSRStorage, BasicTextSRStorage, EncapsulatedPDFStorage, MRImageStorage]
    uids = [str(u) for u in first]
    for cx in StoragePresentationContexts:
        if cx.abstract_syntax not in uids:
            uids.append(cx.abstract_syntax)
    return uids[:limit]


class DimseClient:
    """A DICOM (DIMSE) client of one node.

    Parameters
    ----------
    node : DimseNode
    aet : str
        Our (calling) AE title, default ``SPINECT``; for C-MOVE also the destination the node
        sends to, which it must know with our host and ``scp_port``.
    timeout_s : float
        Seconds for the TCP connection, the association and each response.
    scp_port : int
        Port of the temporary storage SCP that C-MOVE sends to (0: the OS picks one, which the
        node then cannot know; only useful when the node resolves AE titles dynamically).
    scp_host : str
        Address the storage SCP listens on ("" = all interfaces).
    """

    def __init__(self, node: DimseNode, *, aet: str = DEFAULT_AET,
                 timeout_s: float = DEFAULT_TIMEOUT_S, scp_port: int = 11113,
                 scp_host: str = "") -> None:
        _quiet_pynetdicom()
        self.node = node
        self.aet = check_ae_title(aet, what="our AE title")
        self.timeout_s = float(timeout_s)
        self.scp_port = int(scp_port)
        self.scp_host = scp_host

    # --- association -----------------------------------------------------------------------------
    def _ae(self) -> Any:
        from pynetdicom import AE

        ae = AE(ae_title=self.aet)
        ae.acse_timeout = self.timeout_s
        ae.dimse_timeout = self.timeout_s
        ae.network_timeout = self.timeout_s
        ae.connection_timeout = self.timeout_s
        return ae

    def _associate(self, ae: Any, **kwargs: Any) -> Any:
        from pynetdicom import evt

        received: list[Any] = []
        connected: list[bool] = []

        def on_acse(event: Any) -> None:
            received.append(event.primitive)

        handlers = list(kwargs.pop("evt_handlers", [])) + [
            (evt.EVT_ACSE_RECV, on_acse), (evt.EVT_CONN_OPEN, lambda _e: connected.append(True))]
        try:
            assoc = ae.associate(self.node.host, self.node.port, ae_title=self.node.ae_title,
                                 evt_handlers=handlers, **kwargs)
        except OSError:  # e.g. an unknown host name, raised before any connection
            self._diagnose_connection()
            raise
        if assoc.is_established:
            assoc._spinect_received = received  # what the peer sent: its aborts, later
            assoc._spinect_t = time.monotonic()  # when the peer last answered
            return assoc
        if not connected:
            # No TCP connection (pynetdicom reports that as an abort): say why.
            self._diagnose_connection()
            raise PacsUnreachableError(f"could not connect to {self.node.host}:{self.node.port}")
        self._raise_not_established(assoc, received)

    def _raise_not_established(self, assoc: Any, received: list[Any]) -> None:
        from pynetdicom.pdu_primitives import A_ASSOCIATE

        node = self.node
        reject = next((p for p in received if isinstance(p, A_ASSOCIATE)
                       and getattr(p, "result", None) in (0x01, 0x02)), None)
        if reject is not None:
            reason = reject.reason_str
            source, diagnostic = reject.result_source, reject.diagnostic
            if source == 1 and diagnostic == 7:
                raise AssociationRejectedError(
                    f"the PACS at {node.host}:{node.port} refused the association: it is not "
                    f"called {node.ae_title!r} (called AE title not recognised); check the "
                    "node's AE title")
            if source == 1 and diagnostic == 3:
                raise UnknownAETitleError(
                    f"the PACS {node} refused the association: it does not know our AE title "
                    f"{self.aet!r} (calling AE title not recognised); ask its administrator to "
                    "register it, or use --aet with a title it knows")
            raise AssociationRejectedError(
                f"the PACS {node} refused the association ({reason.lower()}); check the node's "
                "settings and that it accepts our AE title")
        if received:  # an abort (e.g. no presentation context accepted)
            raise AssociationRejectedError(
                f"the node at {node.host}:{node.port} aborted the association request: it may "
                "not be a DICOM node, or it accepts none of the requested services; check the "
                "host and port")
        self._diagnose_connection()
        raise PacsTimeoutError(f"the PACS {node} accepted the connection but did not answer the "
                               f"association request within {self.timeout_s:g} s")

    def _diagnose_connection(self) -> None:
        """Raise the reason a TCP connection to the node fails, if it does."""
        node = self.node
        try:
            with socket.create_connection((node.host, node.port), timeout=self.timeout_s):
                return
        except socket.gaierror:
            raise PacsUnreachableError(f"the PACS host {node.host!r} is unknown (no such name); "
                                       "check the node's host") from None
        except ConnectionRefusedError:
            raise PacsUnreachableError(
                f"nothing answers at {node.host}:{node.port} (connection refused): the PACS is "
                "not running there or the port is wrong") from None
        except (socket.timeout, TimeoutError):
            raise PacsTimeoutError(f"no connection to {node.host}:{node.port} within "
                                   f"{self.timeout_s:g} s: the node is unreachable (network, "
                                   "firewall) or down") from None
        except OSError as exc:
            raise PacsUnreachableError(f"cannot reach {node.host}:{node.port}: "
                                       f"{(exc.strerror or str(exc)).lower()}") from None

    def _check_status(self, status: Any, what: str, assoc: Any) -> int:
        """The status value of a response; a timeout or an abort (an empty status) raises."""
        now = time.monotonic()
        if status is not None and "Status" in status:
            assoc._spinect_t = now
            return int(status.Status)
        from pynetdicom.pdu_primitives import A_ABORT, A_P_ABORT

        received = getattr(assoc, "_spinect_received", [])
        waited = now - getattr(assoc, "_spinect_t", now - self.timeout_s)
        # No status: either our DIMSE timeout ran out (pynetdicom then aborts) or the peer
        # aborted or closed the connection before it, as Orthanc does for a caller it does not
        # know.
        if any(isinstance(p, (A_ABORT, A_P_ABORT)) for p in received) or \
                waited < 0.8 * self.timeout_s:
            # Orthanc (and other PACS) abort a request from a caller they do not know.
            raise AssociationRejectedError(
                f"the PACS {self.node} aborted the {what}: it does not accept it from our AE "
                f"title {self.aet!r} (unknown or not allowed); ask its administrator to register "
                "it, or use --aet with a title it knows")
        raise PacsTimeoutError(f"the PACS {self.node} did not answer the {what} within "
                               f"{self.timeout_s:g} s")

    # --- C-ECHO ----------------------------------------------------------------------------------
    def echo(self) -> None:
        """C-ECHO (verification); returns when the node answers with success."""
        from pynetdicom.sop_class import Verification

        ae = self._ae()
        ae.add_requested_context(Verification)
        assoc = self._associate(ae)
        try:
            status = assoc.send_c_echo()
            code = self._check_status(status, "C-ECHO", assoc)
            if code != 0x0000:
                raise PacsRequestError(f"the PACS {self.node} answered C-ECHO with status "
                                       f"0x{code:04X}")
        finally:
            _release(assoc)

    # --- C-FIND ----------------------------------------------------------------------------------
    def _find(self, assoc: Any, identifier: Any, progress: ProgressCallback | None,
              what: str) -> list[Any]:
        from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind

        found = []
        responses = assoc.send_c_find(identifier, StudyRootQueryRetrieveInformationModelFind)
        for status, ds in responses:
            code = self._check_status(status, f"{what} query", assoc)
            if code in (0xFF00, 0xFF01):
                found.append(ds)
                if progress is not None and progress(0.5, f"{len(found)} {what} found") is False:
                    assoc.abort()
                    raise Cancelled()
            elif code == 0x0000:
                break
            else:
                raise PacsRequestError(f"the PACS {self.node} refused the {what} query (status "
                                       f"0x{code:04X}); it may not allow queries from our AE "
                                       f"title {self.aet!r}")
        return found

    def find(self, query: Query, *, progress: ProgressCallback | None = None) -> list[PacsStudy]:
        """C-FIND at study level, then at series level for each study found (one association).

        Returns
        -------
        list of PacsStudy
            Sorted by study date then UID; each with its series sorted by series number.
        """
        from pydicom import Dataset
        from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind

        report(progress, 0.0, "connecting")
        ae = self._ae()
        ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
        assoc = self._associate(ae)
        try:
            ident = Dataset()
            ident.QueryRetrieveLevel = "STUDY"
            ident.PatientID = query.patient_id
            ident.AccessionNumber = query.accession
            ident.StudyDate = query.date
            ident.StudyInstanceUID = query.study_uid
            ident.ModalitiesInStudy = ""
            ident.StudyDescription = ""
            ident.NumberOfStudyRelatedSeries = ""
            studies = []
            for ds in self._find(assoc, ident, None, "study"):
                uid = str(ds.get("StudyInstanceUID", "") or "")
                if not uid:
                    continue
                studies.append(PacsStudy(study_uid=uid,
                                         modalities=_values(ds.get("ModalitiesInStudy")),
                                         date=str(ds.get("StudyDate", "") or ""),
                                         description=str(ds.get("StudyDescription", "") or "")))
            for i, study in enumerate(studies):
                report(progress, (i + 1) / (len(studies) + 1), f"series of study {i + 1}")
                ident = Dataset()
                ident.QueryRetrieveLevel = "SERIES"
                ident.StudyInstanceUID = study.study_uid
                ident.SeriesInstanceUID = ""
                ident.Modality = ""
                ident.SeriesNumber = ""
                ident.SeriesDescription = ""
                ident.NumberOfSeriesRelatedInstances = ""
                for ds in self._find(assoc, ident, None, "series"):
                    uid = str(ds.get("SeriesInstanceUID", "") or "")
                    if uid:
                        study.series.append(PacsSeries(
                            series_uid=uid, modality=str(ds.get("Modality", "") or ""),
                            series_number=int_or_none(ds.get("SeriesNumber")),
                            instances=int_or_none(ds.get("NumberOfSeriesRelatedInstances")),
                            description=str(ds.get("SeriesDescription", "") or "")))
                study.settle()
        finally:
            _release(assoc)
        studies.sort(key=lambda s: (s.date, s.study_uid))
        report(progress, 1.0, f"{len(studies)} studies found")
        return studies

    # --- C-GET / C-MOVE --------------------------------------------------------------------------
    def retrieve(self, study_uid: str, out_dir: str | Path, *, series_uid: str | None = None,
                 move: bool = False,
                 progress: ProgressCallback | None = None) -> RetrieveResult:
        """Retrieve a study or one series into ``out_dir`` by C-GET (default) or C-MOVE.

        The instances land in a temporary folder beside ``out_dir`` and are moved into place only
        when the retrieve is complete: ``out_dir/<SeriesInstanceUID>/<SOPInstanceUID>.dcm``.

        Parameters
        ----------
        study_uid : str
        out_dir : path-like
            Must not exist or be empty.
        series_uid : str, optional
            Only this series.
        move : bool
            C-MOVE to our own storage SCP (started on ``scp_port`` for the retrieve) instead of
            C-GET; the node must know our AE title with this host and port.
        progress : callable, optional
            ``(fraction, message)``; returning False cancels (nothing is kept).

        Raises
        ------
        PartialRetrieveError, UnknownAETitleError, PacsTimeoutError, PacsRequestError, Cancelled
        """
        from pydicom import Dataset

        ident = Dataset()
        ident.QueryRetrieveLevel = "SERIES" if series_uid else "STUDY"
        ident.StudyInstanceUID = str(study_uid).strip()
        if series_uid:
            ident.SeriesInstanceUID = str(series_uid).strip()
        report(progress, 0.0, "connecting")
        with staged_folder(out_dir) as tmp:
            sink = _Sink(tmp)
            if move:
                announced = self._move(ident, sink, progress)
            else:
                announced = self._get(ident, sink, progress)
            if sink.errors:
                raise PartialRetrieveError(f"{len(sink.errors)} instances from {self.node} could "
                                           f"not be written ({sink.errors[0]}); nothing was kept")
            if not sink.files:
                raise PacsRequestError(f"the PACS {self.node} sent no instance for this "
                                       f"{'series' if series_uid else 'study'}; check the UID")
            if announced is not None and len(sink.files) < announced:
                raise PartialRetrieveError(
                    f"received {len(sink.files)} of the {announced} instances the PACS "
                    f"{self.node} announced; nothing was kept; try again")
            report(progress, 1.0, f"{len(sink.files)} instances retrieved")
            files = [Path(out_dir) / f.relative_to(tmp) for f in sink.files]
            series = sorted(sink.series)
        return RetrieveResult(folder=Path(out_dir), files=files, series_uids=series)

    def _run_retrieve(self, responses: Iterable[Any], assoc: Any, sink: "_Sink",
                      progress: ProgressCallback | None, what: str) -> int | None:
        """Walk the C-GET/C-MOVE responses; the number of instances announced (None: unknown)."""
        announced: int | None = None
        for status, _ident in responses:
            code = self._check_status(status, what, assoc)
            done = int_or_none(status.get("NumberOfCompletedSuboperations"))
            remaining = int_or_none(status.get("NumberOfRemainingSuboperations"))
            failed = int_or_none(status.get("NumberOfFailedSuboperations")) or 0
            warned = int_or_none(status.get("NumberOfWarningSuboperations")) or 0
            if remaining is not None and done is not None:
                announced = max(announced or 0, done + remaining + failed + warned)
            if code in (0xFF00, 0xFF01):
                total = announced or 0
                fraction = len(sink.files) / total if total else 0.0
                if progress is not None and progress(
                        min(fraction, 0.99), f"{len(sink.files)} of {total or '?'} instances") \
                        is False:
                    assoc.abort()
                    raise Cancelled()
                continue
            if code == _STATUS_MOVE_DESTINATION_UNKNOWN:
                raise UnknownAETitleError(
                    f"the PACS {self.node} does not know our AE title {self.aet!r} as a C-MOVE "
                    f"destination; ask its administrator to register {self.aet} at this "
                    f"computer's address, port {self.scp_port}, or use C-GET (without --move)")
            if code == 0x0000:
                if done is not None:
                    announced = max(announced or 0, done + failed + warned)
                break
            if sink.errors:
                # Our side failed to keep some instances (disk full, a bad UID); the node then
                # ends with a warning or, for C-MOVE, often a plain failure.
                raise PartialRetrieveError(
                    f"{len(sink.errors)} instances from {self.node} could not be written here "
                    f"({sink.errors[0]}); the {what} ended with status 0x{code:04X}; nothing was "
                    "kept")
            if code in (0xB000, 0xA702, 0xA701, 0xA700, 0xFE00) or failed:
                total = (done or 0) + failed + warned
                raise PartialRetrieveError(
                    f"the PACS {self.node} ended the {what} with status 0x{code:04X} "
                    f"({failed} of {total or '?'} instances failed); nothing was kept; try again")
            raise PacsRequestError(f"the PACS {self.node} refused the {what} (status "
                                   f"0x{code:04X}); it may not allow retrieves by our AE title "
                                   f"{self.aet!r}")
        return announced

    def _get(self, ident: Any, sink: "_Sink", progress: ProgressCallback | None) -> int | None:
        from pynetdicom import build_role, evt
        from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelGet

        ae = self._ae()
        ae.add_requested_context(StudyRootQueryRetrieveInformationModelGet)
        storage = _storage_contexts(127)
        roles = []
        for uid in storage:
            ae.add_requested_context(uid)
            roles.append(build_role(uid, scp_role=True))
        assoc = self._associate(ae, ext_neg=roles, evt_handlers=[(evt.EVT_C_STORE, sink.handle)])
        try:
            responses = assoc.send_c_get(ident, StudyRootQueryRetrieveInformationModelGet)
            return self._run_retrieve(responses, assoc, sink, progress, "C-GET")
        finally:
            _release(assoc)

    def _move(self, ident: Any, sink: "_Sink", progress: ProgressCallback | None) -> int | None:
        from pynetdicom import AllStoragePresentationContexts, evt
        from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelMove

        scp_ae = self._ae()
        for cx in AllStoragePresentationContexts:
            scp_ae.add_supported_context(cx.abstract_syntax)
        scp_ae.require_calling_aet = []
        try:
            server = scp_ae.start_server((self.scp_host, self.scp_port), block=False,
                                         evt_handlers=[(evt.EVT_C_STORE, sink.handle)])
        except OSError as exc:
            raise PacsRequestError(f"cannot listen on port {self.scp_port} for the C-MOVE "
                                   f"({(exc.strerror or str(exc)).lower()}); choose another port "
                                   "(it must be the one the PACS knows for our AE title)") from None
        try:
            ae = self._ae()
            ae.add_requested_context(StudyRootQueryRetrieveInformationModelMove)
            assoc = self._associate(ae)
            try:
                responses = assoc.send_c_move(ident, self.aet,
                                              StudyRootQueryRetrieveInformationModelMove)
                announced = self._run_retrieve(responses, assoc, sink, progress, "C-MOVE")
            finally:
                _release(assoc)
            # The node's storage associations may still be finishing their last C-STORE.
            sink.wait_idle(self.timeout_s)
            return announced
        finally:
            server.shutdown()

    # --- C-STORE ---------------------------------------------------------------------------------
    def store(self, paths: Iterable[str | Path], *,
              progress: ProgressCallback | None = None) -> StoreResult:
        """C-STORE every DICOM file named or found under ``paths``.

        Raises
        ------
        PacsStoreError
            Some instances were refused (the count and the first status are named).
        """
        from pydicom import dcmread

        files, skipped = collect_dicom_files(paths)
        if not files:
            raise PacsStoreError("no DICOM files to send")
        report(progress, 0.0, "reading headers")
        contexts: dict[str, set[str]] = {}
        for f in files:
            meta = dcmread(f, stop_before_pixels=True, specific_tags=["SOPClassUID"]).file_meta
            contexts.setdefault(str(meta.MediaStorageSOPClassUID), set()).add(
                str(meta.TransferSyntaxUID))
        ae = self._ae()
        n = 0
        for sop, syntaxes in sorted(contexts.items()):
            for ts in sorted(syntaxes):
                if n < 128:
                    ae.add_requested_context(sop, [ts])
                    n += 1
        if n >= 128 and sum(len(v) for v in contexts.values()) > 128:
            raise PacsStoreError("the files use more than 128 SOP class/transfer syntax pairs; "
                                 "send them in smaller groups")
        assoc = self._associate(ae)
        refused: list[str] = []
        stored = 0
        try:
            for i, f in enumerate(files):
                if progress is not None and progress(i / len(files), f"sending {i + 1} of "
                                                     f"{len(files)}") is False:
                    assoc.abort()
                    raise Cancelled()
                ds = dcmread(f)
                status = assoc.send_c_store(ds)
                code = self._check_status(status, "C-STORE", assoc)
                if code == 0x0000 or 0xB000 <= code <= 0xB0FF:
                    stored += 1
                else:
                    refused.append(f"0x{code:04X}")
        finally:
            _release(assoc)
        if refused:
            raise PacsStoreError(f"the PACS {self.node} refused {len(refused)} of {len(files)} "
                                 f"instances (first status {refused[0]}); {stored} were stored")
        report(progress, 1.0, f"{stored} instances sent")
        return StoreResult(stored=stored, skipped=skipped)


def _release(assoc: Any) -> None:
    if assoc is not None and assoc.is_established:
        assoc.release()


class _Sink:
    """C-STORE handler that writes each instance into the staging folder (any thread)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.files: list[Path] = []
        self.series: set[str] = set()
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._busy = 0
        self._idle = threading.Condition(self._lock)

    def handle(self, event: Any) -> int:
        with self._lock:
            self._busy += 1
        try:
            ds = event.dataset
            series = str(ds.get("SeriesInstanceUID", "") or "")
            sop = str(ds.get("SOPInstanceUID", "") or "")
            path = instance_path(self.root, series, sop)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(event.encoded_dataset())
            with self._lock:
                if path not in self.files:
                    self.files.append(path)
                self.series.add(series)
            return 0x0000
        except Exception as exc:  # noqa: BLE001 - reported as a failed sub-operation
            with self._lock:
                self.errors.append(type(exc).__name__)
            return 0xA700
        finally:
            with self._lock:
                self._busy -= 1
                self._idle.notify_all()

    def wait_idle(self, timeout_s: float) -> None:
        with self._lock:
            self._idle.wait_for(lambda: self._busy == 0, timeout=timeout_s)
