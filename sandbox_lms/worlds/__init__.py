"""Generated sandbox worlds: LMS state + the tool's records + the planted ground truth.

`build_world(seed, size)` decides every planted case first and then builds the data that produces it
(docs/diagnosis-rules.md); the ground truth is that list of decisions, never a diagnosis result.
"""
from sandbox_lms.worlds.build import build_world
from sandbox_lms.worlds.model import CATEGORIES, PlantedFinding
from sandbox_lms.worlds.spec import SIZES
from sandbox_lms.worlds.world import CSV_COLUMNS, World

__all__ = ["build_world", "World", "PlantedFinding", "CATEGORIES", "CSV_COLUMNS", "SIZES"]
