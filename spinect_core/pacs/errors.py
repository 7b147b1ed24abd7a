"""Errors of the PACS client: each a one-line message naming the node and what to do.

All are :class:`~spinect_core.errors.InputError` subclasses, so the CLI prints them as
``spinect: error: ...`` with exit code 2 and the app shows them as user errors. Messages name the
node (AE title, host, port or URL) and never a patient identifier.
"""

from __future__ import annotations

from spinect_core.errors import InputError

__all__ = ["PacsError", "PacsUnreachableError", "PacsTimeoutError", "AssociationRejectedError",
           "UnknownAETitleError", "PartialRetrieveError", "PacsRequestError", "PacsStoreError"]


class PacsError(InputError):
    """A PACS operation failed (base class)."""


class PacsUnreachableError(PacsError):
    """Nothing answers at the node's address (closed port, unknown host, network down)."""


class PacsTimeoutError(PacsError):
    """The node did not answer in time (connection, association or a DIMSE/HTTP response)."""


class AssociationRejectedError(PacsError):
    """The node refused the association (wrong called AE title, our AE title not allowed, busy)."""


class UnknownAETitleError(PacsError):
    """The node does not know our AE title as a C-MOVE destination (or as a caller)."""


class PartialRetrieveError(PacsError):
    """A retrieve ended with fewer instances than the node announced; nothing was kept."""


class PacsRequestError(PacsError):
    """The node answered a query, retrieve or HTTP request with a failure status."""


class PacsStoreError(PacsError):
    """Some or all instances were not stored by the node."""
