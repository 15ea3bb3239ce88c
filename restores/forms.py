"""Forms of the restore pages and the wizard."""

from __future__ import annotations

from django import forms
from django.conf import settings

from backupsvc.lib.sizes import human_size
from organizations.models import Organization
from organizations.wizard.forms import sniff_image  # noqa: F401 - the wizard's logo check, used here too


class ConfirmForm(forms.Form):
    code = forms.CharField(
        label="Code from the Owner",
        max_length=20,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}),
    )
    password = forms.CharField(
        label="Your password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        help_text="Re-enter your own password to confirm it is you.",
    )


class PolicyForm(forms.Form):
    restore_policy = forms.ChoiceField(
        label="Who may start a restore",
        choices=Organization.RestorePolicy.choices,
        widget=forms.RadioSelect,
        help_text="Every restore also needs the code the system sends to the Owner.",
    )


class UploadForm(forms.Form):
    # The password comes first in the form so it is parsed even when the file is refused mid-way.
    password = forms.CharField(
        label="The backup's password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "off"}),
        help_text="The password shown when the backup was created (or the one chosen then).",
    )
    file = forms.FileField(
        label="Backup file (.zip)",
        help_text=f"At most {human_size(settings.BACKUP_UPLOAD_MAX_SIZE)}.",
        widget=forms.ClearableFileInput(attrs={"accept": ".zip,application/zip"}),
    )
