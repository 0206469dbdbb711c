"""Writing a world to a folder: the tool's CSVs, the tool's private keys and a gradesync.toml."""
from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from urllib.parse import urlsplit

from sandbox_lms import urls
from sandbox_lms.worlds.keys import PUBLIC_SUFFIX
from sandbox_lms.worlds.world import CSV_COLUMNS, World

# Sandbox profile → gradesync vendor (lti_client.registration.Vendor): the strict spec profile is "generic".
VENDOR_OF_PROFILE = {"canvas": "canvas", "moodle": "moodle", "d2l": "d2l", "blackboard": "blackboard",
                     "spec": "generic"}


def _q(s: str) -> str:
    """A TOML basic string (JSON string escaping is valid TOML for these values)."""
    return json.dumps(s, ensure_ascii=False)


def _write_key(path: Path, pem: bytes) -> None:
    # Created 0600 from the start: the key is never world-readable, not even for a moment.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    os.chmod(path, 0o600)


def toml_text(world: World, base_url: str) -> str:
    """The gradesync.toml for this world served at `base_url` (key paths relative to the file)."""
    host = (urlsplit(base_url).hostname or "127.0.0.1").lower()
    lines = [
        f"# Written by `gradesync sandbox export` for world seed {world.seed} ({world.size}"
        f"{', clean' if world.clean else ''}), sandbox at {base_url}.",
        "# Tool records: the CSV files beside this file. Keys: keys/<platform>.pem, generated at export time",
        "# (their public halves in keys/<platform>.pub.pem). To serve this world from another process:",
        f"#   gradesync sandbox serve --world {world.seed} --size {world.size}"
        f"{' --clean' if world.clean else ''} --port {urlsplit(base_url).port or 80} --keys <this folder>",
        "",
    ]
    for reg in world.state.registrations.values():
        lines += [
            "[[platforms]]",
            f"name = {_q(reg.name)}",
            f"vendor = {_q(VENDOR_OF_PROFILE[reg.profile])}",
            f"issuer = {_q(urls.issuer(base_url, reg))}",
            f"client_id = {_q(reg.client_id)}",
            f"token_url = {_q(urls.token_url(base_url, reg))}",
        ]
        audience = urls.token_audience(base_url, reg)
        if audience:
            lines.append(f"audience = {_q(audience)}")        # D2L: fixed audience ≠ token URL (§1.3)
        lines += [
            f"private_key_file = {_q('keys/' + reg.name + '.pem')}",
            f"key_id = {_q(reg.key_id)}",
            f"allowed_hosts = [{_q(host)}]",
            "",
        ]
    return "\n".join(lines)


def export_world(world: World, directory: Path, base_url: str) -> Path:
    """Write everything into `directory` (created if needed) and return the gradesync.toml path."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, rows in world.tool_records(base_url).items():
        with open(directory / f"{name}.csv", "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=CSV_COLUMNS[name])
            writer.writeheader()
            writer.writerows(rows)
    keys = directory / "keys"
    keys.mkdir(mode=0o700, exist_ok=True)
    # Private keys never belong in git, even in a sandbox export inside a repository.
    (keys / ".gitignore").write_text("*\n", encoding="utf-8")
    for reg_name, pem in world.private_keys.items():
        _write_key(keys / f"{reg_name}.pem", pem)
        (keys / f"{reg_name}{PUBLIC_SUFFIX}").write_text(world.state.registrations[reg_name].public_key_pem,
                                                         encoding="ascii")
    toml = directory / "gradesync.toml"
    toml.write_text(toml_text(world, base_url), encoding="utf-8")
    truth = {"summary": world.summary(),
             "ground_truth": [{"identity": f.identity, "category": f.category, "platform": f.platform,
                               "context_id": f.context_id, "resource_link_id": f.resource_link_id,
                               "lms_user_id": f.lms_user_id, "account_id": f.account_id, "note": f.note}
                              for f in world.ground_truth]}
    (directory / "sandbox-world.json").write_text(json.dumps(truth, indent=2), encoding="utf-8")
    return toml
