"""A real Orthanc PACS on loopback ports for the PACS tests (no mocks).

:func:`orthanc` starts Debian's ``/usr/sbin/Orthanc`` (or ``$SPINECT_ORTHANC``) once per module
with a temporary JSON configuration: storage and index under the test's temporary folder, DICOM
and HTTP ports that were free a moment ago, our AE title (``SPINECT``) registered as a modality at
the port of the storage SCP that C-MOVE sends to, no authentication, no remote access, the called
AE title checked (so a wrong one is refused) and the DICOMweb plugin loaded when it is installed.
It waits until the REST API answers and stops the server afterwards. The tests skip only when
Orthanc is not installed (CI installs it).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

ORTHANC_AET = "ORTHANC"
OUR_AET = "SPINECT"
PLUGIN_DIRS = ("/usr/share/orthanc/plugins", "/usr/lib/orthanc")


def orthanc_binary() -> str | None:
    env = os.environ.get("SPINECT_ORTHANC")
    if env:
        return env if Path(env).is_file() else None
    for candidate in ("/usr/sbin/Orthanc", shutil.which("Orthanc")):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


def dicomweb_plugin() -> Path | None:
    for folder in map(Path, PLUGIN_DIRS):
        found = sorted(folder.glob("libOrthancDicomWeb.so*")) if folder.is_dir() else []
        if found:
            return found[0]
    return None


def free_port() -> int:
    """A TCP port free on loopback now (the OS picks it; it may be taken later, rarely)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Orthanc:
    """A running Orthanc: where to reach it and its REST API."""

    aet: str
    host: str
    dicom_port: int
    http_port: int
    scp_port: int
    has_dicomweb: bool
    storage: Path

    @property
    def node(self) -> str:
        """``AET@HOST:PORT`` as the CLI takes it."""
        return f"{self.aet}@{self.host}:{self.dicom_port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.http_port}"

    @property
    def dicomweb(self) -> str:
        return f"{self.url}/dicom-web"

    def rest(self, path: str, method: str = "GET", body: bytes | None = None):
        req = urllib.request.Request(self.url + path, data=body, method=method)
        with urllib.request.urlopen(req, timeout=30) as resp:
            data = resp.read()
        return json.loads(data) if data else None

    def clear(self) -> None:
        """Delete every patient (each test starts from an empty PACS where it needs to)."""
        for pid in self.rest("/patients"):
            self.rest(f"/patients/{pid}", method="DELETE")


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory):
    binary = orthanc_binary()
    if binary is None:
        pytest.skip("Orthanc is not installed (apt-get install orthanc orthanc-dicomweb)")
    root = tmp_path_factory.mktemp("orthanc")
    dicom_port, http_port, scp_port = free_port(), free_port(), free_port()
    plugin = dicomweb_plugin()
    config = {
        "Name": "spinect-test",
        "StorageDirectory": str(root / "storage"),
        "IndexDirectory": str(root / "index"),
        "DicomAet": ORTHANC_AET,
        "DicomPort": dicom_port,
        "HttpPort": http_port,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "DicomCheckCalledAet": True,
        "DicomCheckModalityHost": False,
        "DicomModalities": {"spinect": [OUR_AET, "127.0.0.1", scp_port]},
        "DicomAlwaysAllowEcho": True,
        "DicomAlwaysAllowStore": True,
        "DicomScpTimeout": 10,
        "DicomScuTimeout": 10,
        "SaveJobs": False,
        "HttpsVerifyPeers": False,
        "StableAge": 1,
        "Plugins": [str(plugin)] if plugin else [],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": False,
                     "StudiesMetadata": "Full", "SeriesMetadata": "Full"},
    }
    config_path = root / "orthanc.json"
    config_path.write_text(json.dumps(config, indent=2))
    log = open(root / "orthanc.log", "wb")
    proc = subprocess.Popen([binary, str(config_path)], stdout=log, stderr=subprocess.STDOUT,
                            cwd=root)
    server = Orthanc(aet=ORTHANC_AET, host="127.0.0.1", dicom_port=dicom_port,
                     http_port=http_port, scp_port=scp_port, has_dicomweb=plugin is not None,
                     storage=root)
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                log.flush()
                text = (root / "orthanc.log").read_text()[-3000:]
                pytest.fail(f"Orthanc exited at start:\n{text}")
            try:
                server.rest("/system")
                break
            except (urllib.error.URLError, ConnectionError, OSError):
                if time.monotonic() > deadline:
                    pytest.fail("Orthanc's REST API did not answer within 60 s")
                time.sleep(0.2)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
