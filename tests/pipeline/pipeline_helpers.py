"""Helpers for the pipeline tests: run the real CLI, serve + import a sandbox world."""
from __future__ import annotations

import subprocess
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def run_cli(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run the real `gradesync` console script."""
    return subprocess.run([str(BIN / "gradesync"), *args], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


@dataclass
class ServedWorld:
    world: object
    sandbox: object
    folder: Path
    config: Path
    database_url: str

    @property
    def planted(self) -> set[str]:
        return {p.identity for p in self.world.ground_truth}


def serve_world(tmp_path: Path, seed: int, size: str, database_url: str, **kw):
    """Context manager: build + serve a world, export it, point its config at `database_url`, import it."""
    import models as m
    from gradesync.importer import import_folder
    from gradesync.settings import load_settings
    from sandbox_lms.server import start_sandbox
    from sandbox_lms.worlds import build_world

    @contextmanager
    def _cm():
        world = build_world(seed, size, **kw)
        with start_sandbox(world.state) as sandbox:
            folder = tmp_path / f"world-{seed}"
            config = world.export(folder, sandbox.base_url)
            with config.open("a", encoding="utf-8") as fh:
                fh.write(f'\n[database]\nurl = "{database_url}"\n\n[audit]\nreport_dir = "{tmp_path / "reports"}"\n')
            settings = load_settings(config)
            m.upgrade_database(database_url)
            with m.session_scope(m.make_engine(database_url)) as s:
                report = import_folder(s, folder, settings)
            assert not report.rejections, report.rejections[:3]
            yield ServedWorld(world, sandbox, folder, config, database_url)
    return _cm()
