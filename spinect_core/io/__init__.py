"""CT and segmentation input/output. Everything returned carries LPS geometry."""

from spinect_core.io.atomic import atomic_path, write_bytes_atomic, write_text_atomic
from spinect_core.io.labelmap import load_label_map, read_label_table, save_label_map, write_image

__all__ = [
    "atomic_path", "write_bytes_atomic", "write_text_atomic",
    "load_label_map", "read_label_table", "save_label_map", "write_image",
]
