"""The forms of the wizard's steps. Each form turns its answers into JSON-ready values
(``answers()``) kept in the session, and is pre-filled from such answers (``initial``)."""

from __future__ import annotations

from typing import Any

from django import forms

from accounts.models import User
from backupsvc.lib.sizes import human_size
from organizations.models import MasterDataVersion, Organization, Regulation

LOGO_MAX_SIZE = 2 * 1024 * 1024
EMPLOYEES = ("1-10", "11-50", "51-200", "201-500", "501-1000", "1000+")
MODULES = (
    ("documents", "Controlled documents"),
    ("practice", "Clients and matters"),
    ("billing", "Billing and time recording"),
    ("account_backups", "Account Backups"),
)
MODULE_LABELS = dict(MODULES)


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


def languages_of(value: str) -> list[str]:
    return [part.strip() for part in value.replace(";", ",").split(",") if part.strip()]


class StepForm(forms.Form):
    """A step: its cleaned data as JSON-ready answers (files excepted), Bootstrap's classes on
    its widgets (markup stays in the templates; the class names are the widgets' own)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            widget = field.widget
            if isinstance(widget, forms.CheckboxSelectMultiple):
                css = "form-check-input"
            elif isinstance(widget, forms.Select):
                css = "form-select"
            else:
                css = "form-control"
            widget.attrs["class"] = css

    def full_clean(self) -> None:
        super().full_clean()
        for name in self.errors:
            if name in self.fields:
                self.fields[name].widget.attrs["class"] += " is-invalid"

    def answers(self) -> dict[str, Any]:
        return {k: v for k, v in self.cleaned_data.items() if not hasattr(v, "read")}


class CompanyForm(StepForm):
    name = forms.CharField(max_length=200, label="Organization name")
    slug = forms.SlugField(
        max_length=60, label="Address (slug)", help_text="Used in the organization's web address: letters, digits, -."
    )
    legal_name = forms.CharField(max_length=200, required=False, label="Legal name")
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))
    sector = forms.CharField(max_length=100, required=False)
    employees = forms.ChoiceField(required=False, label="Employees", choices=[("", "—"), *((e, e) for e in EMPLOYEES)])
    license_identifier = forms.CharField(required=False, max_length=100, label="License identifier")
    jurisdiction = forms.CharField(required=False, max_length=100)
    master_data_version = forms.ChoiceField(
        label="Master data version", help_text="The regulation catalog the organization is aligned with."
    )
    default_language = forms.CharField(required=False, max_length=10, label="Default language")
    available_languages = forms.CharField(
        required=False, max_length=200, label="Available languages", help_text="Language codes, separated by commas."
    )
    logo = forms.FileField(
        required=False,
        label="Logo",
        help_text=f"PNG, JPEG, GIF or WebP, at most {human_size(LOGO_MAX_SIZE)}.",
        widget=forms.ClearableFileInput(attrs={"accept": "image/png,image/jpeg,image/gif,image/webp"}),
    )
    owner_email = forms.EmailField(
        label="Owner",
        help_text="The email address of an existing user, who becomes the organization's Owner.",
    )

    def __init__(self, *args: Any, fixed_master_data: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["master_data_version"].widget.attrs["data-testid"] = "mdv"
        versions = MasterDataVersion.objects.order_by("-released_on")
        self.fields["master_data_version"].choices = [(v.code, f"{v.name} ({v.code})") for v in versions]
        if fixed_master_data is not None:
            # Restore: the organization is aligned with the backup's version, not chosen.
            field = self.fields["master_data_version"]
            field.disabled = True
            field.choices = [(fixed_master_data, fixed_master_data)]
            field.help_text = "The new organization uses the backup's master data version."
            self.initial["master_data_version"] = fixed_master_data
        employees = self.initial.get("employees")
        if employees and employees not in EMPLOYEES:  # a value captured elsewhere stays selectable
            self.fields["employees"].choices = [*self.fields["employees"].choices, (employees, employees)]

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

    def clean_available_languages(self) -> list[str]:
        return languages_of(self.cleaned_data.get("available_languages", ""))

    def clean_logo(self) -> Any:
        logo = self.cleaned_data.get("logo")
        if logo and logo.size > LOGO_MAX_SIZE:
            raise forms.ValidationError(f"The logo may be at most {human_size(LOGO_MAX_SIZE)}.")
        if logo:
            head = logo.read(16)
            logo.seek(0)
            if sniff_image(head) is None:
                raise forms.ValidationError("The logo must be a PNG, JPEG, GIF or WebP image.")
        return logo

    def answers(self) -> dict[str, Any]:
        data = super().answers()
        data["available_languages"] = ", ".join(data.get("available_languages") or [])
        return data


class AddressForm(StepForm):
    line1 = forms.CharField(max_length=200, label="Street and number")
    line2 = forms.CharField(max_length=200, required=False, label="Address line 2")
    postcode = forms.CharField(max_length=20, required=False, label="Postcode")
    city = forms.CharField(max_length=100)
    country = forms.CharField(max_length=60, help_text="A country code such as GB or DE, or the country's name.")


class ContactForm(StepForm):
    name = forms.CharField(max_length=200, label="Contact person")
    email = forms.EmailField(label="Contact email")
    phone = forms.CharField(max_length=40, required=False, label="Phone")


class FacilityRow(forms.Form):
    name = forms.CharField(max_length=200, required=False, label="Facility name")
    code = forms.CharField(max_length=30, required=False, label="Code")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if (data.get("name") or data.get("code")) and not (data.get("name") and data.get("code")):
            raise forms.ValidationError("Give the facility both a name and a code.")
        return data


class OURow(forms.Form):
    name = forms.CharField(max_length=200, required=False, label="Unit name")
    code = forms.CharField(max_length=30, required=False, label="Code")
    facility = forms.CharField(max_length=30, required=False, label="Facility code")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if (data.get("name") or data.get("code")) and not (data.get("name") and data.get("code")):
            raise forms.ValidationError("Give the unit both a name and a code.")
        return data


FacilityFormSet = forms.formset_factory(FacilityRow, extra=0, max_num=50, validate_max=True)
OUFormSet = forms.formset_factory(OURow, extra=0, max_num=200, validate_max=True)
ROW_FIELDS = {"facility": ("name", "code"), "ou": ("name", "code", "facility")}


def _raw_rows(formset: forms.BaseFormSet, kind: str) -> list[dict[str, str]]:  # type: ignore[type-arg]
    """The rows as typed, unvalidated (to re-show them after *Add* or *Remove*)."""
    return [{f: str(form[f].value() or "") for f in ROW_FIELDS[kind]} for form in formset.forms]


def _kept(formset: forms.BaseFormSet) -> list[dict[str, str]]:  # type: ignore[type-arg]
    return [
        {k: (v or "").strip() for k, v in form.cleaned_data.items()}
        for form in formset.forms
        if form.cleaned_data.get("name")
    ]


class Structure:
    """The structure step: facilities and organisational units, rows added and removed by the
    user with the *Add* and *Remove* buttons (plain form posts, so no script is needed). The
    answers are ``{"facilities": [{name, code}], "ous": [{name, code, facility}]}``."""

    def __init__(self, data: Any = None, initial: dict[str, Any] | None = None) -> None:
        self.errors: list[str] = []
        if data is not None:
            self.facilities = FacilityFormSet(data, prefix="facility")
            self.ous = OUFormSet(data, prefix="ou")
        else:
            initial = initial or {}
            self.facilities = FacilityFormSet(initial=list(initial.get("facilities") or []), prefix="facility")
            self.ous = OUFormSet(initial=list(initial.get("ous") or [{}]), prefix="ou")

    def edited(self, action: str) -> Structure | None:
        """The step re-shown after ``add-facility``, ``add-ou``, ``remove-facility-N`` or
        ``remove-ou-N``; None for any other action (the step is being submitted)."""
        rows = {"facility": _raw_rows(self.facilities, "facility"), "ou": _raw_rows(self.ous, "ou")}
        verb, _, rest = action.partition("-")
        kind, _, index = rest.partition("-")
        if kind not in rows or verb not in ("add", "remove"):
            return None
        if verb == "add":
            rows[kind].append(dict.fromkeys(ROW_FIELDS[kind], ""))
        elif index.isdigit() and int(index) < len(rows[kind]):
            del rows[kind][int(index)]
        fresh = Structure(initial={"facilities": rows["facility"], "ous": rows["ou"]})
        if not rows["ou"]:
            fresh.ous = OUFormSet(initial=[], prefix="ou")
        return fresh

    def is_valid(self) -> bool:
        if not (self.facilities.is_valid() and self.ous.is_valid()):
            return False
        self.errors = self._check(**self.answers())
        return not self.errors

    def answers(self) -> dict[str, Any]:
        return {"facilities": _kept(self.facilities), "ous": _kept(self.ous)}

    @staticmethod
    def _check(facilities: list[dict[str, Any]], ous: list[dict[str, Any]]) -> list[str]:
        errors = []
        codes = [f["code"] for f in facilities]
        if len(set(codes)) != len(codes):
            errors.append("Two facilities have the same code; each code must be unique.")
        ou_codes = [o["code"] for o in ous]
        if len(set(ou_codes)) != len(ou_codes):
            errors.append("Two organisational units have the same code; each code must be unique.")
        for ou in ous:
            if ou.get("facility") and ou["facility"] not in codes:
                errors.append(f"Unit {ou['name']} names facility code {ou['facility']}, which is not in the list.")
        if not ous:
            errors.append("Add at least one organisational unit.")
        return errors


class RegulationsForm(StepForm):
    regulations = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple, label="Regulations that apply"
    )

    def __init__(self, *args: Any, master_data: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        catalog = Regulation.objects.filter(master_data_version__code=master_data).order_by("code")
        self.fields["regulations"].choices = [(r.code, f"{r.code} – {r.title}") for r in catalog]


class ModulesForm(StepForm):
    modules = forms.MultipleChoiceField(
        choices=MODULES,
        widget=forms.CheckboxSelectMultiple,
        label="Modules",
        error_messages={"required": "Choose at least one module."},
    )
