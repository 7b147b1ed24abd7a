"""The network's view of a CT: its voxels with the array axes along the patient's axes.

A CT file stores its voxels in whatever order the scanner or the converter chose: axial slices
head first or feet first, x running to the patient's left or right, or sagittal slices (a
spine series reformatted, as VerSe's are). The network sees only the array, and it was trained
on phantoms stored one way (index x to the left, y to the back, z to the head: the identity
direction), mirrored left-right by the augmentation but never upside down or on its side. Fed
the same CT stored otherwise it gives other labels: TotalSegmentator's real 3 mm CT stored
feet first was planned 12.8 mm from the reference's L5/S1 disc centre, against 2.6 mm as stored.

:func:`to_model_axes` permutes and mirrors the array (lossless: the same voxels, the same LPS
positions) so that its index axes run along L, P and S, as the training phantoms'; the result is
mapped back onto the CT's own array order by :meth:`Reoriented.back`. The CT bone model measures
in LPS millimetres and does not depend on the order (the same mask, voxel for voxel, for a CT
stored five ways). The anatomy breaks ties in array order (counts, floods, landmark searches), so
:func:`~spinect_core.anatomy.identify_lumbosacral` measures in these axes too and maps its parts
back.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from spinect_core.volume import Volume

__all__ = ["Reoriented", "to_model_axes"]


@dataclass(frozen=True)
class Reoriented:
    """A volume with its array axes along the patient's axes, and the way back.

    Attributes
    ----------
    volume : Volume
        The same voxels; index x runs along L, y along P, z along S (the direction's columns
        closest to +L, +P, +S). The input itself when it is already so stored.
    axes : tuple of 3 int
        Array axis (of the input's (z, y, x)) that each array axis of ``volume`` (z, y, x) is.
    flipped : tuple of 3 bool
        Whether each array axis of ``volume`` runs opposite to its input axis.
    """

    volume: Volume
    axes: tuple[int, int, int]
    flipped: tuple[bool, bool, bool]

    @property
    def unchanged(self) -> bool:
        return self.axes == (0, 1, 2) and not any(self.flipped)

    def back(self, array: np.ndarray) -> np.ndarray:
        """An array on ``volume``'s grid, ``(..., z, y, x)``, in the input's array order (a view
        where possible; leading axes, such as classes, are kept)."""
        if self.unchanged:
            return array
        lead = array.ndim - 3
        flips = tuple(lead + k for k in range(3) if self.flipped[k])
        out = np.flip(array, axis=flips) if flips else array
        # out's axis lead + k is the input's axis axes[k]: put it back at lead + axes[k].
        inverse = [0, 0, 0]
        for k, a in enumerate(self.axes):
            inverse[a] = k
        return np.transpose(out, tuple(range(lead)) + tuple(lead + inverse[a] for a in range(3)))


def to_model_axes(volume: Volume) -> Reoriented:
    """``volume`` with its array axes permuted and mirrored to run along L, P and S.

    Each LPS axis takes the index axis whose direction is closest to it (the permutation that
    maximises the summed alignment, so an oblique acquisition keeps a one-to-one choice), in the
    sense that makes the index grow along L, P or S. The voxels and their LPS positions are
    unchanged; only the order of the array and the geometry that describes it change.

    Parameters
    ----------
    volume : Volume
        Any spacing, origin and direction (array (z, y, x)).

    Returns
    -------
    Reoriented
    """
    d = np.asarray(volume.direction, float)          # columns: LPS of index x, y, z
    # index_of[r]: the input index axis (0 = x) along LPS axis r (0 = L, 1 = P, 2 = S).
    index_of = max(itertools.permutations(range(3)),
                   key=lambda p: sum(abs(d[r, p[r]]) for r in range(3)))
    sign = [1.0 if d[r, index_of[r]] >= 0 else -1.0 for r in range(3)]
    # Array axis k (z, y, x) of the result is index axis 2 - k, i.e. LPS axis 2 - k.
    axes = tuple(2 - index_of[2 - k] for k in range(3))
    flipped = tuple(sign[2 - k] < 0 for k in range(3))
    if axes == (0, 1, 2) and not any(flipped):
        return Reoriented(volume=volume, axes=(0, 1, 2), flipped=(False, False, False))
    array = np.transpose(volume.array, axes)
    flips = tuple(k for k in range(3) if flipped[k])
    if flips:
        array = np.flip(array, axis=flips)
    # The result's voxel 0 is the input's voxel at the far end of each mirrored axis.
    n_xyz = np.asarray(volume.size_xyz)
    start_xyz = np.array([n_xyz[index_of[r]] - 1 if sign[r] < 0 else 0 for r in range(3)])
    first = np.zeros(3)
    first[list(index_of)] = start_xyz
    out = Volume(array=np.ascontiguousarray(array),
                 spacing_mm=np.asarray(volume.spacing_mm)[list(index_of)],
                 origin_lps_mm=volume.index_to_lps(first),
                 direction=d[:, list(index_of)] * np.asarray(sign)[None, :],
                 metadata=volume.metadata, warnings=list(volume.warnings))
    return Reoriented(volume=out, axes=axes, flipped=flipped)  # type: ignore[arg-type]
