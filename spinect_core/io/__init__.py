"""CT and segmentation input/output. Everything returned carries LPS geometry."""

from spinect_core.io.atomic import atomic_path, write_bytes_atomic, write_text_atomic
from spinect_core.io.dicom_write import write_dicom_series
from spinect_core.io.labelmap import load_label_map, read_label_table, save_label_map, write_image
from spinect_core.io.load import list_series, load_ct
from spinect_core.io.options import LoadOptions
from spinect_core.io.series import SeriesInfo

__all__ = [
    "atomic_path", "write_bytes_atomic", "write_text_atomic",
    "load_label_map", "read_label_table", "save_label_map", "write_image",
    "LoadOptions", "SeriesInfo", "list_series", "load_ct", "write_dicom_series",
]
