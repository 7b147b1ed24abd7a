"""``spinect pacs echo|find|get|send``: talk to a PACS over DICOM or DICOMweb.

The node is ``--pacs AET@HOST:PORT`` (DICOM: C-ECHO, C-FIND, C-GET or C-MOVE, C-STORE) or
``--dicomweb URL`` (QIDO-RS, WADO-RS, STOW-RS); our AE title is ``--aet`` (default SPINECT).
``get`` retrieves into a new (or empty) folder that appears only when the retrieve is complete;
``--move`` uses C-MOVE to a storage SCP of ours started for the retrieve on ``--scp-port``
(the PACS must know our AE title with this computer's address and that port). Failures
(unreachable node, timeout, refused association, unknown AE title, partial retrieve) are one
line ``spinect: error: ...`` with exit code 2. Patient names and IDs are never printed; study
dates and descriptions only with ``--show-descriptions``. See docs/PACS.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from spinect_core.progress import TqdmProgress


def add_node_arguments(p: argparse.ArgumentParser, *, required: bool = True) -> None:
    """``--pacs`` / ``--dicomweb``, ``--aet`` and ``--timeout`` (shared with ``plan --send``)."""
    group = p.add_mutually_exclusive_group(required=required)
    group.add_argument("--pacs", metavar="AET@HOST:PORT",
                       help="DICOM node, e.g. ORTHANC@pacs.local:4242")
    group.add_argument("--dicomweb", metavar="URL",
                       help="DICOMweb root instead of --pacs, e.g. http://pacs:8042/dicom-web")
    p.add_argument("--aet", default=None, metavar="OUR_AET",
                   help="our AE title (default SPINECT)")
    p.add_argument("--timeout", type=float, default=None, metavar="S",
                   help="seconds to wait for a connection or an answer (default 30)")


def client_from_args(args: argparse.Namespace, *, node_text: str | None = None) -> Any:
    """The PACS client of ``--pacs``/``--dicomweb`` (or ``node_text``) and ``--aet``."""
    from spinect_core.errors import InputError
    from spinect_core.pacs import (DEFAULT_AET, DEFAULT_SCP_PORT, DEFAULT_TIMEOUT_S, connect,
                                   parse_dimse_node, parse_node, parse_web_node)

    if node_text is not None:
        node = parse_node(node_text)
    elif getattr(args, "dicomweb", None):
        node = parse_web_node(args.dicomweb)
    else:
        node = parse_dimse_node(args.pacs)
    timeout = getattr(args, "timeout", None) or DEFAULT_TIMEOUT_S
    if timeout <= 0:
        raise InputError(f"--timeout must be positive, got {timeout:g}")
    scp_port = getattr(args, "scp_port", None) or DEFAULT_SCP_PORT
    return connect(node, aet=getattr(args, "aet", None) or DEFAULT_AET, timeout_s=timeout,
                   scp_port=scp_port)


def register(subparsers: Any) -> None:
    from spinect_core.cli.segment import one_line_errors

    p = subparsers.add_parser(
        "pacs", help="query, retrieve and store on a PACS (DICOM or DICOMweb)",
        description="Talk to a PACS: echo (is it there?), find studies and series, get a study "
        "or series into a folder, send DICOM files. Nodes are --pacs AET@HOST:PORT (DICOM) or "
        "--dicomweb URL. Patient names and IDs are never printed.")
    sub = p.add_subparsers(dest="pacs_command", metavar="ACTION")
    sub.required = True

    echo = sub.add_parser("echo", help="check that the node answers (C-ECHO)")
    add_node_arguments(echo)
    echo.set_defaults(handler=run_echo)

    find = sub.add_parser("find", help="find studies and their series (C-FIND / QIDO-RS)",
                          description="Find studies by patient ID, accession number, date or "
                          "study UID (at least one), and list their series.")
    add_node_arguments(find)
    find.add_argument("--patient-id", metavar="ID", default="", help="PatientID")
    find.add_argument("--accession", metavar="N", default="", help="AccessionNumber")
    find.add_argument("--date", metavar="YYYYMMDD[-YYYYMMDD]", default="",
                      help="StudyDate or a range")
    find.add_argument("--study", metavar="UID", default="", help="StudyInstanceUID")
    find.add_argument("--json", action="store_true",
                      help="print one JSON list of studies with StudyInstanceUID and their series")
    find.add_argument("--show-descriptions", action="store_true",
                      help="also show study dates and the study and series descriptions (free "
                      "text that may hold the patient's name; not shown by default)")
    find.set_defaults(handler=run_find)

    get = sub.add_parser("get", help="retrieve a study or series into a folder (C-GET, C-MOVE "
                         "or WADO-RS)",
                         description="Retrieve into OUT_DIR/<SeriesInstanceUID>/<SOPInstanceUID>"
                         ".dcm. OUT_DIR must be new or empty; it appears only when every "
                         "instance has arrived.")
    add_node_arguments(get)
    get.add_argument("--study", required=True, metavar="UID", help="StudyInstanceUID")
    get.add_argument("--series", metavar="UID", help="only this SeriesInstanceUID")
    get.add_argument("-o", "--output", required=True, metavar="OUT_DIR",
                     help="new or empty folder")
    get.add_argument("--move", action="store_true",
                     help="C-MOVE to our own storage SCP instead of C-GET (DICOM only)")
    get.add_argument("--scp-port", type=int, default=None, metavar="PORT",
                     help="port of our storage SCP for --move (default 11113; the PACS must "
                     "know our AE title at this port)")
    get.add_argument("--quiet", action="store_true", help="no progress bar")
    get.set_defaults(handler=run_get)

    send = sub.add_parser("send", help="store DICOM files on the node (C-STORE / STOW-RS)")
    add_node_arguments(send)
    send.add_argument("paths", nargs="+", metavar="PATH",
                      help="DICOM files or folders (searched recursively; other files skipped)")
    send.add_argument("--quiet", action="store_true", help="no progress bar")
    send.set_defaults(handler=run_send)
    for parser in (p, echo, find, get, send):
        one_line_errors(parser)


def run_echo(args: argparse.Namespace) -> int:
    client = client_from_args(args)
    client.echo()
    print(f"{client.node} answers")
    return 0


def run_find(args: argparse.Namespace) -> int:
    from spinect_core.pacs import Query

    query = Query(patient_id=args.patient_id, accession=args.accession, date=args.date,
                  study_uid=args.study)
    studies = client_from_args(args).find(query)
    if args.json:
        print(json.dumps([s.to_json(descriptions=args.show_descriptions) for s in studies]))
        return 0
    print(f"{len(studies)} studies found")
    for st in studies:
        extra = (f" {st.date or '-'} {st.description!r}" if args.show_descriptions else "")
        print(f"study {st.study_uid} {'/'.join(st.modalities) or '?'}{extra}, "
              f"{len(st.series)} series")
        for se in st.series:
            n = "?" if se.instances is None else se.instances
            desc = f" {se.description!r}" if args.show_descriptions else ""
            print(f"  series {se.series_uid} {se.modality or '?'} #{se.series_number or '-'}, "
                  f"{n} instances{desc}")
    return 0


def run_get(args: argparse.Namespace) -> int:
    from spinect_core.errors import InputError

    if args.move and args.dicomweb:
        raise InputError("--move is a DICOM (C-MOVE) option; DICOMweb retrieves with WADO-RS")
    client = client_from_args(args)
    with TqdmProgress("retrieving", disable=args.quiet) as bar:
        result = client.retrieve(args.study, args.output, series_uid=args.series,
                                 move=args.move, progress=bar)
    print(f"retrieved {len(result.files)} instances of {len(result.series_uids)} series into "
          f"{result.folder}")
    return 0


def run_send(args: argparse.Namespace) -> int:
    client = client_from_args(args)
    with TqdmProgress("sending", disable=args.quiet) as bar:
        result = client.store(args.paths, progress=bar)
    if result.skipped:
        print(f"spinect: note: {len(result.skipped)} files are not DICOM and were not sent",
              file=sys.stderr)
    print(f"sent {result.stored} instances to {client.node}")
    return 0
