"""Configuration errors reach the user as one red line naming the field, exit code 1, no traceback;
`gradesync platforms` lists registrations and checks keys without printing key material."""
from __future__ import annotations

import pytest
from typer.testing import CliRunner

from cli.main import app

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, list(args))


def assert_config_error(result, *needles: str) -> None:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    err = result.stderr.strip()
    assert err.startswith("error:") and len(err.splitlines()) == 1, err
    for needle in needles:
        assert needle in err, err


def test_unknown_vendor_names_the_platform_field(write_config):
    cfg = write_config(platforms=[("uni-sakai", "sakai", ["lms.test"])])
    assert_config_error(run("--config", str(cfg), "platforms"),
                        "platforms[0] (uni-sakai).vendor", "unknown vendor 'sakai'")


def test_missing_key_file_names_the_path(write_config, rsa_key_file):
    cfg = write_config()
    rsa_key_file.unlink()
    assert_config_error(run("--config", str(cfg), "platforms"), "private_key_file", "key file not found",
                        str(rsa_key_file))


def test_malformed_toml(tmp_path):
    cfg = tmp_path / "gradesync.toml"
    cfg.write_text("[[platforms]\nname = 'x'\n")
    assert_config_error(run("--config", str(cfg), "platforms"), "malformed TOML")


def test_missing_field_is_named(write_config):
    cfg = write_config()
    cfg.write_text(cfg.read_text().replace('client_id = "client-canvas-test"\n', ""))
    assert_config_error(run("--config", str(cfg), "platforms"), "client_id: required field is missing")


def test_duplicate_platform_name(write_config):
    cfg = write_config(platforms=[("uni", "canvas", ["a.test"]), ("uni", "moodle", ["b.test"])])
    assert_config_error(run("--config", str(cfg), "platforms"), "duplicate platform name 'uni'")


def test_missing_config_file(tmp_path):
    assert_config_error(run("--config", str(tmp_path / "nope.toml"), "db", "upgrade"), "config file not found")


def test_bad_config_fails_import_before_reading_the_folder(write_config, tmp_path):
    cfg = write_config(platforms=[("uni", "blackboardx", ["a.test"])])
    assert_config_error(run("--config", str(cfg), "import", str(tmp_path / "missing")), "unknown vendor")


def test_platforms_lists_registrations_and_checks_keys(write_config, rsa_private_pem):
    cfg = write_config(platforms=[("canvas-test", "canvas", ["canvas.test"]), ("d2l-test", "d2l", ["d2l.test:8443"])])
    result = run("--config", str(cfg), "platforms")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "canvas-test" in out and "d2l-test" in out and "d2l.test" in out
    assert out.count("RSA 2048 bits") == 2
    body = b"".join(rsa_private_pem.splitlines()[1:-1]).decode()
    assert "PRIVATE KEY" not in out and body[:24] not in out.replace("\n", "")


@pytest.mark.parametrize("content, expected", [
    (b"not a key at all", "not a PEM private key"),
    ("ec", "not an RSA key"),
    ("encrypted", "encrypted key"),
])
def test_platforms_reports_a_key_that_does_not_load(write_config, rsa_key_file, content, expected):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    if content == "ec":
        content = ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    elif content == "encrypted":
        content = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"))
    rsa_key_file.write_bytes(content)
    result = run("--config", str(write_config()), "platforms")
    assert result.exit_code == 1
    assert "FAIL" in result.output and expected in result.output
    assert "1 private key file(s) did not load" in result.stderr
    assert "PRIVATE KEY" not in result.output


def test_a_schedule_in_gradesync_toml_points_to_prefect_yaml(write_config):
    cfg = write_config(extra='[audit]\nschedule_cron = "0 3 * * *"\n\n')
    assert_config_error(run("--config", str(cfg), "platforms"), "audit.schedule_cron",
                        "the nightly schedule lives in prefect.yaml only")


def test_every_problem_is_listed_at_once_one_line_each(write_config, rsa_key_file):
    cfg = write_config(platforms=[("a", "sakai", ["a.test"]), ("b", "canvas", ["b.test"])])
    cfg.write_text(cfg.read_text().replace('client_id = "client-b"\n', "")
                   .replace('token_url = "https://b.test/login/oauth2/token"', 'token_url = "https://sso.elsewhere.test/token"'))
    result = run("--config", str(cfg), "platforms")
    assert result.exit_code == 1 and "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert all(line.startswith("error:") for line in lines), lines
    text = "\n".join(lines)
    assert "platforms[0] (a).vendor: unknown vendor 'sakai'" in text
    assert "platforms[1] (b).client_id: required field is missing" in text
    assert "platforms[1] (b).token_url: host 'sso.elsewhere.test' is not in allowed_hosts (b.test)" in text
    assert len(lines) == 3


def test_relative_database_and_report_dir_resolve_against_the_config_file(tmp_path, write_config, monkeypatch):
    from gradesync.settings import load_settings

    cfg = write_config(db_url="sqlite:///data/gs.db", extra='[audit]\nreport_dir = "out/reports"\n\n')
    monkeypatch.chdir("/")
    s = load_settings(cfg)
    assert s.database.url == f"sqlite:///{tmp_path}/data/gs.db"
    assert s.audit.report_dir == tmp_path / "out" / "reports"
    monkeypatch.setenv("GRADESYNC_DATABASE_URL", "sqlite:///cwd.db")      # the environment is not the file
    assert load_settings(cfg).database.url == "sqlite:///cwd.db"


def test_platforms_flags_imported_course_urls_outside_allowed_hosts(tmp_path, write_config):
    import sqlite3

    cfg = write_config(db_url="sqlite:///gs.db")
    assert run("--config", str(cfg), "db", "upgrade").exit_code == 0
    with sqlite3.connect(tmp_path / "gs.db") as db:
        db.execute("INSERT INTO platform (name, vendor, issuer, client_id, updated_at) "
                   "VALUES ('canvas-test', 'canvas', 'https://canvas.test', 'c', '2026-01-01 00:00:00')")
        db.execute("INSERT INTO course (platform, context_id, lineitems_url, memberships_url) VALUES "
                   "('canvas-test', 'ctx-1', 'https://evil.test/li', 'https://canvas.test/m')")
    result = run("platforms", "--config", str(cfg))
    assert result.exit_code == 1
    assert "canvas-test/ctx-1 lineitems_url: host 'evil.test' is not in allowed_hosts (canvas.test)" in result.output
    assert "memberships_url" not in result.output
    assert "1 imported course URL(s) outside allowed_hosts" in result.stderr
