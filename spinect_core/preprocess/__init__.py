"""Preprocessing for the segmentation model: resampling, body crop, intensity normalisation.

The model's statistics (spacing, normalisation) come from its model card; :func:`prepare_for_model`
applies them and :func:`restore_to_input` maps results back exactly onto the input CT's grid.
"""

from spinect_core.preprocess.crop import (
    BodyCropOptions, CropBox, body_bounding_box, body_mask, crop_array, crop_to_body, crop_volume,
    uncrop,
)
from spinect_core.preprocess.normalise import CTNormalisation, NormalisationError
from spinect_core.preprocess.pipeline import (
    Prepared, prepare_for_model, prepare_labels, restore_probabilities_in_slabs, restore_to_input,
)
from spinect_core.preprocess.resample import (
    Grid, as_grid, new_size_for_spacing, resample_array_to_grid, resample_probabilities_to_grid,
    resample_to_grid, resample_to_spacing,
)

__all__ = [
    "BodyCropOptions", "CropBox", "body_bounding_box", "body_mask", "crop_array", "crop_to_body",
    "crop_volume", "uncrop",
    "CTNormalisation", "NormalisationError",
    "Prepared", "prepare_for_model", "prepare_labels", "restore_probabilities_in_slabs",
    "restore_to_input",
    "Grid", "as_grid", "new_size_for_spacing", "resample_array_to_grid",
    "resample_probabilities_to_grid", "resample_to_grid", "resample_to_spacing",
]
