"""Forms of the Account Backups pages: the request dialog and the schedule form."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django import forms
from django.core import signing
from django.utils import timezone

from accounts.models import User
from backups import datasets as ds
from backups import selectors
from backups.archive import generate_password
from backups.models import Backup, BackupSchedule, ChangeAlertSettings
from backups.services import MIN_USER_PASSWORD
from organizations.models import Facility, OrganisationalUnit, Organization

GENERATED_PASSWORD_SALT = "backups.request.generated-password"  # noqa: S105 (a signing salt)
GENERATED_PASSWORD_MAX_AGE = 12 * 3600  # a dialog left open over a working day still works


def sign_generated_password(password: str, user: User) -> str:
    """The token the dialog posts back: proves the password is the one the server generated
    for this user (it is shown in the dialog anyway, so signing, not encrypting, is enough)."""
    return signing.dumps({"p": password, "u": user.pk}, salt=GENERATED_PASSWORD_SALT, compress=False)


def unsign_generated_password(token: str, user: User) -> str | None:
    try:
        data = signing.loads(token, salt=GENERATED_PASSWORD_SALT, max_age=GENERATED_PASSWORD_MAX_AGE)
    except signing.BadSignature:
        return None
    if not isinstance(data, dict) or data.get("u") != user.pk or not isinstance(data.get("p"), str):
        return None
    return data["p"]


class _OUChoiceField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        facility = f" · {obj.facility.name}" if obj.facility_id else ""
        return f"{obj.name} ({obj.code}){facility}"


class _ScopeFieldsMixin(forms.Form):
    """What a backup covers, for the request dialog and the schedule form alike: the facilities
    and OUs (``backups/_checklist.html``), the data sets (``backups/_dataset_picker.html``) and
    the rule that backing up documents needs a document status. Each form words the facility
    and OU choices its own way (``scope_texts``)."""

    scope_texts: dict[str, tuple[str, str]]  # field -> (label, help text)

    facilities = forms.ModelMultipleChoiceField(
        queryset=Facility.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple(attrs={"class": "form-check-input"}),
    )
    ous = _OUChoiceField(
        queryset=OrganisationalUnit.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple(attrs={"class": "form-check-input"}),
    )
    datasets = forms.MultipleChoiceField(
        choices=(),
        widget=forms.CheckboxSelectMultiple,
        label="Data to include",
        error_messages={"required": "Pick at least one data set to back up."},
    )

    def _init_scope(self, *, user: User, organization: Organization) -> None:
        """The choices this user may make in this organization (facilities only in an enterprise)."""
        self.user = user
        self.organization = organization
        for name, (label, help_text) in self.scope_texts.items():
            self.fields[name].label = label
            self.fields[name].help_text = help_text
        self.fields["ous"].queryset = selectors.requestable_ous(user, organization)
        self.enterprise = organization.is_enterprise
        if self.enterprise:
            self.fields["facilities"].queryset = selectors.requestable_facilities(user, organization)
        else:
            del self.fields["facilities"]
        self.fields["datasets"].choices = selectors.dataset_choices()

    def _check_documents_included(self, data: dict[str, Any], datasets: Iterable[str]) -> None:
        """Backing up controlled documents needs at least one of their statuses."""
        if "documents" in datasets and not (data.get("include_active") or data.get("include_inactive")):
            self.add_error(
                "include_active", "Include active or inactive controlled documents, or leave Controlled documents out."
            )

    def dataset_items(self) -> list[dict[str, Any]]:
        """The picker's rows: key, label, description, what it needs, and whether it is ticked."""
        if self.is_bound:
            checked = set(self.data.getlist("datasets")) if hasattr(self.data, "getlist") else set()
        else:
            checked = set(self.initial.get("datasets") or [])
        return [
            {
                "key": key,
                "label": dataset.label,
                "description": dataset.description,
                "needs": ", ".join(ds.REGISTRY[d].label for d in dataset.depends_on),
                "checked": key in checked,
            }
            for key, dataset in ds.REGISTRY.items()
        ]


class BackupRequestForm(_ScopeFieldsMixin, forms.Form):
    """The *Request an Account Backup* dialog."""

    PASSWORD_GENERATED = "generated"  # noqa: S105 (a choice value, not a password)
    PASSWORD_OWN = "own"  # noqa: S105

    scope_texts = {
        "facilities": (
            "Limit export to the following facilities",
            "A facility none of whose OUs you pick below is backed up whole.",
        ),
        "ous": ("Limit export to the following OUs", "Leave blank to back up every OU you may back up."),
    }

    label = forms.CharField(
        max_length=120,
        required=False,
        label="Label",
        help_text="Optional, e.g. “Pre-Year-End Close”. It names the downloaded file.",
    )
    include_active = forms.BooleanField(initial=True, required=False, label="Include active controlled documents")
    include_inactive = forms.BooleanField(required=False, label="Include inactive controlled documents")
    exclude_superseded = forms.BooleanField(required=False, label="Exclude superseded controlled documents")
    password_choice = forms.ChoiceField(
        choices=[
            (PASSWORD_GENERATED, "Use the system-generated password"),
            (PASSWORD_OWN, "Use my own password"),
        ],
        initial=PASSWORD_GENERATED,
        widget=forms.RadioSelect(attrs={"class": "form-check-input"}),
        label="Password",
    )
    generated_token = forms.CharField(widget=forms.HiddenInput, required=False)
    own_password = forms.CharField(
        required=False,
        label="Your password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=f"At least {MIN_USER_PASSWORD} characters.",
    )
    own_password_repeat = forms.CharField(
        required=False,
        label="Repeat your password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def __init__(self, *args: Any, user: User, organization: Organization, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._init_scope(user=user, organization=organization)
        if not self.is_bound:
            self.initial.setdefault("datasets", [k for k, _ in selectors.dataset_choices()])
            password = generate_password()
            self.initial["generated_token"] = sign_generated_password(password, user)
            self.generated_password = password
        else:
            self.generated_password = unsign_generated_password(self.data.get("generated_token", ""), user) or ""

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        choice = data.get("password_choice")
        if choice == self.PASSWORD_GENERATED:
            if not self.generated_password:
                # Regenerate so the re-rendered dialog shows a usable password again.
                password = generate_password()
                self.generated_password = password
                self.data = self.data.copy()
                self.data["generated_token"] = sign_generated_password(password, self.user)
                raise forms.ValidationError(
                    "The generated password could not be confirmed (the dialog was open too long). "
                    "A new one is shown: copy it, then submit again."
                )
            data["password"] = self.generated_password
            data["password_source"] = Backup.PasswordSource.GENERATED
        elif choice == self.PASSWORD_OWN:
            own = data.get("own_password") or ""
            if len(own) < MIN_USER_PASSWORD:
                self.add_error("own_password", f"Your own password must be at least {MIN_USER_PASSWORD} characters.")
            elif own != data.get("own_password_repeat"):
                self.add_error("own_password_repeat", "The two passwords differ.")
            data["password"] = own
            data["password_source"] = Backup.PasswordSource.USER
        self._check_documents_included(data, data.get("datasets") or [])
        return data


class _TimeInput(forms.TimeInput):
    input_type = "time"


class ScheduleForm(_ScopeFieldsMixin, forms.ModelForm):
    """Regular backups of an organization, with the request dialog's scope and data-set picker."""

    scope_texts = {
        "facilities": (
            "Limit to the following facilities",
            "A facility none of whose OUs you pick is backed up whole.",
        ),
        "ous": ("Limit to the following OUs", "Leave blank to back up every OU, including OUs added later."),
    }

    class Meta:
        model = BackupSchedule
        fields = (
            "name",
            "frequency",
            "time_of_day",
            "weekday",
            "include_active",
            "include_inactive",
            "exclude_superseded",
            "keep_last",
            "enabled",
        )
        labels = {
            "time_of_day": "Time",
            "weekday": "Weekday (weekly only)",
            "keep_last": "Rolling history: keep the last",
            "include_active": "Include active controlled documents",
            "include_inactive": "Include inactive controlled documents",
            "exclude_superseded": "Exclude superseded controlled documents",
        }
        help_texts = {
            "keep_last": "Older scheduled backups of this schedule expire (their history stays).",
            "name": "Names its backups with the date of each run, e.g. “Nightly · 1 Dec 2026”.",
        }
        widgets = {"time_of_day": _TimeInput(format="%H:%M")}

    def __init__(self, *args: Any, user: User, organization: Organization, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._init_scope(user=user, organization=organization)
        self.fields["time_of_day"].help_text = f"In the time zone {timezone.get_current_timezone_name()}."
        every = [k for k, _ in selectors.dataset_choices()]
        if self.instance.pk:
            self.initial.setdefault("ous", list(self.instance.ous.all()))
            if self.enterprise:
                self.initial.setdefault("facilities", list(self.instance.facilities.all()))
        self.initial["datasets"] = self.instance.datasets or every
        self.fields["keep_last"].min_value = 1
        self.fields["keep_last"].widget.attrs["min"] = 1

    def clean_keep_last(self) -> int:
        value = self.cleaned_data["keep_last"]
        if value is None or value < 1:
            raise forms.ValidationError("Keep at least one backup.")
        return value

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        chosen = data.get("datasets") or []
        # Every data set ticked: store "every" (also the ones added to the product later).
        self.instance.datasets = [] if set(chosen) >= set(ds.REGISTRY) else list(chosen)
        self._check_documents_included(data, self.instance.datasets or ds.REGISTRY)  # none: every data set
        return data


class ChangeAlertForm(forms.ModelForm):
    """The mass-change thresholds of an organization."""

    class Meta:
        model = ChangeAlertSettings
        fields = ("enabled", "percent", "min_records")
        labels = {
            "enabled": "Send change alerts",
            "percent": "Share of a kind of record (%)",
            "min_records": "Number of records",
        }
        widgets = {
            "enabled": forms.CheckboxInput(attrs={"class": "form-check-input"}),
            "percent": forms.NumberInput(attrs={"class": "form-control", "min": 1, "max": 100}),
            "min_records": forms.NumberInput(attrs={"class": "form-control", "min": 1}),
        }

    def clean_percent(self) -> int:
        value = self.cleaned_data["percent"]
        if not 1 <= value <= 100:
            raise forms.ValidationError("Choose a share between 1 and 100 %.")
        return int(value)

    def clean_min_records(self) -> int:
        value = self.cleaned_data["min_records"]
        if value < 1:
            raise forms.ValidationError("Choose at least 1 record.")
        return int(value)
