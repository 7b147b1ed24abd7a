"""Every input, output and PACS error of the core gets its own title and a hint in the app, not
the generic "Cannot use this input"."""

from __future__ import annotations

import inspect

import pytest

from spinect_core import errors as E
from spinect_core.pacs import errors as P

from app.errors import describe_error

GENERIC = {"Cannot use this input", "SPINECT error"}


def _subclasses(module, base) -> list[type]:
    return [cls for _, cls in inspect.getmembers(module, inspect.isclass)
            if issubclass(cls, base) and cls is not base and cls.__module__ == module.__name__]


#: The core's error classes but the two bases that the generic titles are for.
CLASSES = [c for c in _subclasses(E, E.SpinectError) + _subclasses(P, E.InputError)
           if c is not E.InputError]


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_every_core_error_class_has_its_own_title_and_hint(cls) -> None:
    report = describe_error(cls("the message"), action="Loading the CT")
    assert report.title not in GENERIC, cls.__name__
    assert report.message == "the message" and report.hint


@pytest.mark.parametrize("exc, title", [
    (P.PacsUnreachableError("nothing answers at pacs.local:4242 (connection refused)"),
     "Cannot reach the PACS"),
    (P.PacsTimeoutError("the PACS ORTHANC@pacs.local:4242 did not answer within 30 s"),
     "The PACS did not answer in time"),
    (P.UnknownAETitleError("the PACS refused the association: it does not know our AE title"),
     "The PACS does not know this application"),
    (P.AssociationRejectedError("the PACS refused the association (called AE title)"),
     "The PACS refused the connection"),
    (P.PartialRetrieveError("received 10 of the 59 instances; nothing was kept"),
     "Retrieve incomplete"),
    (P.PacsStoreError("3 of 11 instances were not stored"), "Not stored on the PACS"),
    (P.PacsRequestError("the PACS answered the query with status 0xA700"),
     "The PACS refused the request"),
    (P.PacsError("something else went wrong with the PACS"), "PACS"),
    (E.TruncatedFileError("ct.nii.gz ends after 12 of 40 MB"), "File incomplete"),
    (E.OutputError("cannot write the plan into /x: read-only file system"),
     "Cannot write the output"),
])
def test_pacs_and_new_input_errors_get_their_titles(exc, title) -> None:
    report = describe_error(exc)
    assert report.title == title
    assert report.message == str(exc)
    assert report.hint and not report.cancelled


def test_pacs_node_problems_point_to_the_node_settings() -> None:
    for cls in (P.PacsUnreachableError, P.AssociationRejectedError, P.UnknownAETitleError):
        assert "Tools > PACS nodes" in describe_error(cls("x")).hint, cls.__name__
