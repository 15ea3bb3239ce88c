"""Forms of the Account Backups pages: the request dialog and the schedule form."""

from __future__ import annotations

from typing import Any

from crispy_forms.helper import FormHelper
from crispy_forms.layout import Column, Div, Field, Layout, Row, Submit
from django import forms
from django.core import signing

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


class BackupRequestForm(forms.Form):
    """The *Request an Account Backup* dialog."""

    PASSWORD_GENERATED = "generated"  # noqa: S105 (a choice value, not a password)
    PASSWORD_OWN = "own"  # noqa: S105

    label = forms.CharField(
        max_length=120,
        required=False,
        label="Label",
        help_text="Optional, e.g. “Pre-Year-End Close”. It names the downloaded file.",
    )
    facilities = forms.ModelMultipleChoiceField(
        queryset=Facility.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple(attrs={"class": "form-check-input"}),
        label="Limit export to the following facilities",
        help_text="A facility none of whose OUs you pick below is backed up whole.",
    )
    ous = _OUChoiceField(
        queryset=OrganisationalUnit.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple(attrs={"class": "form-check-input"}),
        label="Limit export to the following OUs",
        help_text="Leave blank to back up every OU you may back up.",
    )
    include_active = forms.BooleanField(initial=True, required=False, label="Include active controlled documents")
    include_inactive = forms.BooleanField(required=False, label="Include inactive controlled documents")
    exclude_superseded = forms.BooleanField(required=False, label="Exclude superseded controlled documents")
    datasets = forms.MultipleChoiceField(
        choices=(),
        widget=forms.CheckboxSelectMultiple,
        label="Data to include",
        error_messages={"required": "Pick at least one data set to back up."},
    )
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
        self.user = user
        self.organization = organization
        self.fields["ous"].queryset = selectors.requestable_ous(user, organization)
        self.enterprise = organization.is_enterprise
        if self.enterprise:
            self.fields["facilities"].queryset = selectors.requestable_facilities(user, organization)
        else:
            del self.fields["facilities"]
        self.fields["datasets"].choices = selectors.dataset_choices()
        if not self.is_bound:
            self.initial.setdefault("datasets", [k for k, _ in selectors.dataset_choices()])
            password = generate_password()
            self.initial["generated_token"] = sign_generated_password(password, user)
            self.generated_password = password
        else:
            self.generated_password = unsign_generated_password(self.data.get("generated_token", ""), user) or ""

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
        if not (data.get("include_active") or data.get("include_inactive")) and "documents" in (
            data.get("datasets") or []
        ):
            self.add_error(
                "include_active", "Include active or inactive controlled documents, or leave Controlled documents out."
            )
        return data


class _TimeInput(forms.TimeInput):
    input_type = "time"


class ScheduleForm(forms.ModelForm):
    """A regular backup of the whole organization."""

    datasets = forms.MultipleChoiceField(
        choices=(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Data sets",
        help_text="None ticked: every data set. Dependencies are added automatically.",
    )

    class Meta:
        model = BackupSchedule
        fields = (
            "name",
            "frequency",
            "time_of_day",
            "weekday",
            "datasets",
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
        help_texts = {"keep_last": "Older scheduled backups of this schedule expire (their history stays)."}
        widgets = {"time_of_day": _TimeInput(format="%H:%M")}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["datasets"].choices = selectors.dataset_choices()
        self.fields["keep_last"].min_value = 1
        self.fields["keep_last"].widget.attrs["min"] = 1
        self.helper = FormHelper()
        self.helper.form_tag = False
        self.helper.layout = Layout(
            "name",
            Row(
                Column("frequency", css_class="col-md-4"),
                Column("time_of_day", css_class="col-md-4"),
                Column(Div("weekday", data_show_when_weekly="1"), css_class="col-md-4"),
            ),
            Field("datasets"),
            "include_active",
            "include_inactive",
            "exclude_superseded",
            Row(Column("keep_last", css_class="col-md-4"), Column("enabled", css_class="col-md-8 pt-md-4")),
            Submit("save", "Save schedule"),
        )

    def clean_keep_last(self) -> int:
        value = self.cleaned_data["keep_last"]
        if value is None or value < 1:
            raise forms.ValidationError("Keep at least one backup.")
        return value


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
