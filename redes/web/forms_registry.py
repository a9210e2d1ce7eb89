"""Forms of the registry pages for coordinators and case officers. Shape only: the services check the rules."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from redes.registry import vulnerability
from redes.registry.models import DataRequest, ImportJob, Relation, Sex

_TEXT = {"autocomplete": "off", "autocapitalize": "off", "spellcheck": "false"}


class SensitiveForm(forms.Form):
    factors = forms.MultipleChoiceField(
        label=_("Sensitive factors"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        choices=(),
    )
    notes = forms.CharField(
        label=_("Notes"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_("Only case officers can read these notes. Write only what the support needs."),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["factors"].choices = [
            (code, vulnerability.FACTORS[code].label) for code in vulnerability.SENSITIVE
        ]


class PersonSearchForm(forms.Form):
    q = forms.CharField(
        label=_("Search a person by name or CURP"),
        max_length=100,
        required=False,
        widget=forms.TextInput(attrs={**_TEXT, "type": "search"}),
    )


#: Person fields a rectification may correct, in the order shown.
CORRECTABLE = (
    "full_name",
    "given_name",
    "surname1",
    "surname2",
    "birth_date",
    "sex",
    "curp",
    "phone",
    "relation",
)


class DataRequestForm(forms.Form):
    kind = forms.ChoiceField(label=_("Kind of request"), choices=DataRequest.Kind.choices)
    details = forms.CharField(
        label=_("What the person asks"),
        required=False,
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    purpose = forms.ChoiceField(
        label=_("Purpose objected to"),
        required=False,
        choices=(),
        help_text=_("Only for an objection."),
    )
    fix_full_name = forms.CharField(label=_("Correct full name"), required=False, max_length=200)
    fix_given_name = forms.CharField(label=_("Correct given name(s)"), required=False, max_length=100)
    fix_surname1 = forms.CharField(label=_("Correct first surname"), required=False, max_length=100)
    fix_surname2 = forms.CharField(label=_("Correct second surname"), required=False, max_length=100)
    fix_birth_date = forms.DateField(
        label=_("Correct birth date"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    fix_sex = forms.ChoiceField(
        label=_("Correct sex"), required=False, choices=[("", "—"), *[c for c in Sex.choices if c[0]]]
    )
    fix_curp = forms.CharField(
        label=_("Correct CURP"), required=False, max_length=18, widget=forms.TextInput(attrs=_TEXT)
    )
    fix_phone = forms.CharField(
        label=_("Correct phone"),
        required=False,
        max_length=32,
        widget=forms.TextInput(attrs={"type": "tel", "inputmode": "tel", "autocomplete": "off"}),
    )
    fix_relation = forms.ChoiceField(
        label=_("Correct relation to the head"), required=False, choices=[("", "—"), *Relation.choices]
    )

    def __init__(self, *args, purposes: list[tuple[str, str]] = (), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["purpose"].choices = [("", "—"), *purposes]

    def correction_fields(self):
        return [self[f"fix_{name}"] for name in CORRECTABLE]

    def main_fields(self):
        return [self["kind"], self["details"], self["purpose"]]

    def changes(self) -> dict:
        """The corrections asked for (only the fields filled in), as the service takes them."""
        out = {}
        for name in CORRECTABLE:
            value = self.cleaned_data.get(f"fix_{name}")
            if value in (None, ""):
                continue
            out[name] = value.isoformat() if name == "birth_date" else value
        return out

    def clean(self):
        cleaned = super().clean()
        kind = cleaned.get("kind")
        if kind == DataRequest.Kind.OBJECTION and not cleaned.get("purpose"):
            self.add_error("purpose", _("Say which purpose the person objects to."))
        if kind == DataRequest.Kind.RECTIFICATION and not any(
            cleaned.get(f"fix_{name}") not in (None, "") for name in CORRECTABLE
        ):
            self.add_error(None, _("Fill in at least one correction for a rectification."))
        return cleaned


class AnswerForm(forms.Form):
    response = forms.CharField(
        label=_("Answer given to the person"),
        required=False,
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    reject = forms.BooleanField(
        label=_("Reject the request (say why in the answer)"),
        required=False,
    )

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("reject") and not (cleaned.get("response") or "").strip():
            self.add_error("response", _("Say why the request is rejected."))
        return cleaned


class WeightsForm(forms.Form):
    threshold = forms.IntegerField(
        label=_("Priority threshold"),
        min_value=0,
        max_value=100,
        help_text=_("Households at or above this score count as priority."),
        widget=forms.NumberInput(attrs={"inputmode": "numeric"}),
    )

    def __init__(self, *args, current: dict[str, int], **kwargs):
        super().__init__(*args, **kwargs)
        for code, factor in vulnerability.FACTORS.items():
            self.fields[f"w_{code}"] = forms.IntegerField(
                label=factor.label,
                min_value=0,
                max_value=100,
                initial=current.get(code, factor.weight),
                widget=forms.NumberInput(attrs={"inputmode": "numeric", "class": "weight"}),
            )

    def weight_rows(self, current: dict[str, int]):
        for code, factor in vulnerability.FACTORS.items():
            yield {
                "code": code,
                "factor": factor,
                "default": factor.weight,
                "current": current.get(code, factor.weight),
                "field": self[f"w_{code}"],
            }

    def weights(self) -> dict[str, int]:
        return {code: self.cleaned_data[f"w_{code}"] for code in vulnerability.FACTORS}


PURPOSE_CHOICES = [
    ("necessary", _("Necessary")),
    ("optional", _("Optional (the person may refuse it)")),
    ("", _("Not in this notice")),
]


class NoticeForm(forms.Form):
    version = forms.CharField(
        label=_("Version"), max_length=20, widget=forms.TextInput(attrs=_TEXT), help_text=_("E.g. 2026-2.")
    )
    text = forms.CharField(label=_("Text of the notice"), widget=forms.Textarea(attrs={"rows": 8}))
    other_code = forms.SlugField(
        label=_("Another purpose: short code"),
        required=False,
        max_length=30,
        widget=forms.TextInput(attrs=_TEXT),
    )
    other_label = forms.CharField(label=_("Another purpose: description"), required=False, max_length=200)
    other_kind = forms.ChoiceField(
        label=_("Another purpose: kind"), required=False, choices=PURPOSE_CHOICES[:2], initial="optional"
    )

    def __init__(self, *args, known: list[tuple[str, str, str]], **kwargs):
        """``known``: (code, label, initial kind) of the purposes offered as rows."""
        super().__init__(*args, **kwargs)
        self.known = known
        for code, label, initial in known:
            self.fields[f"p_{code}"] = forms.ChoiceField(
                label=label, choices=PURPOSE_CHOICES, required=False, initial=initial
            )

    def purpose_fields(self):
        return [self[f"p_{code}"] for code, _label, _initial in self.known]

    def other_fields(self):
        return [self["other_code"], self["other_label"], self["other_kind"]]

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("other_code") and not (cleaned.get("other_label") or "").strip():
            self.add_error("other_label", _("Describe the other purpose."))
        if not self.purposes() and not self.errors:
            self.add_error(None, _("A privacy notice names at least one purpose."))
        return cleaned

    def purposes(self) -> list[dict]:
        out = []
        for code, label, _initial in self.known:
            kind = self.cleaned_data.get(f"p_{code}")
            if kind:
                out.append({"code": code, "label": str(label), "necessary": kind == "necessary"})
        other = self.cleaned_data.get("other_code")
        if other:
            out.append(
                {
                    "code": other,
                    "label": (self.cleaned_data.get("other_label") or "").strip(),
                    "necessary": self.cleaned_data.get("other_kind") == "necessary",
                }
            )
        return out


class ImportUploadForm(forms.Form):
    municipality = forms.ModelChoiceField(
        label=_("Municipality"), queryset=None, to_field_name="uuid", empty_label=None
    )
    node_code = forms.CharField(
        label=_("Where: code of the unit"),
        max_length=32,
        required=False,
        widget=forms.TextInput(attrs=_TEXT),
        help_text=_("Every row must fall under this unit. Leave empty for the whole municipality."),
    )
    file = forms.FileField(
        label=_("File (CSV or XLSX)"),
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,.xlsx,text/csv"}),
    )

    def __init__(self, *args, municipalities, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["municipality"].queryset = municipalities
        if len(municipalities) == 1:
            self.fields["municipality"].initial = municipalities[0].uuid
            self.fields["municipality"].widget = forms.HiddenInput()


class MappingForm(forms.Form):
    mode = forms.ChoiceField(
        label=_("What to do with invalid rows"),
        choices=ImportJob.Mode.choices,
        widget=forms.RadioSelect,
        initial=ImportJob.Mode.VALID_ROWS,
    )

    def __init__(self, *args, fields, columns: list[str], mapping: dict, **kwargs):
        """``fields``: (code, label, required) in order; ``columns``: the file's headers."""
        super().__init__(*args, **kwargs)
        self.codes = []
        choices = [("", _("(not in the file)")), *[(c, c) for c in columns]]
        for code, label, required in fields:
            name = f"f_{code}"
            self.codes.append(code)
            self.fields[name] = forms.ChoiceField(
                label=label, choices=choices, required=bool(required), initial=mapping.get(code, "")
            )
            self.fields[name].field_required = bool(required)

    def field_rows(self):
        return [self[f"f_{code}"] for code in self.codes]

    def mapping(self) -> dict[str, str]:
        return {
            code: self.cleaned_data[f"f_{code}"] for code in self.codes if self.cleaned_data.get(f"f_{code}")
        }
