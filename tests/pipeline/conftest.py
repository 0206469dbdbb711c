"""Pipeline tests run the real CLI against a sandbox world served over loopback; their Prefect server
is the session-wide `prefect_env` of tests/conftest.py."""
