"""Forms of the needs pages: intake (field, hotline, public), the actions on a need, and the settings.

They check the shape of the input against what the caller may choose (categories of the need's municipality,
assignees allowed in the need's territory, blocks the user reaches); the services in ``redes.needs.services``
check the rules again and do the writes.
"""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from redes.core.phones import normalize_phone
from redes.needs.models import (
    NeedCategory,
    NeedStatus,
    Office,
    Urgency,
)

_TEXT = {"autocomplete": "off"}
_DECIMAL = {"inputmode": "decimal", "autocomplete": "off"}
_TEL = {"type": "tel", "inputmode": "tel", "autocomplete": "off"}

DESCRIPTION_MAX = 2000
NOTE_MAX = 1000


class CategoryField(forms.ModelChoiceField):
    """A category of one municipality, posted by its code (an unknown code is a form error)."""

    def __init__(self, queryset, **kwargs):
        kwargs.setdefault("label", _("What is needed"))
        kwargs.setdefault("empty_label", None)
        kwargs.setdefault("widget", forms.RadioSelect(attrs={"class": "big-choices"}))
        kwargs.setdefault("error_messages", {"invalid_choice": _("Choose one of the categories shown.")})
        super().__init__(queryset, to_field_name="code", **kwargs)

    def label_from_instance(self, obj):
        return obj.label


def categories_of(municipality, *, include_sensitive: bool = True):
    qs = NeedCategory.objects.filter(municipality=municipality, active=True)
    if not include_sensitive:
        qs = qs.filter(sensitive=False)
    return qs.order_by("order", "code")


def _phone_or_blank(value: str) -> str:
    value = (value or "").strip()
    if not value:
        return ""
    return normalize_phone(value)


class _NeedFields(forms.Form):
    """Category, urgency and description: the heart of every intake form."""

    urgency = forms.ChoiceField(
        label=_("How urgent"),
        choices=Urgency.choices,
        initial=Urgency.NORMAL,
        widget=forms.RadioSelect(attrs={"class": "segmented"}),
    )
    description = forms.CharField(
        label=_("Short description"),
        max_length=DESCRIPTION_MAX,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("What is needed and for whom. No diagnoses or other sensitive details."),
    )

    def __init__(self, *args, municipality, include_sensitive: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.municipality = municipality
        self.fields = {
            "category": CategoryField(categories_of(municipality, include_sensitive=include_sensitive)),
            **self.fields,
        }


class FieldIntakeForm(_NeedFields):
    """A block liaison registers a need for a household (or for the block when no household is given)."""

    person = forms.ModelChoiceField(
        label=_("Who"),
        queryset=None,
        required=False,
        to_field_name="uuid",
        empty_label=_("The whole household"),
    )
    block = forms.ModelChoiceField(
        label=_("Block"), queryset=None, required=True, to_field_name="uuid", empty_label=None
    )
    address = forms.CharField(label=_("Where"), max_length=200, required=False)

    def __init__(self, *args, household=None, members=None, blocks=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.household = household
        if household is not None:
            self.fields["person"].queryset = members
            del self.fields["block"]
            del self.fields["address"]
        else:
            del self.fields["person"]
            self.fields["block"].queryset = blocks
            self.fields["block"].label_from_instance = lambda n: f"{n.name} · {n.code}"


class HotlineForm(_NeedFields):
    """An operator takes a phone call: who called, for which household (or a new one), what, where."""

    caller_phone = forms.CharField(
        label=_("Caller's phone"),
        max_length=32,
        required=False,
        widget=forms.TextInput(attrs=_TEL),
        help_text=_("10 digits. Kept to call back."),
    )
    household = forms.CharField(required=False, widget=forms.HiddenInput)
    new_household = forms.BooleanField(label=_("Yes, register this new household"), required=False)
    block = forms.ModelChoiceField(
        label=_("Block"),
        queryset=None,
        required=False,
        to_field_name="uuid",
        help_text=_("Where the household lives (needed for a new household)."),
    )
    street = forms.CharField(label=_("Street"), max_length=200, required=False)
    ext_number = forms.CharField(label=_("Number"), max_length=20, required=False)
    colonia = forms.CharField(label=_("Neighbourhood (colonia)"), max_length=120, required=False)
    address = forms.CharField(
        label=_("Address or place"),
        max_length=200,
        required=False,
        help_text=_("Where the need is, when there is no household."),
    )

    def __init__(self, *args, households=None, blocks=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.households = households
        self.fields["block"].queryset = blocks
        self.fields["block"].label_from_instance = lambda n: f"{n.code} · {n.name}"

    def clean_caller_phone(self):
        return _phone_or_blank(self.cleaned_data["caller_phone"])

    def clean_household(self):
        value = (self.cleaned_data.get("household") or "").strip()
        if not value:
            return None
        try:
            return self.households.get(uuid=value)
        except (self.households.model.DoesNotExist, ValidationError, ValueError):
            raise ValidationError(_("That household is not in your territory.")) from None

    def clean(self):
        data = super().clean()
        if data.get("new_household"):
            if data.get("household"):
                self.add_error("new_household", _("Choose an existing household or a new one, not both."))
            if not data.get("block"):
                self.add_error("block", _("Choose the block of the new household."))
            if not (data.get("street") or "").strip():
                self.add_error("street", _("Give the street of the new household."))
        return data


class PublicReportForm(forms.Form):
    """The public form (no login): no personal data required; a phone only if the person wants a call."""

    urgency = _NeedFields.base_fields["urgency"]
    description = forms.CharField(
        label=_("What is happening"),
        max_length=DESCRIPTION_MAX,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_("Do not write names, diagnoses or other personal details."),
    )
    block = forms.CharField(
        label=_("Block or sector code"),
        max_length=40,
        required=False,
        widget=forms.TextInput(attrs={**_TEXT, "list": "block-codes"}),
        help_text=_("If you know it. Otherwise give an address or tap the map."),
    )
    address = forms.CharField(label=_("Address or place"), max_length=200, required=False)
    lat = forms.FloatField(
        label=_("Latitude"), required=False, min_value=-90, max_value=90, widget=forms.HiddenInput
    )
    lon = forms.FloatField(
        label=_("Longitude"), required=False, min_value=-180, max_value=180, widget=forms.HiddenInput
    )
    phone = forms.CharField(
        label=_("Phone to call you back"),
        max_length=32,
        required=False,
        widget=forms.TextInput(attrs=_TEL),
        help_text=_("Optional. Only the team handling your report sees it."),
    )
    # A field people never see: bots fill it.
    website = forms.CharField(required=False, widget=forms.TextInput(attrs={"tabindex": "-1", **_TEXT}))
    accept = forms.BooleanField(label=_("I have read the privacy notice."), required=True)

    def __init__(self, *args, municipality, units, **kwargs):
        super().__init__(*args, **kwargs)
        self.municipality = municipality
        self.units = units
        self.fields = {"category": CategoryField(categories_of(municipality)), **self.fields}

    def clean_phone(self):
        return _phone_or_blank(self.cleaned_data["phone"])

    def clean_block(self):
        code = (self.cleaned_data.get("block") or "").strip()
        if not code:
            return None
        node = self.units.filter(code__iexact=code).first()
        if node is None:
            raise ValidationError(_("No block or sector has that code. Leave it empty if unsure."))
        return node

    def clean(self):
        data = super().clean()
        somewhere = data.get("block") or (data.get("address") or "").strip() or data.get("lat") is not None
        if not somewhere and "block" not in self.errors:
            self.add_error("address", _("Tell us where: a block code, an address or a point on the map."))
        if (data.get("lat") is None) != (data.get("lon") is None):
            self.add_error("address", _("The point on the map is incomplete; tap the map again."))
        return data


# ---------------------------------------------------------------------------------------------- actions


class NoteForm(forms.Form):
    text = forms.CharField(label=_("Note"), max_length=NOTE_MAX, widget=forms.Textarea(attrs={"rows": 2}))


class TriageForm(forms.Form):
    urgency = forms.ChoiceField(label=_("Urgency"), choices=Urgency.choices)
    note = forms.CharField(label=_("Note"), max_length=NOTE_MAX, required=False)

    def __init__(self, *args, municipality, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields = {
            "category": CategoryField(categories_of(municipality), label=_("Category"), widget=forms.Select),
            **self.fields,
        }


class AssignForm(forms.Form):
    """One select for every kind of assignee: ``user:<uuid>``, ``group:<uuid>``, ``office:<uuid>``."""

    assignee = forms.ChoiceField(label=_("Assign to"))
    note = forms.CharField(label=_("Note"), max_length=NOTE_MAX, required=False)

    def __init__(self, *args, users=(), groups=(), offices=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.options: dict[str, tuple[str, object]] = {}
        groups_of_choices = []
        for kind, title, items in (
            ("user", _("People"), users),
            ("group", _("Working groups"), groups),
            ("office", _("Offices and hotlines"), offices),
        ):
            choices = []
            for item in items:
                key = f"{kind}:{item.uuid}"
                self.options[key] = (kind, item)
                label = item.display_name if kind == "user" else item.name
                choices.append((key, label))
            if choices:
                groups_of_choices.append((title, choices))
        self.fields["assignee"].choices = [("", "—")] + groups_of_choices

    def clean_assignee(self):
        key = self.cleaned_data["assignee"]
        if key not in self.options:
            raise ValidationError(_("Choose someone from the list."))
        return self.options[key]


class ReferForm(forms.Form):
    office = forms.ModelChoiceField(
        label=_("Refer to"), queryset=Office.objects.none(), empty_label=None, to_field_name="uuid"
    )
    note = forms.CharField(label=_("Note"), max_length=NOTE_MAX, required=False)

    def __init__(self, *args, offices, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["office"].queryset = offices
        self.fields["office"].label_from_instance = lambda o: f"{o.name} · {o.get_kind_display()}"


class ResolveForm(forms.Form):
    outcome = forms.ChoiceField(label=_("Outcome"), choices=())
    note = forms.CharField(label=_("Note"), max_length=NOTE_MAX, required=False)

    def __init__(self, *args, outcomes, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["outcome"].choices = outcomes


class CloseForm(forms.Form):
    outcome = forms.ChoiceField(label=_("Outcome"), choices=(), required=False)
    satisfaction = forms.TypedChoiceField(
        label=_("How satisfied was the person? (1 to 5)"),
        choices=[("", _("Not asked"))] + [(str(i), str(i)) for i in range(1, 6)],
        coerce=int,
        empty_value=None,
        required=False,
        widget=forms.RadioSelect(attrs={"class": "segmented"}),
    )
    note = forms.CharField(label=_("Note"), max_length=NOTE_MAX, required=False)

    def __init__(self, *args, outcomes, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["outcome"].choices = [("", "—"), *outcomes]


class CancelForm(forms.Form):
    reason = forms.CharField(label=_("Why"), max_length=NOTE_MAX)


class DuplicateForm(forms.Form):
    of = forms.CharField(
        label=_("Reference of the need it repeats"),
        max_length=40,
        widget=forms.TextInput(attrs=_TEXT),
        help_text=_("The reference code shown on the other need."),
    )


class ReferralUpdateForm(forms.Form):
    status = forms.ChoiceField(label=_("Referral status"), choices=())
    note = forms.CharField(label=_("Note"), max_length=NOTE_MAX, required=False)

    def __init__(self, *args, statuses, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["status"].choices = statuses


# ---------------------------------------------------------------------------------------------- filters


class QueueFilterForm(forms.Form):
    """The queue's filters (GET). Unknown values are ignored, never an error page."""

    status = forms.ChoiceField(label=_("Status"), required=False)
    category = forms.ChoiceField(label=_("Category"), required=False)
    urgency = forms.ChoiceField(label=_("Urgency"), required=False)
    node = forms.ChoiceField(label=_("Area"), required=False)
    overdue = forms.BooleanField(label=_("Overdue only"), required=False)

    def __init__(self, *args, categories=(), nodes=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["status"].choices = [("", _("Still open")), ("all", _("Any status")), *NeedStatus.choices]
        self.fields["category"].choices = [("", _("Any category"))] + [(c.code, c.label) for c in categories]
        self.fields["urgency"].choices = [("", _("Any urgency")), *Urgency.choices]
        self.fields["node"].choices = [("", _("All my territory"))] + [
            (str(n.uuid), f"{n.name} · {n.code}") for n in nodes
        ]

    def filters(self) -> dict:
        """The valid filters only (an invalid value drops out)."""
        self.is_valid()
        data = getattr(self, "cleaned_data", {})
        return {key: data.get(key) for key in self.fields if key not in self.errors and data.get(key)}


# --------------------------------------------------------------------------------------------- settings


class _NodeCodeField(forms.CharField):
    """A unit of the municipality by its code (empty: the whole municipality)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 40)
        kwargs.setdefault("required", False)
        kwargs.setdefault("widget", forms.TextInput(attrs={**_TEXT, "list": "unit-codes"}))
        super().__init__(**kwargs)


class _SettingsForm(forms.Form):
    def __init__(self, *args, municipality, **kwargs):
        super().__init__(*args, **kwargs)
        self.municipality = municipality

    def _node(self, field: str):
        from redes.territories.models import Node

        code = (self.cleaned_data.get(field) or "").strip()
        if not code:
            return None
        node = Node.objects.filter(municipality=self.municipality, code__iexact=code).first()
        if node is None:
            raise ValidationError(_("No unit of this municipality has that code."))
        return node


class CategoryForm(_SettingsForm):
    code = forms.SlugField(label=_("Code"), max_length=40, help_text=_("Letters, digits and dashes."))
    name = forms.CharField(
        label=_("Name"), max_length=120, required=False, help_text=_("Empty: the built-in name.")
    )
    parent = forms.ModelChoiceField(
        label=_("Inside"), queryset=NeedCategory.objects.none(), required=False, to_field_name="code"
    )
    sensitive = forms.BooleanField(label=_("Sensitive (only case officers see these needs)"), required=False)
    active = forms.BooleanField(label=_("Active"), required=False, initial=True)
    order = forms.IntegerField(label=_("Order"), min_value=0, max_value=999, initial=0)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["parent"].queryset = NeedCategory.objects.filter(municipality=self.municipality)
        self.fields["parent"].label_from_instance = lambda c: c.label


class OfficeForm(_SettingsForm):
    name = forms.CharField(label=_("Name"), max_length=200)
    kind = forms.ChoiceField(label=_("Kind"), choices=Office.Kind.choices)
    phone = forms.CharField(
        label=_("Phone"), max_length=40, required=False, widget=forms.TextInput(attrs=_TEL)
    )
    hours = forms.CharField(label=_("Opening hours"), max_length=200, required=False)
    categories = forms.ModelMultipleChoiceField(
        label=_("Categories it attends"),
        queryset=NeedCategory.objects.none(),
        required=False,
        to_field_name="code",
        widget=forms.CheckboxSelectMultiple,
    )
    active = forms.BooleanField(label=_("Active"), required=False, initial=True)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["categories"].queryset = NeedCategory.objects.filter(municipality=self.municipality)
        self.fields["categories"].label_from_instance = lambda c: c.label


class WorkingGroupForm(_SettingsForm):
    name = forms.CharField(label=_("Name"), max_length=200)
    node = _NodeCodeField(label=_("Area (unit code)"), help_text=_("Empty: the whole municipality."))
    theme = forms.ModelChoiceField(
        label=_("Theme"), queryset=NeedCategory.objects.none(), required=False, to_field_name="code"
    )
    members = forms.ModelMultipleChoiceField(
        label=_("Members"), queryset=None, required=False, to_field_name="uuid"
    )
    active = forms.BooleanField(label=_("Active"), required=False, initial=True)

    def __init__(self, *args, people, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["theme"].queryset = NeedCategory.objects.filter(municipality=self.municipality)
        self.fields["theme"].label_from_instance = lambda c: c.label
        self.fields["members"].queryset = people
        self.fields["members"].label_from_instance = lambda u: u.display_name

    def clean_node(self):
        return self._node("node")


class RoutingRuleForm(_SettingsForm):
    category = forms.ModelChoiceField(
        label=_("Category"), queryset=NeedCategory.objects.none(), to_field_name="code"
    )
    node = _NodeCodeField(label=_("Under (unit code)"), help_text=_("Empty: the whole municipality."))
    target = forms.ChoiceField(label=_("Send to"), choices=())
    user = forms.ModelChoiceField(label=_("Person"), queryset=None, required=False, to_field_name="uuid")
    group = forms.ModelChoiceField(
        label=_("Working group"), queryset=None, required=False, to_field_name="uuid"
    )
    office = forms.ModelChoiceField(label=_("Office"), queryset=None, required=False, to_field_name="uuid")
    order = forms.IntegerField(label=_("Order"), min_value=0, max_value=999, initial=0)

    def __init__(self, *args, people, groups, offices, targets, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["category"].queryset = NeedCategory.objects.filter(municipality=self.municipality)
        self.fields["category"].label_from_instance = lambda c: c.label
        self.fields["target"].choices = targets
        self.fields["user"].queryset = people
        self.fields["user"].label_from_instance = lambda u: u.display_name
        self.fields["group"].queryset = groups
        self.fields["office"].queryset = offices

    def clean_node(self):
        return self._node("node")


class DeadlineForm(_SettingsForm):
    category = forms.ModelChoiceField(
        label=_("Category"),
        queryset=NeedCategory.objects.none(),
        required=False,
        to_field_name="code",
        empty_label=_("Every category"),
    )
    urgency = forms.ChoiceField(label=_("Urgency"), choices=Urgency.choices)
    ack_hours = forms.DecimalField(
        label=_("Hours to acknowledge"), min_value=0.05, max_value=8760, decimal_places=2
    )
    resolve_hours = forms.DecimalField(
        label=_("Hours to resolve"), min_value=0.05, max_value=8760, decimal_places=2
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["category"].queryset = NeedCategory.objects.filter(municipality=self.municipality)
        self.fields["category"].label_from_instance = lambda c: c.label

    def minutes(self) -> tuple[int, int]:
        data = self.cleaned_data
        return round(data["ack_hours"] * 60), round(data["resolve_hours"] * 60)
