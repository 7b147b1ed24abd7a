"""Label tables: the mapping between integer ids in a label map and class names.

Code refers to classes by name (``table.id_of("nerve")``), never by magic number. A table
travels with every label map (sidecar JSON) and with every set of weights (model card).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping


@dataclass(frozen=True)
class LabelTable:
    """Ordered mapping ``id -> name``; id 0 is always background.

    Parameters
    ----------
    names : mapping of int to str
        Class ids (0, 1, ...) to lower-case names.
    """

    names: Mapping[int, str]

    def __post_init__(self) -> None:
        ids = sorted(int(i) for i in self.names)
        if not ids or ids[0] != 0:
            raise ValueError("a label table must contain id 0 (background)")
        values = [str(v) for v in self.names.values()]
        if len(set(values)) != len(values):
            raise ValueError(f"duplicate class names in label table: {values}")
        object.__setattr__(self, "names", {int(i): str(self.names[i]) for i in sorted(self.names)})

    @property
    def ids(self) -> list[int]:
        return list(self.names)

    @property
    def num_classes(self) -> int:
        """Number of classes, assuming ids are 0..N-1 (checked)."""
        if self.ids != list(range(len(self.ids))):
            raise ValueError(f"label ids are not contiguous: {self.ids}")
        return len(self.ids)

    def id_of(self, name: str) -> int:
        for i, n in self.names.items():
            if n == name:
                return i
        raise KeyError(f"no class named {name!r} in label table {list(self.names.values())}")

    def name_of(self, label_id: int) -> str:
        return self.names[int(label_id)]

    def has(self, name: str) -> bool:
        return name in self.names.values()

    def foreground(self) -> dict[int, str]:
        return {i: n for i, n in self.names.items() if i != 0}

    def to_json(self) -> dict[str, Any]:
        """``{"labels": [{"id": 0, "name": "background"}, ...]}``."""
        return {"labels": [{"id": i, "name": n} for i, n in self.names.items()]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | Iterable[Any]) -> "LabelTable":
        """Accept ``{"labels": [{"id", "name"}]}``, ``{"0": "background", ...}`` or a list."""
        if isinstance(data, Mapping) and "labels" in data:
            data = data["labels"]
        if isinstance(data, Mapping):
            return cls({int(k): str(v) for k, v in data.items()})
        entries: Iterable[Any] = data  # a list of {"id", "name"} mappings
        return cls({int(e["id"]): str(e["name"]) for e in entries})


#: The study's protocol: background, bone, nerve.
STUDY_LABELS = LabelTable({0: "background", 1: "bone", 2: "nerve"})
#: The extended default table used by the phantom and the demo weights.
DEFAULT_LABELS = LabelTable({0: "background", 1: "bone", 2: "nerve", 3: "disc", 4: "dura"})
