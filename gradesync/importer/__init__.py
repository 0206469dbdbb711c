"""`gradesync import DIR`: the tool's CSV export → the tool-record tables, with every bad row rejected
(file, line, reason) and kept in `import_rejection`."""
from gradesync.importer.load import (
    CHUNK_ROWS, FileReport, ImportFatal, ImportReport, Rejection, check_folder, import_folder, sync_platforms,
)
from gradesync.importer.specs import SPECS, FileSpec

__all__ = ["CHUNK_ROWS", "SPECS", "FileReport", "FileSpec", "ImportFatal", "ImportReport", "Rejection",
           "check_folder", "import_folder", "sync_platforms"]
