"""Forms of the restore pages and the wizard."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.template.defaultfilters import filesizeformat

from accounts.models import User
from organizations.models import Organization

LOGO_MAX_SIZE = 2 * 1024 * 1024


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
        help_text=f"At most {filesizeformat(settings.BACKUP_UPLOAD_MAX_SIZE)}.",
        widget=forms.ClearableFileInput(attrs={"accept": ".zip,application/zip"}),
    )


def _languages(value: str) -> list[str]:
    return [part.strip() for part in value.replace(";", ",").split(",") if part.strip()]


class ProfileForm(forms.Form):
    """The creation wizard's organization step, pre-filled from the backup."""

    name = forms.CharField(max_length=200)
    slug = forms.SlugField(max_length=60, label="Address (slug)", help_text="Used in the organization's web address.")
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))
    license_identifier = forms.CharField(required=False, max_length=100, label="License identifier")
    jurisdiction = forms.CharField(required=False, max_length=100)
    default_language = forms.CharField(required=False, max_length=10, label="Default language")
    available_languages = forms.CharField(
        required=False, max_length=200, label="Available languages", help_text="Language codes, separated by commas."
    )
    logo = forms.FileField(
        required=False,
        label="New logo",
        help_text="Leave empty to use the logo from the backup.",
        widget=forms.ClearableFileInput(attrs={"accept": "image/png,image/jpeg,image/gif,image/webp"}),
    )
    owner_email = forms.EmailField(
        label="Owner",
        help_text="An existing user who becomes the new organization's Owner (you, unless you choose someone else).",
    )

    def clean_slug(self) -> str:
        slug: str = self.cleaned_data["slug"]
        if Organization.objects.filter(slug=slug).exists():
            raise forms.ValidationError("Another organization already uses this address; choose another.")
        return slug

    def clean_owner_email(self) -> str:
        email: str = self.cleaned_data["owner_email"]
        if not User.objects.filter(email__iexact=email, is_active=True).exists():
            raise forms.ValidationError("There is no active user with this email address.")
        return email.lower()

    def clean_logo(self) -> Any:
        logo = self.cleaned_data.get("logo")
        if logo and logo.size > LOGO_MAX_SIZE:
            raise forms.ValidationError(f"The logo may be at most {filesizeformat(LOGO_MAX_SIZE)}.")
        if logo:
            head = logo.read(16)
            logo.seek(0)
            if sniff_image(head) is None:
                raise forms.ValidationError("The logo must be a PNG, JPEG, GIF or WebP image.")
        return logo

    def language_settings(self, original: dict[str, Any] | None) -> dict[str, Any]:
        """The backup's language settings with the two edited keys applied (others kept)."""
        result = dict(original or {})
        default = self.cleaned_data.get("default_language", "")
        if default or "default" in result:
            result["default"] = default
        available = _languages(self.cleaned_data.get("available_languages", ""))
        if available or "available" in result:
            result["available"] = available
        return result

    @staticmethod
    def initial_from(organization: dict[str, Any], owner_email: str, slug: str) -> dict[str, Any]:
        languages = organization.get("language_settings") or {}
        available = languages.get("available") if isinstance(languages, dict) else None
        return {
            "name": organization.get("name", ""),
            "slug": slug,
            "description": organization.get("description") or "",
            "license_identifier": organization.get("license_identifier") or "",
            "jurisdiction": organization.get("jurisdiction") or "",
            "default_language": languages.get("default", "") if isinstance(languages, dict) else "",
            "available_languages": ", ".join(available) if isinstance(available, list) else "",
            "owner_email": owner_email,
        }


def sniff_image(head: bytes) -> str | None:
    """The content type of a raster image from its first bytes (never trust the file name)."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None
