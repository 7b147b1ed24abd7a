"""Turn exceptions from the core into what an error dialog shows: title, message, what to do.

The core's messages are already one line without patient identifiers; we add a title and advice
that fits the desktop (menus and settings instead of command-line flags).
"""

from __future__ import annotations

from dataclasses import dataclass

from spinect_core import errors as E
from spinect_core.io.atomic import FileExistsRefusedError
from spinect_core.pacs import errors as P

__all__ = ["ErrorReport", "describe_error", "is_out_of_memory"]


@dataclass(frozen=True, kw_only=True)
class ErrorReport:
    """What a user is told about a failure.

    Attributes
    ----------
    title : str
        Short headline ("Not a CT").
    message : str
        The core's one-line message.
    hint : str
        What to do next.
    cancelled : bool
        The user cancelled; shown quietly (status bar), not as an error.
    """

    title: str
    message: str
    hint: str = ""
    cancelled: bool = False

    def text(self) -> str:
        """Message and hint as one block (stderr, logs)."""
        return f"{self.title}: {self.message}" + (f"\n{self.hint}" if self.hint else "")


# Most specific first: the first isinstance match wins.
_KNOWN: tuple[tuple[type[BaseException], str, str], ...] = (
    (E.Cancelled, "Cancelled", "Nothing was changed; what was computed before is kept."),
    (E.NoWeightsInstalledError, "No trained weights installed",
     "The CT is shown without a segmentation. Choose a weights file (.safetensors) in "
     "Settings, or open an existing segmentation with File > Open segmentation."),
    (E.WeightsError, "Weights cannot be used",
     "Choose another weights file in Settings (it must be a SPINECT .safetensors file with its "
     "model card)."),
    (E.NotCTError, "Not a CT",
     "SPINECT plans on CT only. Choose a CT series (MR, PET and other modalities are refused)."),
    (E.NoImagesFoundError, "No images found",
     "Choose a DICOM folder, a zip of one, or a NIfTI/NRRD/MHA file."),
    (E.UnsupportedFormatError, "Unsupported file",
     "Choose a DICOM folder, a zip of one, or a NIfTI (.nii/.nii.gz), NRRD or MHA file."),
    (E.SingleSliceError, "Not a 3D volume",
     "Choose a series with many slices (a thin-slice lumbar CT)."),
    (E.MissingSlicesError, "Slices missing",
     "Export the complete series from the PACS again, or choose another series."),
    (E.GantryTiltError, "Gantry tilt",
     "Choose a reconstruction without gantry tilt."),
    (E.NotHounsfieldError, "Intensities are not Hounsfield units",
     "Choose the original CT series (not a derived or rescaled image)."),
    (E.InconsistentSeriesError, "Inconsistent series",
     "The files disagree in geometry; export the series again or choose another one."),
    (E.TruncatedFileError, "File incomplete",
     "The file ends early (a cut download or copy); copy or export it again."),
    (E.InvalidSpacingError, "No valid voxel spacing",
     "The header gives no usable voxel size; export the CT again from the PACS or the "
     "original software."),
    (E.NonFiniteValuesError, "Damaged image values",
     "The image holds values that are not numbers; choose the original CT series rather than "
     "a converted file."),
    (E.VolumeTooSmallError, "Too small for a lumbar CT",
     "Choose a series that covers L4 to the sacrum (a thin-slice lumbar or abdominal CT)."),
    (E.InputTooLargeError, "Input too large",
     "Choose the CT series alone (not a whole archive), or unpack it and open its folder."),
    # PACS (File > Open from PACS, Send to PACS in the export): the core's message names the node.
    (P.PacsUnreachableError, "Cannot reach the PACS",
     "Check the node's host and port in Tools > PACS nodes, and that the network is up."),
    (P.PacsTimeoutError, "The PACS did not answer in time",
     "Try again; if it repeats, check the node in Tools > PACS nodes or ask its administrator."),
    (P.UnknownAETitleError, "The PACS does not know this application",
     "Ask the PACS administrator to register our AE title, or set one it knows in Tools > "
     "PACS nodes (Our AE title)."),
    (P.AssociationRejectedError, "The PACS refused the connection",
     "Check the node's AE title, host and port in Tools > PACS nodes, and that the PACS "
     "accepts our AE title."),
    (P.PartialRetrieveError, "Retrieve incomplete",
     "Nothing was kept. Retrieve the series again; if it repeats, ask the PACS administrator."),
    (P.PacsStoreError, "Not stored on the PACS",
     "The files written stay in the export folder; send them again later or ask the PACS "
     "administrator."),
    (P.PacsRequestError, "The PACS refused the request",
     "Check the search or the selection, and the node in Tools > PACS nodes."),
    (P.PacsError, "PACS", "Check the node in Tools > PACS nodes and try again."),
    (FileExistsRefusedError, "File exists",
     "Choose another folder or allow replacing the existing files."),
    (E.OutputError, "Cannot write the output",
     "Choose another folder (writable, with free space)."),
    (E.AnatomyError, "Anatomy not found",
     "Check that L5 and S1 are in the field of view and the segmentation is plausible."),
    (E.InputError, "Cannot use this input", "Check the file or folder and try again."),
    (E.SpinectError, "SPINECT error", "Check the input and the settings, then try again."),
)


def is_out_of_memory(exc: BaseException) -> bool:
    """True for CUDA / allocator out-of-memory errors (torch raises RuntimeError subclasses)."""
    text = str(exc).lower()
    return "out of memory" in text or type(exc).__name__ == "OutOfMemoryError"


def describe_error(exc: BaseException, *, action: str = "") -> ErrorReport:
    """An :class:`ErrorReport` for ``exc``.

    Parameters
    ----------
    exc : BaseException
    action : str
        What was being done ("Loading the CT"), used for unexpected errors.
    """
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    for cls, title, hint in _KNOWN:
        if isinstance(exc, cls):
            return ErrorReport(title=title, message=message, hint=hint,
                               cancelled=isinstance(exc, E.Cancelled))
    if is_out_of_memory(exc):
        return ErrorReport(title="Out of memory", message=message,
                           hint="Choose the CPU in Settings > Device, or close other programs "
                                "using the GPU, then segment again.")
    if isinstance(exc, MemoryError):
        return ErrorReport(title="Out of memory", message=message or "not enough memory",
                           hint="Close other programs or use a smaller field of view.")
    if isinstance(exc, ValueError) and "not available" in message:
        # resolve_device: "device 'cuda' was requested but CUDA is not available"
        return ErrorReport(title="Device not available", message=message,
                           hint="Choose Auto or CPU in Settings > Device.")
    if isinstance(exc, OSError):
        return ErrorReport(title="File error", message=message,
                           hint="Check that the path exists and that you may read/write it.")
    what = f"{action} failed" if action else "Unexpected error"
    return ErrorReport(title=what, message=f"{type(exc).__name__}: {message}",
                       hint="The application is still usable. If this repeats, please report it "
                            "with the steps that led to it.")
