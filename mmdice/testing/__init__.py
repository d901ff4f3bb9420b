"""Synthetic inputs for smoke training and tests: the "shapes" data sets.
Importing this package needs numpy and PIL only."""
from .shapes import (SHAPE_CLASSES, generate_shapes_classification, generate_shapes_detection,
                     generate_shapes_segmentation)

__all__ = [
    'SHAPE_CLASSES', 'generate_shapes_classification', 'generate_shapes_detection',
    'generate_shapes_segmentation'
]
