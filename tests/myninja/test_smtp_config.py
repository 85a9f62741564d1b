"""The `[smtp]` section: read from a real TOML file, and refused in one line where it would
send a password in plain text across a network."""

from __future__ import annotations

from pathlib import Path

import pytest

from myninja.config_file import load_config
from myninja.errors import ConfigError


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(body, encoding="utf-8")
    return path


def test_smtp_section_reads_with_its_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, '[smtp]\nhost = "mail.example.org"\nfrom_address = "anna@example.de"\n')
    smtp = load_config(path, environ={}).smtp
    assert (smtp.host, smtp.port, smtp.security) == ("mail.example.org", 587, "starttls")
    assert smtp.from_address == "anna@example.de" and smtp.username is None


def test_no_smtp_section_means_no_mail_server(tmp_path: Path) -> None:
    smtp = load_config(tmp_path / "absent.toml", environ={}).smtp
    assert smtp.host is None and smtp.from_address is None


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.53"])
def test_plain_text_is_allowed_to_this_machine(tmp_path: Path, host: str) -> None:
    body = f'[smtp]\nhost = "{host}"\nport = 25\nsecurity = "none"\nfrom_address = "a@b.org"\n'
    smtp = load_config(write(tmp_path, body), environ={}).smtp
    assert smtp.security == "none"


@pytest.mark.parametrize("host", ["mail.example.org", "192.168.1.20", "localhost.example.org"])
def test_plain_text_to_another_host_is_one_clear_error(tmp_path: Path, host: str) -> None:
    body = f'[smtp]\nhost = "{host}"\nsecurity = "none"\nfrom_address = "a@b.org"\n'
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, body), environ={})
    line = caught.value.one_line()
    assert "\n" not in line
    assert "smtp" in line and "security" in line and host in line
    assert caught.value.exit_code == 2


def test_from_address_must_be_one_address(tmp_path: Path) -> None:
    body = '[smtp]\nhost = "mail.example.org"\nfrom_address = "Anna <anna@example.de>"\n'
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, body), environ={})
    assert "smtp.from_address" in caught.value.one_line()


def test_smtp_from_the_environment(tmp_path: Path) -> None:
    env = {
        "MYNINJA_SMTP__HOST": "mail.example.org",
        "MYNINJA_SMTP__FROM_ADDRESS": "anna@example.de",
        "MYNINJA_SMTP__SECURITY": "tls",
        "MYNINJA_SMTP__PORT": "465",
    }
    smtp = load_config(tmp_path / "absent.toml", environ=env).smtp
    assert (smtp.security, smtp.port) == ("tls", 465)
