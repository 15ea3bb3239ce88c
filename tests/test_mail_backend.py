"""The embedded set-up's mail backend: the whole message in a file under var/mail/, one line in
the log, never the body (a restore code is read in the file, not in a log)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from django.core.mail import EmailMultiAlternatives, get_connection


def test_each_mail_is_kept_in_a_file_and_logged_as_one_line_without_its_body(tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    connection = get_connection("backupsvc.lib.mail.FileAndConsoleEmailBackend", file_path=str(tmp_path / "mail"))
    message = EmailMultiAlternatives(
        "Restore code for Acme: requested by admin@acme.test",
        "Your code: 493-201",
        "backups@backupsvc.local",
        ["owner@acme.test"],
        connection=connection,
    )
    message.attach_alternative("<p>Your code: <strong>493-201</strong></p>", "text/html")
    with caplog.at_level(logging.INFO, logger="backupsvc.mail"):
        assert message.send() == 1
    files = list((tmp_path / "mail").iterdir())
    assert len(files) == 1 and "493-201" in files[0].read_text()
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [f"Mail to owner@acme.test: Restore code for Acme: requested by admin@acme.test ({files[0]})"]
    assert "493-201" not in caplog.text


@pytest.mark.parametrize("name", ["var/mail/20261201-1.log"])
def test_a_mail_file_inside_the_project_is_shown_relative_to_it(name: str) -> None:
    from django.conf import settings

    from backupsvc.lib.mail import _shown_path

    assert _shown_path(str(Path(settings.BASE_DIR) / name)) == name
