"""Exception types of the core.

Every error a user can cause (bad input, wrong weights) is a subclass of :class:`SpinectError`
whose message is one line naming the problem and what to do about it. Messages never contain
patient identifiers (names, IDs, dates of birth, accession numbers).
"""

from __future__ import annotations


class SpinectError(Exception):
    """Base class of all errors a user can act on."""


class Cancelled(SpinectError):
    """A long computation was cancelled through its progress callback."""

    def __init__(self, message: str = "cancelled by the user") -> None:
        super().__init__(message)


# --- CT input -----------------------------------------------------------------------------------
class InputError(SpinectError):
    """The input image or folder cannot be used."""


class NoImagesFoundError(InputError):
    """No readable image (DICOM, NIfTI, NRRD, MHA) at the given path."""


class UnsupportedFormatError(InputError):
    """The file exists but is not a format we read."""


class NotCTError(InputError):
    """The series is not a CT (MR, PET, SR, ...)."""


class SingleSliceError(InputError):
    """A 2D image or a single slice: a 3D volume is required."""


class MissingSlicesError(InputError):
    """Gaps or irregular spacing between slices that cannot be resampled safely."""


class GantryTiltError(InputError):
    """Gantry-tilted acquisition that could not be corrected."""


class NotHounsfieldError(InputError):
    """Intensities are not in Hounsfield units (no rescale, wrong range)."""


class InconsistentSeriesError(InputError):
    """Slices of one series disagree in geometry (size, orientation, pixel spacing), or one
    series UID holds several interleaved acquisitions."""


class TruncatedFileError(InputError):
    """An image file ends before all of its voxels (a cut download or copy, half a gzip stream)."""


class InvalidSpacingError(InputError):
    """A header gives no voxel spacing, or a zero, negative or non-finite one."""


class NonFiniteValuesError(InputError):
    """Voxels that are not numbers (NaN) or infinite: a damaged or badly converted image."""


class VolumeTooSmallError(InputError):
    """Too few voxels or too small a field of view to be a CT of the lumbar spine."""


class InputTooLargeError(InputError):
    """An archive or file beyond the size this application accepts (memory and disk safety)."""


# --- model / weights ----------------------------------------------------------------------------
class WeightsError(SpinectError):
    """A weights file or model card is missing, corrupt, truncated or does not match."""


class WeightsTooLargeError(WeightsError):
    """A weights file or model card larger than any SPINECT network (read nothing of it)."""


class NoWeightsInstalledError(WeightsError):
    """No default weights are bundled with this installation."""


# --- output -------------------------------------------------------------------------------------
class OutputError(SpinectError):
    """The output folder or file cannot be written (read-only, no space, a file in the way)."""


# --- anatomy and planning -----------------------------------------------------------------------
class AnatomyError(SpinectError):
    """The anatomy needed (e.g. L5/S1) is not in the field of view or cannot be identified."""
