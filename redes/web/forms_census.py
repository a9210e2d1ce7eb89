"""Forms of the census pages (households, persons, visits, consent).

They check the shape of the input and give each field a clear message; the registry services check the rules
again and do the writes (``registry.services``).
"""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from redes.core.phones import normalize_phone
from redes.registry import vulnerability
from redes.registry.models import Channel, Consent, Relation, Sex, Visit
from redes.registry.services import purpose_label

_TEXT = {"autocomplete": "off", "autocapitalize": "off", "spellcheck": "false"}
_NUMERIC = {"inputmode": "numeric", "autocomplete": "off"}
_DECIMAL = {"inputmode": "decimal", "autocomplete": "off"}
_TEL = {"type": "tel", "inputmode": "tel", "autocomplete": "off"}

#: How many phone slots the household form shows at most.
MAX_PHONES = 5


class HouseholdForm(forms.Form):
    street = forms.CharField(label=_("Street"), max_length=200)
    ext_number = forms.CharField(
        label=_("Number"), max_length=20, required=False, widget=forms.TextInput(attrs=_TEXT)
    )
    int_number = forms.CharField(
        label=_("Interior"), max_length=20, required=False, widget=forms.TextInput(attrs=_TEXT)
    )
    colonia = forms.CharField(label=_("Neighbourhood (colonia)"), max_length=120, required=False)
    postal_code = forms.CharField(
        label=_("Postal code"),
        max_length=5,
        required=False,
        widget=forms.TextInput(attrs={**_NUMERIC, "pattern": "[0-9]{5}"}),
    )
    reference = forms.CharField(
        label=_("How to find it"),
        max_length=200,
        required=False,
        help_text=_("E.g. green gate, next to the corner shop."),
    )
    lat = forms.FloatField(
        label=_("Latitude"),
        required=False,
        min_value=-90,
        max_value=90,
        widget=forms.TextInput(attrs=_DECIMAL),
    )
    lon = forms.FloatField(
        label=_("Longitude"),
        required=False,
        min_value=-180,
        max_value=180,
        widget=forms.TextInput(attrs=_DECIMAL),
    )
    preferred_channel = forms.ChoiceField(
        label=_("Preferred channel"), choices=Channel.choices, initial=Channel.WHATSAPP
    )

    def __init__(self, *args, phones=(), **kwargs):
        super().__init__(*args, **kwargs)
        existing = list(phones)
        self.phone_count = min(MAX_PHONES, max(2, len(existing) + 1))
        for i in range(self.phone_count):
            phone = existing[i] if i < len(existing) else None
            self.fields[f"phone{i}"] = forms.CharField(
                label=_("Phone %(n)s") % {"n": i + 1},
                max_length=32,
                required=False,
                help_text=_("10 digits, e.g. 81 1234 5678."),
                widget=forms.TextInput(attrs=_TEL),
                initial=phone.number if phone else "",
            )
            self.fields[f"phone{i}_whatsapp"] = forms.BooleanField(
                label=_("WhatsApp"), required=False, initial=phone.whatsapp if phone else False
            )
            self.fields[f"phone{i}_sms"] = forms.BooleanField(
                label=_("SMS"), required=False, initial=phone.sms if phone else True
            )
            self.fields[f"phone{i}_voice"] = forms.BooleanField(
                label=_("Calls"), required=False, initial=phone.voice if phone else True
            )
            self.fields[f"phone{i}_label"] = forms.CharField(
                label=_("Whose phone"),
                max_length=60,
                required=False,
                initial=phone.label if phone else "",
            )

    #: Fields drawn by the template's address section (the phones are drawn in their own group).
    ADDRESS_FIELDS = ("street", "ext_number", "int_number", "colonia", "postal_code", "reference")

    def address_fields(self):
        return [self[name] for name in self.ADDRESS_FIELDS]

    def phone_rows(self):
        return [
            {
                "index": i,
                "number": self[f"phone{i}"],
                "whatsapp": self[f"phone{i}_whatsapp"],
                "sms": self[f"phone{i}_sms"],
                "voice": self[f"phone{i}_voice"],
                "label": self[f"phone{i}_label"],
            }
            for i in range(self.phone_count)
        ]

    def clean_postal_code(self):
        value = self.cleaned_data["postal_code"].strip()
        if value and (not value.isdigit() or len(value) != 5):
            raise ValidationError(_("A Mexican postal code has 5 digits."))
        return value

    def clean(self):
        data = super().clean()
        lat, lon = data.get("lat"), data.get("lon")
        seen = set()
        for i in range(self.phone_count):
            raw = (data.get(f"phone{i}") or "").strip()
            if not raw:
                continue
            try:
                number = normalize_phone(raw)
            except ValidationError as exc:
                self.add_error(f"phone{i}", exc)
                continue
            if number in seen:
                self.add_error(f"phone{i}", _("This number is already listed above."))
            seen.add(number)
        if (lat is None) != (lon is None) and not (self.errors.get("lat") or self.errors.get("lon")):
            self.add_error(None, _("Give both the latitude and the longitude, or neither."))
        return data

    def service_data(self) -> dict:
        """Keyword arguments for ``create_household`` / ``update_household``."""
        data = {name: self.cleaned_data[name] for name in (*self.ADDRESS_FIELDS, "preferred_channel")}
        data["lat"], data["lon"] = self.cleaned_data.get("lat"), self.cleaned_data.get("lon")
        data["phones"] = [
            {
                "number": self.cleaned_data[f"phone{i}"].strip(),
                "whatsapp": self.cleaned_data[f"phone{i}_whatsapp"],
                "sms": self.cleaned_data[f"phone{i}_sms"],
                "voice": self.cleaned_data[f"phone{i}_voice"],
                "label": self.cleaned_data[f"phone{i}_label"].strip(),
            }
            for i in range(self.phone_count)
            if self.cleaned_data.get(f"phone{i}", "").strip()
        ]
        return data

    @staticmethod
    def initial_for(household) -> dict:
        initial = {name: getattr(household, name) for name in HouseholdForm.ADDRESS_FIELDS}
        initial.update(lat=household.lat, lon=household.lon, preferred_channel=household.preferred_channel)
        return initial


def _factor_choices():
    return [(code, vulnerability.FACTORS[code].label) for code in vulnerability.DECLARED]


class PersonForm(forms.Form):
    full_name = forms.CharField(
        label=_("Full name"),
        max_length=200,
        required=False,
        help_text=_("Either the full name, or the given name and surnames below."),
    )
    given_name = forms.CharField(label=_("Given name(s)"), max_length=100, required=False)
    surname1 = forms.CharField(label=_("First surname"), max_length=100, required=False)
    surname2 = forms.CharField(label=_("Second surname"), max_length=100, required=False)
    birth_date = forms.DateField(
        label=_("Birth date"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        error_messages={"invalid": _("The birth date must be a date (YYYY-MM-DD).")},
    )
    age = forms.IntegerField(
        label=_("Age"),
        required=False,
        min_value=0,
        max_value=120,
        help_text=_("If the birth date is not known."),
        widget=forms.NumberInput(attrs=_NUMERIC),
        error_messages={
            "invalid": _("The age must be a whole number from 0 to 120."),
            "min_value": _("The age must be a whole number from 0 to 120."),
            "max_value": _("The age must be a whole number from 0 to 120."),
        },
    )
    sex = forms.ChoiceField(label=_("Sex"), choices=Sex.choices, required=False)
    curp = forms.CharField(
        label=_("CURP"),
        max_length=18,
        required=False,
        help_text=_("18 characters; optional."),
        widget=forms.TextInput(attrs={**_TEXT, "autocapitalize": "characters"}),
    )
    phone = forms.CharField(
        label=_("Own phone"),
        max_length=32,
        required=False,
        widget=forms.TextInput(attrs=_TEL),
    )
    relation = forms.ChoiceField(
        label=_("Relation to the head of household"),
        choices=[("", _("(not stated)")), *Relation.choices],
        required=False,
    )
    factors = forms.MultipleChoiceField(
        label=_("Situation"),
        choices=_factor_choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_(
            "Only what the person declares. Health, disability and violence are recorded by case officers."
        ),
    )

    NAME_PARTS = ("given_name", "surname1", "surname2")

    def clean(self):
        data = super().clean()
        if not (data.get("full_name") or "").strip() and not any(
            (data.get(k) or "").strip() for k in self.NAME_PARTS
        ):
            self.add_error("full_name", _("The name is required."))
        return data

    def service_data(self, *, editing: bool = False) -> dict:
        """Keyword arguments for ``add_person`` / ``update_person``.

        When editing, a changed full name with unchanged parts is split again, and changed parts with an
        unchanged full name rebuild it (the service does both when the other side is empty)."""
        data = {
            key: self.cleaned_data.get(key)
            for key in (
                "full_name",
                "given_name",
                "surname1",
                "surname2",
                "birth_date",
                "sex",
                "curp",
                "phone",
                "relation",
                "factors",
            )
        }
        for key in ("full_name", "given_name", "surname1", "surname2", "curp", "phone"):
            data[key] = (data[key] or "").strip()
        data["age"] = self.cleaned_data.get("age")
        if data["birth_date"] is not None:
            data["age"] = None
        if editing:
            changed = set(self.changed_data)
            parts_changed = bool(changed & set(self.NAME_PARTS))
            if "full_name" in changed and not parts_changed:
                data.update(given_name="", surname1="", surname2="")
            elif parts_changed and "full_name" not in changed:
                data["full_name"] = ""
        return data

    @staticmethod
    def initial_for(person, today) -> dict:
        initial = {
            key: getattr(person, key)
            for key in (
                "full_name",
                "given_name",
                "surname1",
                "surname2",
                "birth_date",
                "sex",
                "curp",
                "relation",
            )
        }
        initial["phone"] = person.phone
        initial["factors"] = list(person.factors or [])
        if not person.birth_date and person.birth_year:
            initial["age"] = today.year - person.birth_year
        return initial


class VisitForm(forms.Form):
    outcome = forms.ChoiceField(label=_("Outcome"), choices=Visit.Outcome.choices)
    note = forms.CharField(label=_("Note"), max_length=300, required=False)


class ConsentForm(forms.Form):
    purposes = forms.MultipleChoiceField(
        label=_("Purposes accepted"), widget=forms.CheckboxSelectMultiple, required=False
    )
    sensitive = forms.BooleanField(
        label=_(
            "The person gives express consent for sensitive data (health, disability, violence risk) "
            "to be recorded by a case officer."
        ),
        required=False,
        help_text=_("Only with an explicit yes. Without it no sensitive data can be recorded."),
    )
    channel = forms.ChoiceField(
        label=_("How was consent given?"),
        choices=[c for c in Consent.Via.choices if c[0] != Consent.Via.IMPORT],
        initial=Consent.Via.IN_PERSON,
    )

    def __init__(self, *args, notice, **kwargs):
        super().__init__(*args, **kwargs)
        self.notice = notice
        purposes = list(notice.purposes or [])
        self.necessary = [p["code"] for p in purposes if p.get("necessary")]
        self.fields["purposes"].choices = [
            (p["code"], p.get("label") or purpose_label(p["code"])) for p in purposes
        ]
        if not self.is_bound:
            chosen = list(self.initial.get("purposes") or [])
            self.initial["purposes"] = [*self.necessary, *(c for c in chosen if c not in self.necessary)]

    def purpose_rows(self):
        """Each purpose's checkbox with whether it is necessary (for the template's explanation)."""
        return [
            {"widget": widget, "necessary": widget.data["value"] in self.necessary}
            for widget in self["purposes"]
        ]

    def clean_purposes(self):
        chosen = self.cleaned_data["purposes"]
        missing = [code for code in self.necessary if code not in chosen]
        if missing:
            raise ValidationError(
                _("The necessary purposes must be accepted for the person to be registered: %(codes)s.")
                % {"codes": ", ".join(str(purpose_label(c)) for c in missing)}
            )
        return chosen


class RevokeConsentForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason"),
        max_length=200,
        help_text=_("E.g. asked by the person by phone."),
        error_messages={"required": _("Say why the consent is revoked.")},
    )
    confirm = forms.BooleanField(
        label=_("Yes, revoke this consent"),
        error_messages={"required": _("Tick the box to confirm.")},
    )
