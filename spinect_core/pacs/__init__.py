"""PACS: query, retrieve and store over DICOM (pynetdicom) or DICOMweb (dicomweb-client).

No Qt here; the CLI (``spinect pacs``) and the desktop app use the same clients::

    from spinect_core.pacs import Query, connect, parse_node

    client = connect(parse_node("ORTHANC@pacs.local:4242"), aet="SPINECT")
    client.echo()
    studies = client.find(Query(patient_id="12345"))
    client.retrieve(studies[0].study_uid, "case", series_uid=studies[0].series[0].series_uid)
    client.store(["plan/dicom"])

Every failure is a :class:`~spinect_core.pacs.errors.PacsError` (an
:class:`~spinect_core.errors.InputError`) with one line naming the node and what to do; a
retrieve appears whole in its folder or not at all; long operations take a progress callback
that can cancel. Patient names, IDs and birth dates are never logged or kept in results; dates
and descriptions are kept for the user to choose from but shown only on request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from spinect_core.pacs.errors import (AssociationRejectedError, PacsError, PacsRequestError,
                                      PacsStoreError, PacsTimeoutError, PacsUnreachableError,
                                      PartialRetrieveError, UnknownAETitleError)
from spinect_core.pacs.model import PacsSeries, PacsStudy, Query, RetrieveResult, StoreResult
from spinect_core.pacs.nodes import (DEFAULT_AET, DEFAULT_TIMEOUT_S, DimseNode, PacsNode, WebNode,
                                     check_ae_title, parse_dimse_node, parse_node, parse_web_node)

__all__ = [
    "AssociationRejectedError", "PacsError", "PacsRequestError", "PacsStoreError",
    "PacsTimeoutError", "PacsUnreachableError", "PartialRetrieveError", "UnknownAETitleError",
    "PacsSeries", "PacsStudy", "Query", "RetrieveResult", "StoreResult",
    "DEFAULT_AET", "DEFAULT_TIMEOUT_S", "DimseNode", "PacsNode", "WebNode", "check_ae_title",
    "parse_dimse_node", "parse_node", "parse_web_node", "connect", "DEFAULT_SCP_PORT",
]

if TYPE_CHECKING:  # imported when connecting: pynetdicom and dicomweb-client load only then
    from spinect_core.pacs.dimse import DimseClient
    from spinect_core.pacs.web import DicomWebClient

#: Port of our temporary storage SCP for C-MOVE unless the user gives another.
DEFAULT_SCP_PORT = 11113


def connect(node: PacsNode, *, aet: str = DEFAULT_AET, timeout_s: float = DEFAULT_TIMEOUT_S,
            scp_port: int = DEFAULT_SCP_PORT) -> DimseClient | DicomWebClient:
    """The client of a node: :class:`~spinect_core.pacs.dimse.DimseClient` for a DICOM node,
    :class:`~spinect_core.pacs.web.DicomWebClient` for a DICOMweb URL. Both have ``echo()``,
    ``find(query)``, ``retrieve(study_uid, out_dir, series_uid=, move=)`` and ``store(paths)``;
    nothing connects before the first call."""
    if isinstance(node, WebNode):
        from spinect_core.pacs.web import DicomWebClient

        return DicomWebClient(node, timeout_s=timeout_s)
    from spinect_core.pacs.dimse import DimseClient

    return DimseClient(node, aet=aet, timeout_s=timeout_s, scp_port=scp_port)
