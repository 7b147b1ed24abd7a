"""PACS nodes the user configured (no Qt): name, AE title, host and port, or a DICOMweb URL.

Kept in the settings as one JSON list (``pacs/nodes``, :attr:`app.settings.AppSettings.pacs_nodes`)
with our AE title (``pacs/our_aet``) and the port of our C-MOVE storage SCP (``pacs/scp_port``).
The app talks only to the nodes listed here (no network otherwise). Nodes are not patient data.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable

from spinect_core.errors import InputError
from spinect_core.pacs import (DEFAULT_AET, DEFAULT_SCP_PORT, DimseNode, PacsNode, WebNode,
                               connect)
from spinect_core.progress import ProgressCallback

__all__ = ["PacsNodeConfig", "nodes_to_json", "nodes_from_json", "client_for",
           "retrieve_series", "send_files"]


@dataclass(frozen=True, kw_only=True)
class PacsNodeConfig:
    """One configured node.

    Attributes
    ----------
    name : str
        What the user calls it ("Radiology PACS").
    ae_title, host : str
        DICOM node (with ``port``); empty for a DICOMweb node.
    port : int
    url : str
        DICOMweb root; when set, the node is DICOMweb.
    move : bool
        Retrieve by C-MOVE (to our storage SCP) instead of C-GET.
    """

    name: str
    ae_title: str = ""
    host: str = ""
    port: int = 104
    url: str = ""
    move: bool = False

    def node(self) -> PacsNode:
        """The core's node (validated): :class:`WebNode` when ``url`` is set."""
        if self.url.strip():
            return WebNode(url=self.url.strip())
        return DimseNode(ae_title=self.ae_title, host=self.host.strip(), port=int(self.port))

    def validate(self) -> "PacsNodeConfig":
        if not self.name.strip():
            raise InputError("a PACS node needs a name")
        self.node()
        return self

    def describe(self) -> str:
        return f"{self.name} ({self.node()})"


def nodes_to_json(nodes: Iterable[PacsNodeConfig]) -> str:
    return json.dumps([asdict(n) for n in nodes])


def nodes_from_json(text: str | None) -> list[PacsNodeConfig]:
    """Nodes from the settings' JSON; entries that are not valid are dropped (a hand-edited
    settings file must not stop the app)."""
    try:
        items = json.loads(text or "[]")
    except ValueError:
        return []
    out = []
    for item in items if isinstance(items, list) else []:
        try:
            out.append(PacsNodeConfig(**{k: item[k] for k in item if k in
                                         PacsNodeConfig.__dataclass_fields__}).validate())
        except (TypeError, ValueError, InputError):
            continue
    return out


def client_for(node: PacsNodeConfig, *, aet: str = DEFAULT_AET,
               scp_port: int = DEFAULT_SCP_PORT) -> Any:
    """The core's client of a configured node."""
    return connect(node.node(), aet=aet or DEFAULT_AET, scp_port=scp_port or DEFAULT_SCP_PORT)


def retrieve_series(client: Any, study_uid: str, series_uid: str | None, folder: Path, *,
                    move: bool = False, progress: ProgressCallback | None = None) -> Path:
    """Retrieve into a new ``folder`` (staged: whole or nothing); the folder to open."""
    result = client.retrieve(study_uid, folder, series_uid=series_uid, move=move,
                             progress=progress)
    return result.folder


def send_files(client: Any, files: Iterable[Path], *,
               progress: ProgressCallback | None = None) -> int:
    """Store DICOM files; the number stored. Raises when there is none."""
    dicom = [Path(f) for f in files if str(f).lower().endswith(".dcm")]
    if not dicom:
        raise InputError("nothing to send: the export wrote no DICOM objects (export the plan "
                         "with its DICOM objects)")
    return client.store(dicom, progress=progress).stored
