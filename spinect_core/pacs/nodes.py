"""PACS nodes: a DICOM node ``AET@HOST:PORT`` or a DICOMweb base URL.

AE titles are at most 16 characters of printable ASCII without a backslash (DICOM PS3.5, VR AE);
leading and trailing spaces are not significant.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlparse

from spinect_core.errors import InputError

__all__ = ["DimseNode", "WebNode", "PacsNode", "DEFAULT_AET", "check_ae_title", "parse_node",
           "parse_dimse_node", "parse_web_node"]

#: Our AE title unless the user gives another (``--aet``, the app's settings).
DEFAULT_AET = "SPINECT"
#: Seconds to wait for a connection, an association and each response.
DEFAULT_TIMEOUT_S = 30.0

_NODE = re.compile(r"^(?P<aet>[^@]+)@(?P<host>\[[^\]]+\]|[^:@]+):(?P<port>\d+)$")


def check_ae_title(aet: str, *, what: str = "AE title") -> str:
    """The AE title stripped, or :class:`InputError` when it is not a valid DICOM AE title."""
    text = str(aet).strip()
    if not text or len(text) > 16 or "\\" in text or any(not (32 <= ord(c) < 127) for c in text):
        raise InputError(f"{what} {aet!r} is not a DICOM AE title: 1 to 16 printable ASCII "
                         "characters without a backslash")
    return text


@dataclass(frozen=True, kw_only=True)
class DimseNode:
    """A DICOM (DIMSE) node.

    Attributes
    ----------
    ae_title : str
        The node's (called) AE title.
    host : str
        Host name or IP address.
    port : int
        TCP port (1-65535).
    """

    ae_title: str
    host: str
    port: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "ae_title", check_ae_title(self.ae_title, what="PACS AE title"))
        if not 0 < int(self.port) < 65536:
            raise InputError(f"PACS port {self.port} is not in 1-65535")
        if not self.host.strip():
            raise InputError("PACS host is empty")

    def __str__(self) -> str:
        return f"{self.ae_title}@{self.host}:{self.port}"


@dataclass(frozen=True, kw_only=True)
class WebNode:
    """A DICOMweb service (QIDO-RS, WADO-RS, STOW-RS under one base URL).

    Attributes
    ----------
    url : str
        Base URL, e.g. ``http://pacs:8042/dicom-web``.
    """

    url: str

    def __post_init__(self) -> None:
        parsed = urlparse(self.url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise InputError(f"DICOMweb URL {self.url!r} must start with http:// or https:// and "
                             "name a host")
        object.__setattr__(self, "url", self.url.rstrip("/"))

    def __str__(self) -> str:
        parsed = urlparse(self.url)
        # Never echo credentials that a URL may carry.
        port = f":{parsed.port}" if parsed.port else ""
        return f"{parsed.scheme}://{parsed.hostname}{port}{parsed.path}"


PacsNode = DimseNode | WebNode


def parse_dimse_node(text: str) -> DimseNode:
    """``AET@HOST:PORT`` -> :class:`DimseNode` (:class:`InputError` with the expected form)."""
    m = _NODE.match(str(text).strip())
    if not m:
        raise InputError(f"PACS node {text!r} is not AET@HOST:PORT (e.g. ORTHANC@pacs.local:4242)")
    host = m.group("host").strip("[]")
    return DimseNode(ae_title=m.group("aet"), host=host, port=int(m.group("port")))


def parse_web_node(text: str) -> WebNode:
    return WebNode(url=str(text).strip())


def parse_node(text: str) -> PacsNode:
    """A DICOMweb URL (``http(s)://...``) or ``AET@HOST:PORT``."""
    value = str(text).strip()
    if value.lower().startswith(("http://", "https://")):
        return parse_web_node(value)
    return parse_dimse_node(value)
