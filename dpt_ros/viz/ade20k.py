"""ADE20K (SceneParsing, 150 classes) class names and colour palette.

Id convention used by dpt_ros:

* Published label ids are the official SceneParsing ``objectInfo150`` ids,
  **1..150** (1 = "wall", 150 = "flag"), and **0 = unlabelled** (pixels the
  segmentation head did not assign, or that were masked out). A network that
  predicts 150 logits (channel ``c`` = class ``c + 1``, mmsegmentation's
  ``reduce_zero_label`` convention) must add 1 to its argmax before
  publishing.
* ``CLASS_NAMES[id - 1]`` is the name of id ``id``; :func:`label_name`
  handles the offset and id 0.
* ``PALETTE[id]`` is the display colour of id ``id``; row 0 is black for
  unlabelled.

Names are the first synonym of each ``objectInfo150`` entry (as in
mmsegmentation's ``ADE20KDataset``). The colours are the palette that
mmsegmentation and most ADE20K tools use. Note that this widely used palette
has one duplicate: id 7 "road" and id 49 "skyscraper" are both
(140, 140, 140); it is kept unchanged so colours match other tools.
"""

from __future__ import annotations

import operator
from typing import Final

import numpy as np

__all__ = ["NUM_CLASSES", "UNLABELLED", "CLASS_NAMES", "PALETTE", "label_name"]

#: Number of ADE20K classes (ids 1..150).
NUM_CLASSES: Final[int] = 150

#: Id of unlabelled pixels.
UNLABELLED: Final[int] = 0

#: Names of ids 1..150 in official order: ``CLASS_NAMES[id - 1]``.
CLASS_NAMES: Final[tuple[str, ...]] = (
    "wall", "building", "sky", "floor", "tree",
    "ceiling", "road", "bed", "windowpane", "grass",
    "cabinet", "sidewalk", "person", "earth", "door",
    "table", "mountain", "plant", "curtain", "chair",
    "car", "water", "painting", "sofa", "shelf",
    "house", "sea", "mirror", "rug", "field",
    "armchair", "seat", "fence", "desk", "rock",
    "wardrobe", "lamp", "bathtub", "railing", "cushion",
    "base", "box", "column", "signboard", "chest of drawers",
    "counter", "sand", "sink", "skyscraper", "fireplace",
    "refrigerator", "grandstand", "path", "stairs", "runway",
    "case", "pool table", "pillow", "screen door", "stairway",
    "river", "bridge", "bookcase", "blind", "coffee table",
    "toilet", "flower", "book", "hill", "bench",
    "countertop", "stove", "palm", "kitchen island", "computer",
    "swivel chair", "boat", "bar", "arcade machine", "hovel",
    "bus", "towel", "light", "truck", "tower",
    "chandelier", "awning", "streetlight", "booth", "television receiver",
    "airplane", "dirt track", "apparel", "pole", "land",
    "bannister", "escalator", "ottoman", "bottle", "buffet",
    "poster", "stage", "van", "ship", "fountain",
    "conveyer belt", "canopy", "washer", "plaything", "swimming pool",
    "stool", "barrel", "basket", "waterfall", "tent",
    "bag", "minibike", "cradle", "oven", "ball",
    "food", "step", "tank", "trade name", "microwave",
    "pot", "animal", "bicycle", "lake", "dishwasher",
    "screen", "blanket", "sculpture", "hood", "sconce",
    "vase", "traffic light", "tray", "ashcan", "fan",
    "pier", "crt screen", "plate", "monitor", "bulletin board",
    "shower", "radiator", "glass", "clock", "flag",
)  # fmt: skip

# Colours of ids 1..150, five per line.
_CLASS_COLORS: Final[tuple[tuple[int, int, int], ...]] = (
    (120, 120, 120),
    (180, 120, 120),
    (6, 230, 230),
    (80, 50, 50),
    (4, 200, 3),
    (120, 120, 80),
    (140, 140, 140),
    (204, 5, 255),
    (230, 230, 230),
    (4, 250, 7),
    (224, 5, 255),
    (235, 255, 7),
    (150, 5, 61),
    (120, 120, 70),
    (8, 255, 51),
    (255, 6, 82),
    (143, 255, 140),
    (204, 255, 4),
    (255, 51, 7),
    (204, 70, 3),
    (0, 102, 200),
    (61, 230, 250),
    (255, 6, 51),
    (11, 102, 255),
    (255, 7, 71),
    (255, 9, 224),
    (9, 7, 230),
    (220, 220, 220),
    (255, 9, 92),
    (112, 9, 255),
    (8, 255, 214),
    (7, 255, 224),
    (255, 184, 6),
    (10, 255, 71),
    (255, 41, 10),
    (7, 255, 255),
    (224, 255, 8),
    (102, 8, 255),
    (255, 61, 6),
    (255, 194, 7),
    (255, 122, 8),
    (0, 255, 20),
    (255, 8, 41),
    (255, 5, 153),
    (6, 51, 255),
    (235, 12, 255),
    (160, 150, 20),
    (0, 163, 255),
    (140, 140, 140),
    (250, 10, 15),
    (20, 255, 0),
    (31, 255, 0),
    (255, 31, 0),
    (255, 224, 0),
    (153, 255, 0),
    (0, 0, 255),
    (255, 71, 0),
    (0, 235, 255),
    (0, 173, 255),
    (31, 0, 255),
    (11, 200, 200),
    (255, 82, 0),
    (0, 255, 245),
    (0, 61, 255),
    (0, 255, 112),
    (0, 255, 133),
    (255, 0, 0),
    (255, 163, 0),
    (255, 102, 0),
    (194, 255, 0),
    (0, 143, 255),
    (51, 255, 0),
    (0, 82, 255),
    (0, 255, 41),
    (0, 255, 173),
    (10, 0, 255),
    (173, 255, 0),
    (0, 255, 153),
    (255, 92, 0),
    (255, 0, 255),
    (255, 0, 245),
    (255, 0, 102),
    (255, 173, 0),
    (255, 0, 20),
    (255, 184, 184),
    (0, 31, 255),
    (0, 255, 61),
    (0, 71, 255),
    (255, 0, 204),
    (0, 255, 194),
    (0, 255, 82),
    (0, 10, 255),
    (0, 112, 255),
    (51, 0, 255),
    (0, 194, 255),
    (0, 122, 255),
    (0, 255, 163),
    (255, 153, 0),
    (0, 255, 10),
    (255, 112, 0),
    (143, 255, 0),
    (82, 0, 255),
    (163, 255, 0),
    (255, 235, 0),
    (8, 184, 170),
    (133, 0, 255),
    (0, 255, 92),
    (184, 0, 255),
    (255, 0, 31),
    (0, 184, 255),
    (0, 214, 255),
    (255, 0, 112),
    (92, 255, 0),
    (0, 224, 255),
    (112, 224, 255),
    (70, 184, 160),
    (163, 0, 255),
    (153, 0, 255),
    (71, 255, 0),
    (255, 0, 163),
    (255, 204, 0),
    (255, 0, 143),
    (0, 255, 235),
    (133, 255, 0),
    (255, 0, 235),
    (245, 0, 255),
    (255, 0, 122),
    (255, 245, 0),
    (10, 190, 212),
    (214, 255, 0),
    (0, 204, 255),
    (20, 0, 255),
    (255, 255, 0),
    (0, 153, 255),
    (0, 41, 255),
    (0, 255, 204),
    (41, 0, 255),
    (41, 255, 0),
    (173, 0, 255),
    (0, 245, 255),
    (71, 0, 255),
    (122, 0, 255),
    (0, 255, 184),
    (0, 92, 255),
    (184, 255, 0),
    (0, 133, 255),
    (255, 214, 0),
    (25, 194, 194),
    (102, 255, 0),
    (92, 0, 255),
)


def _build_palette() -> np.ndarray:
    palette = np.zeros((NUM_CLASSES + 1, 3), dtype=np.uint8)
    palette[1:] = np.asarray(_CLASS_COLORS, dtype=np.uint8)
    palette.flags.writeable = False
    return palette


#: (151, 3) uint8 RGB; row 0 = (0, 0, 0) unlabelled, row id = colour of id.
#: Read-only; copy it to modify.
PALETTE: Final[np.ndarray] = _build_palette()


def label_name(label_id: int) -> str:
    """Name of a published label id.

    Args:
        label_id: 0 (unlabelled) or an ADE20K id 1..150 (any integer type,
            including numpy integers).

    Returns:
        ``"unlabelled"`` for 0, else the class name (e.g. 1 -> ``"wall"``).

    Raises:
        ValueError: ``label_id`` outside 0..150.
        TypeError: ``label_id`` is not an integer.
    """
    idx = operator.index(label_id)
    if idx == UNLABELLED:
        return "unlabelled"
    if not 1 <= idx <= NUM_CLASSES:
        raise ValueError(f"ADE20K label id must be 0 (unlabelled) or 1..{NUM_CLASSES}, got {idx}")
    return CLASS_NAMES[idx - 1]
