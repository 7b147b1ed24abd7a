"""Checks that an input is whole and means what it says, before anything is computed on it.

Each check raises its own :class:`~spinect_core.errors.InputError` subclass with a one-line
message; none of them guesses a repair, because every repair we could make (zero-filling a cut
file, taking a missing spacing as 1 mm, masking NaN) would hand the planner an image that looks
valid and is not.

* **Truncated image files** (:class:`~spinect_core.errors.TruncatedFileError`): ITK reads a NIfTI
  whose data (or gzip stream) ends early without complaint and fills the missing slices with 0,
  which later reads as missing anatomy. :func:`check_image_file` compares the data the header
  promises with what the file holds: for ``.nii`` the file size, for ``.nii.gz`` the whole gzip
  stream is inflated (in 4 MB pieces, nothing kept) and its length and end marker checked; for
  MHA the local data size; NRRD's own reader already refuses a short file (its message is
  translated by :func:`truncation_message`).
* **Spacing** (:class:`~spinect_core.errors.InvalidSpacingError`): ITK replaces a zero NIfTI
  ``pixdim`` by 1 mm and turns a negative one into a flipped axis, and assumes 1 mm when an NRRD
  or MHA header has no spacing at all. Such headers are refused.
* **Non-finite voxels** (:class:`~spinect_core.errors.NonFiniteValuesError`): NaN or infinite
  values, counted and located (bounding box in voxel indices). ITK's NIfTI reader replaces NaN by
  0 (water), so float NIfTI data is searched in the file itself, in the same streaming pass as the
  truncation check; other formats keep NaN and the loaded array is checked (:func:`check_finite`).
* **Too small** (:class:`~spinect_core.errors.VolumeTooSmallError`): fewer than
  ``min_voxels_per_axis`` voxels or less than ``min_extent_mm`` of field of view along an axis
  (defaults in :class:`~spinect_core.io.options.LoadOptions`); checked before the Hounsfield check,
  whose statistics mean nothing on a handful of voxels.
"""

from __future__ import annotations

import gzip
import math
import re
import struct
import zlib
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from spinect_core.errors import (InvalidSpacingError, NonFiniteValuesError, TruncatedFileError,
                                 VolumeTooSmallError)

__all__ = ["check_image_file", "check_finite", "check_volume_size", "truncation_message"]

_CHUNK = 4 << 20
#: Files (path, size, mtime, format) that passed :func:`check_image_file` in this process.
_PASSED: set[tuple[str, int, int, str]] = set()
#: NRRD ``type`` names -> bytes per value (the aliases of the NRRD format specification).
_NRRD_BYTES = {
    **dict.fromkeys(("signed char", "int8", "int8_t", "uchar", "unsigned char", "uint8",
                     "uint8_t"), 1),
    **dict.fromkeys(("short", "short int", "signed short", "signed short int", "int16", "int16_t",
                     "ushort", "unsigned short", "unsigned short int", "uint16", "uint16_t"), 2),
    **dict.fromkeys(("int", "signed int", "int32", "int32_t", "uint", "unsigned int", "uint32",
                     "uint32_t", "float"), 4),
    **dict.fromkeys(("longlong", "long long", "long long int", "signed long long",
                     "signed long long int", "int64", "int64_t", "ulonglong",
                     "unsigned long long", "unsigned long long int", "uint64", "uint64_t",
                     "double"), 8),
}
#: MetaImage ``ElementType`` -> bytes per value.
_MET_BYTES = {"MET_CHAR": 1, "MET_UCHAR": 1, "MET_SHORT": 2, "MET_USHORT": 2, "MET_INT": 4,
              "MET_UINT": 4, "MET_LONG": 4, "MET_ULONG": 4, "MET_LONG_LONG": 8,
              "MET_ULONG_LONG": 8, "MET_FLOAT": 4, "MET_DOUBLE": 8}


# --- files ---------------------------------------------------------------------------------------
def check_image_file(path: str | Path, fmt: str) -> None:
    """Refuse a truncated image file or one whose header has no usable voxel spacing.

    Parameters
    ----------
    path : path-like
        The image file.
    fmt : {"nifti", "nrrd", "mha"}
        Its format (from :func:`spinect_core.io.images.image_format`).

    Raises
    ------
    TruncatedFileError
        The file holds fewer bytes of image data than its header describes.
    InvalidSpacingError
        A missing, zero, negative or non-finite voxel spacing along a spatial axis.
    """
    path = Path(path)
    try:
        st = path.stat()
        key = (str(path.resolve()), st.st_size, st.st_mtime_ns, fmt)
    except OSError:
        key = None
    if key is not None and key in _PASSED:
        return  # listing then loading a file inflates it once, not twice
    if fmt == "nifti":
        _check_nifti(path)
    elif fmt == "nrrd":
        _check_nrrd(path)
    elif fmt == "mha":
        _check_meta(path)
    if key is not None:
        if len(_PASSED) > 64:
            _PASSED.clear()
        _PASSED.add(key)


def truncation_message(name: str, got: int | None = None, expected: int | None = None) -> str:
    """The one message of every truncated-file refusal."""
    amount = ""
    if got is not None and expected:
        amount = (f" (it holds {_mb(got)} of the {_mb(expected)} of image data its header "
                  "describes)")
    return (f"{name} is truncated: the file ends before the end of its image data{amount}; it "
            "was probably cut while copying or downloading - copy or export it again")


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n} bytes"


def _spacing_error(name: str, what: str) -> InvalidSpacingError:
    return InvalidSpacingError(
        f"{name} has {what}; a voxel size cannot be guessed (reading it as 1 mm would distort "
        "every distance) - export the image again with its spacing")


def _check_spacing_values(name: str, values: Sequence[float], field: str) -> None:
    for axis, v in zip("xyz", values):
        if not math.isfinite(v) or v <= 0:
            word = "zero" if v == 0 else "negative" if v < 0 else "non-finite"
            raise _spacing_error(name, f"a {word} voxel spacing along {axis} ({field} = {v:g})")


def _check_nifti(path: Path) -> None:
    gz = path.name.lower().endswith(".gz")
    opener = gzip.open if gz else open
    try:
        with opener(path, "rb") as f:
            head = f.read(540)
    except EOFError:  # a gzip stream cut inside the header
        raise TruncatedFileError(truncation_message(path.name)) from None
    except (OSError, zlib.error):
        return  # not gzip / not readable at all: ITK's reader gives the format error
    if len(head) < 348:
        return  # too short to be a NIfTI header: ITK's reader gives the format error
    endian = None
    for e in ("<", ">"):
        if struct.unpack(e + "i", head[:4])[0] in (348, 540):
            endian = e
            break
    if endian is None:
        return  # not a NIfTI header we understand: leave the verdict to ITK
    if struct.unpack(endian + "i", head[:4])[0] == 348:
        dims = struct.unpack(endian + "8h", head[40:56])
        datatype = struct.unpack(endian + "h", head[70:72])[0]
        bitpix = struct.unpack(endian + "h", head[72:74])[0]
        pixdim = struct.unpack(endian + "8f", head[76:108])
        vox_offset = max(int(struct.unpack(endian + "f", head[108:112])[0]), 352)
    else:
        if len(head) < 540:
            raise TruncatedFileError(truncation_message(path.name))
        datatype = struct.unpack(endian + "h", head[12:14])[0]
        bitpix = struct.unpack(endian + "h", head[14:16])[0]
        dims = struct.unpack(endian + "8q", head[16:80])
        pixdim = struct.unpack(endian + "8d", head[104:168])
        vox_offset = max(int(struct.unpack(endian + "q", head[168:176])[0]), 544)
    ndim = int(dims[0])
    if not 1 <= ndim <= 7:
        return
    _check_spacing_values(path.name, [float(v) for v in pixdim[1:1 + min(ndim, 3)]], "pixdim")
    shape_xyz = [max(int(d), 1) for d in dims[1:4]] + [1] * max(0, 3 - ndim)
    n_vox = 1
    for d in dims[1:1 + ndim]:
        n_vox *= max(int(d), 1)
    expected = vox_offset + n_vox * max(int(bitpix), 8) // 8
    # ITK's NIfTI reader turns NaN into 0: float data is searched for them on the way.
    float_code = {16: "f4", 64: "f8"}.get(int(datatype))
    scan = _NonFiniteScan(vox_offset, np.dtype(endian + float_code) if float_code else None,
                          shape_xyz)
    if gz or scan.dtype is not None:
        got, complete = _stream(path, gz, scan.feed)
    else:
        got, complete = path.stat().st_size, True
    if not complete or got < expected:
        raise TruncatedFileError(truncation_message(path.name, max(got - vox_offset, 0),
                                                    expected - vox_offset))
    if scan.count:
        raise NonFiniteValuesError(_non_finite_message(path.name, scan.count, n_vox, scan.lo,
                                                       scan.hi))


class _NonFiniteScan:
    """Counts and bounds NaN/inf values of the float data beginning at byte ``offset`` of a
    stream fed in pieces (values may straddle two pieces)."""

    def __init__(self, offset: int, dtype: np.dtype | None, shape_xyz: list[int]) -> None:
        self.offset, self.dtype, self.shape_xyz = offset, dtype, shape_xyz
        self.pos = 0
        self.index = 0  # values seen
        self.carry = b""
        self.count = 0
        self.lo = [np.iinfo(np.int64).max] * 3  # x, y, z
        self.hi = [-1] * 3

    def feed(self, data: bytes) -> None:
        start, self.pos = self.pos, self.pos + len(data)
        if self.dtype is None or self.pos <= self.offset:
            return
        if start < self.offset:
            data = data[self.offset - start:]
        buf = self.carry + data if self.carry else data
        n = len(buf) // self.dtype.itemsize
        self.carry = buf[n * self.dtype.itemsize:]
        values = np.frombuffer(buf, self.dtype, count=n)
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            nx, ny, nz = self.shape_xyz
            flat = (bad + self.index) % (nx * ny * nz)
            coords = (flat % nx, (flat // nx) % ny, flat // (nx * ny))
            for a in range(3):
                self.lo[a] = min(self.lo[a], int(coords[a].min()))
                self.hi[a] = max(self.hi[a], int(coords[a].max()))
            self.count += int(bad.size)
        self.index += n


def _stream(path: Path, gz: bool, feed: Callable[[bytes], None]) -> tuple[int, bool]:
    """Feed the (inflated) bytes of ``path`` to ``feed`` in pieces; ``(bytes, complete)``.

    A gzip file is inflated piece by piece and dropped; concatenated gzip members are followed
    and zero padding after the last one is ignored. A corrupt stream (bad data, CRC or length)
    counts as incomplete.
    """
    total = 0
    with open(path, "rb") as f:
        if not gz:
            while data := f.read(_CHUNK):
                feed(data)
                total += len(data)
            return total, True
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            while True:
                data = f.read(_CHUNK)
                if not data:
                    return total, d.eof
                while data:
                    if d.eof:
                        if not data.strip(b"\0"):
                            break
                        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
                    out = d.decompress(data, _CHUNK)
                    feed(out)
                    total += len(out)
                    data = d.unused_data if d.eof else d.unconsumed_tail
        except zlib.error:
            return total, False


def _non_finite_message(source: str, count: int, size: int, lo: Sequence[int],
                        hi: Sequence[int]) -> str:
    return (f"{source} has {count} voxel{'s' if count != 1 else ''} that are not numbers "
            f"(NaN/inf), {count / max(size, 1):.2%} of the volume, within voxels "
            f"x {lo[0]}-{hi[0]}, y {lo[1]}-{hi[1]}, z {lo[2]}-{hi[2]}: it may be damaged; "
            "re-export it")


def _text_header(path: Path, limit: int = 1 << 16) -> bytes:
    """The first bytes of an NRRD / MetaImage file (its text header and some data)."""
    with open(path, "rb") as f:
        return f.read(limit)


def _check_nrrd(path: Path) -> None:
    head = _text_header(path)
    if not head.startswith(b"NRRD"):
        return
    end = head.find(b"\n\n")
    text = head[: end if end >= 0 else len(head)].decode("latin-1", "replace")
    fields: dict[str, str] = {}
    for line in text.splitlines()[1:]:
        if line.startswith("#") or ":" not in line or ":=" in line:
            continue
        key, value = line.split(":", 1)
        fields[key.strip().lower()] = value.strip()
    try:
        sizes = [int(v) for v in fields.get("sizes", "").split()]
    except ValueError:
        return
    kinds = fields.get("kinds", "").split()
    directions = fields.get("space directions")
    if directions is not None:
        vectors = re.findall(r"\(([^)]*)\)|none", directions)
        norms = []
        for v in vectors:
            if not v:  # "none": a non-spatial axis (components, time)
                continue
            try:
                comps = [float(c) for c in v.split(",")]
            except ValueError:
                raise _spacing_error(path.name,
                                     f"unreadable space directions ({directions})") from None
            finite = all(map(math.isfinite, comps))
            norms.append(math.sqrt(sum(c * c for c in comps)) if finite else math.nan)
        _check_spacing_values(path.name, norms[:3], "the length of a space direction")
    elif "spacings" in fields:
        values = []
        for k, v in enumerate(fields["spacings"].split()):
            if v.lower() == "nan" and k < len(kinds) and kinds[k] not in ("domain", "space"):
                continue  # a non-spatial axis has no spacing
            try:
                values.append(float(v))
            except ValueError:
                values.append(math.nan)
        _check_spacing_values(path.name, values[:3], "spacings")
    else:
        raise _spacing_error(path.name, "no voxel spacing ('space directions' or 'spacings')")
    # A short raw payload: NRRD's reader fails too, but with a message about bytes.
    if fields.get("encoding", "raw") == "raw" and "data file" not in fields \
            and "datafile" not in fields and end >= 0:
        per = _NRRD_BYTES.get(fields.get("type", "").lower())
        if per and sizes:
            expected = int(np.prod(sizes)) * per
            got = path.stat().st_size - (end + 2)
            if got < expected:
                raise TruncatedFileError(truncation_message(path.name, got, expected))


def _check_meta(path: Path) -> None:
    head = _text_header(path)
    fields: dict[str, str] = {}
    data_start = None
    pos = 0
    for raw_line in head.split(b"\n"):
        line = raw_line.decode("latin-1", "replace")
        pos += len(raw_line) + 1
        if "=" not in line:
            continue
        key, value = (s.strip() for s in line.split("=", 1))
        fields[key] = value
        if key == "ElementDataFile":
            data_start = pos
            break
    if "NDims" not in fields:
        return
    spacing = fields.get("ElementSpacing") or fields.get("ElementSize")
    if spacing is None:
        raise _spacing_error(path.name, "no voxel spacing (ElementSpacing)")
    try:
        values = [float(v) for v in spacing.split()]
    except ValueError:
        raise _spacing_error(path.name, f"an unreadable ElementSpacing ({spacing})") from None
    _check_spacing_values(path.name, values[:3], "ElementSpacing")
    if fields.get("ElementDataFile", "").upper() != "LOCAL" or data_start is None:
        return
    got = path.stat().st_size - data_start
    if fields.get("CompressedData", "False").lower() == "true":
        try:
            expected = int(fields.get("CompressedDataSize", "0"))
        except ValueError:
            return
    else:
        per = _MET_BYTES.get(fields.get("ElementType", ""))
        try:
            dims = [int(v) for v in fields.get("DimSize", "").split()]
            channels = int(fields.get("ElementNumberOfChannels", "1"))
        except ValueError:
            return
        if not per or not dims:
            return
        expected = int(np.prod(dims)) * per * channels
    if expected and got < expected:
        raise TruncatedFileError(truncation_message(path.name, got, expected))


# --- arrays --------------------------------------------------------------------------------------
def check_finite(array: np.ndarray, *, source: str = "the CT") -> None:
    """Refuse NaN or infinite voxels, saying how many and where.

    Parameters
    ----------
    array : np.ndarray, shape (z, y, x)
        Intensities (integer arrays cannot hold NaN and pass at once).
    source : str
        What the values came from, for the message (never a patient identifier).
    """
    if not np.issubdtype(array.dtype, np.floating):
        return
    # Slice by slice: a boolean mask of the whole volume would cost as much as an int8 copy.
    bad_z: list[int] = []
    count = 0
    y_lo = x_lo = np.iinfo(np.int64).max
    y_hi = x_hi = -1
    for z in range(array.shape[0]):
        finite = np.isfinite(array[z])
        if finite.all():
            continue
        bad = ~finite
        count += int(bad.sum())
        bad_z.append(z)
        ys = np.flatnonzero(bad.any(axis=1))
        xs = np.flatnonzero(bad.any(axis=0))
        y_lo, y_hi = min(y_lo, int(ys[0])), max(y_hi, int(ys[-1]))
        x_lo, x_hi = min(x_lo, int(xs[0])), max(x_hi, int(xs[-1]))
    if not count:
        return
    raise NonFiniteValuesError(_non_finite_message(source, count, array.size,
                                                   (x_lo, y_lo, bad_z[0]), (x_hi, y_hi, bad_z[-1])))


def check_volume_size(shape_zyx: Sequence[int], spacing_xyz_mm: Sequence[float] | np.ndarray, *,
                      min_voxels_per_axis: int, min_extent_mm: float,
                      source: str = "the CT") -> None:
    """Refuse a volume with too few voxels or too small a field of view along any axis.

    Parameters
    ----------
    shape_zyx : (int, int, int)
        Array shape (z, y, x).
    spacing_xyz_mm : (float, float, float)
        Voxel size along x, y, z, mm.
    min_voxels_per_axis : int
        Fewest voxels accepted along each axis (0 disables).
    min_extent_mm : float
        Smallest field of view (voxels x spacing) accepted along each axis, mm (0 disables).
    """
    size_xyz = [int(v) for v in reversed(tuple(shape_zyx))]
    extent = [n * float(s) for n, s in zip(size_xyz, spacing_xyz_mm)]
    small_n = [a for a, n in zip("xyz", size_xyz) if n < min_voxels_per_axis]
    small_mm = [a for a, e in zip("xyz", extent) if e < min_extent_mm]
    if not small_n and not small_mm:
        return
    size = "x".join(str(n) for n in size_xyz)
    fov = " x ".join(f"{e:.0f}" for e in extent)
    raise VolumeTooSmallError(
        f"{source} is too small to be a CT of the spine: {size} voxels, {fov} mm field of view "
        f"(at least {min_voxels_per_axis} voxels and {min_extent_mm:g} mm along every axis are "
        "needed); load the whole series or the uncropped image")
