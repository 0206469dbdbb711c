"""Configuration errors reach the user as one red line naming the field, exit code 1, no traceback;
`gradesync platforms` lists registrations and checks keys without printing key material."""
from __future__ import annotations

import pytest
from typer.testing import CliRunner

from gradesync.cli import app

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
