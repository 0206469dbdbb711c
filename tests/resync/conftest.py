"""Resync fixtures: the session-wide Prefect server of the pipeline tests (for CLI subprocess runs)."""
from tests.pipeline.conftest import prefect_env  # noqa: F401  (re-exported fixture)
