"""Forms of the aid pages (donors, donations, sites, stock moves, package templates, campaigns, deliveries).

They check the shape of the input and give each field a clear message (a negative or fractional quantity where
the unit is whole is refused here already); the aid services check every rule again and do the writes
(``aid.services``). Choices of kinds and units are read from the model fields, so the forms follow the models.
"""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

_TEXT = {"autocomplete": "off"}
_DECIMAL = {"inputmode": "decimal", "autocomplete": "off"}
_NUMERIC = {"inputmode": "numeric", "autocomplete": "off"}

#: How many item lines a donation or a package template form shows.
DONATION_LINES = 6
TEMPLATE_LINES = 8


def field_choices(model, name: str, blank: str | None = None) -> list[tuple[str, str]]:
    """The choices of a model field (so a form follows the model's kinds)."""
    choices = list(model._meta.get_field(name).choices or [])
    return [("", blank)] + choices if blank is not None else choices


def check_quantity(item, quantity: Decimal | None, *, signed: bool = False) -> None:
    """A clear message for a quantity that can never be right for this item."""
    if quantity is None:
        return
    if not signed and quantity <= 0:
        raise ValidationError(_("The quantity must be more than zero."), code="not_positive")
    if signed and quantity == 0:
        raise ValidationError(_("The quantity must not be zero."), code="zero")
    if item is not None and getattr(item, "whole_units", False) and quantity != quantity.to_integral_value():
        raise ValidationError(
            _("%(item)s is counted in whole units: the quantity cannot have a fraction.")
            % {"item": item.name},
            code="fractional",
        )


def _quantity_field(label, required=True) -> forms.DecimalField:
    return forms.DecimalField(
        label=label,
        required=required,
        max_digits=12,
        decimal_places=3,
        widget=forms.TextInput(attrs=_DECIMAL),
        error_messages={"invalid": _("Enter a number, e.g. 12 or 2.5.")},
    )


# ----------------------------------------------------------------------------------------------- catalogue


class ItemForm(forms.Form):
    code = forms.CharField(label=_("Code"), max_length=30, widget=forms.TextInput(attrs=_TEXT))
    name = forms.CharField(label=_("Name"), max_length=120)
    unit = forms.ChoiceField(label=_("Unit"))
    whole_units = forms.BooleanField(label=_("Counted in whole units"), required=False, initial=True)
    kcal = forms.DecimalField(
        label=_("kcal per unit"),
        required=False,
        min_value=0,
        max_digits=10,
        decimal_places=2,
        widget=forms.TextInput(attrs=_DECIMAL),
    )
    protein_g = forms.DecimalField(
        label=_("Protein (g) per unit"),
        required=False,
        min_value=0,
        max_digits=10,
        decimal_places=2,
        widget=forms.TextInput(attrs=_DECIMAL),
    )
    fat_g = forms.DecimalField(
        label=_("Fat (g) per unit"),
        required=False,
        min_value=0,
        max_digits=10,
        decimal_places=2,
        widget=forms.TextInput(attrs=_DECIMAL),
    )

    def __init__(self, *args, **kwargs):
        from redes.aid.models import Item

        super().__init__(*args, **kwargs)
        self.fields["unit"].choices = field_choices(Item, "unit")


# -------------------------------------------------------------------------------------------------- donors


class DonorForm(forms.Form):
    kind = forms.ChoiceField(label=_("Kind of donor"))
    name = forms.CharField(label=_("Name"), max_length=200)
    public_name = forms.CharField(
        label=_("Public name"),
        max_length=200,
        required=False,
        help_text=_("Shown on the public pages. Leave it blank to show “anonymous donor”."),
    )
    contact_name = forms.CharField(label=_("Contact person"), max_length=200, required=False)
    phone = forms.CharField(
        label=_("Phone"), max_length=30, required=False, widget=forms.TextInput(attrs={"type": "tel"})
    )
    email = forms.EmailField(label=_("Email"), required=False)

    def __init__(self, *args, **kwargs):
        from redes.aid.models import Donor

        super().__init__(*args, **kwargs)
        self.fields["kind"].choices = field_choices(Donor, "kind")


class DonationForm(forms.Form):
    """A donation: an existing donor or a new one written inline, the site, the lines, an optional pledge."""

    donor = forms.ModelChoiceField(
        label=_("Donor"), queryset=None, required=False, empty_label=_("New donor…")
    )
    new_donor_name = forms.CharField(label=_("Name of the new donor"), max_length=200, required=False)
    new_donor_kind = forms.ChoiceField(label=_("Kind of donor"), required=False)
    new_donor_public_name = forms.CharField(
        label=_("Public name of the new donor"),
        max_length=200,
        required=False,
        help_text=_("Shown on the public pages. Leave it blank to show “anonymous donor”."),
    )
    site = forms.ModelChoiceField(label=_("Received at"), queryset=None, required=False, empty_label="—")
    kind = forms.ChoiceField(label=_("Kind of donation"))
    pledge_mxn = forms.DecimalField(
        label=_("Money pledged (MXN)"),
        required=False,
        min_value=Decimal("0.01"),
        max_digits=14,
        decimal_places=2,
        widget=forms.TextInput(attrs=_DECIMAL),
        help_text=_("Recorded only: redes does not process payments."),
    )
    note = forms.CharField(
        label=_("Note"), max_length=500, required=False, widget=forms.Textarea(attrs={"rows": 2})
    )

    def __init__(self, *args, donors, sites, items, lines: int = DONATION_LINES, **kwargs):
        from redes.aid.models import Donation, Donor

        super().__init__(*args, **kwargs)
        self.fields["donor"].queryset = donors
        self.fields["site"].queryset = sites
        self.fields["kind"].choices = field_choices(Donation, "kind")
        self.fields["new_donor_kind"].choices = field_choices(Donor, "kind")
        self.line_count = lines
        for i in range(lines):
            self.fields[f"item{i}"] = forms.ModelChoiceField(
                label=_("Item"), queryset=items, required=False, empty_label="—"
            )
            self.fields[f"quantity{i}"] = _quantity_field(_("Quantity"), required=False)

    @property
    def line_rows(self):
        return [{"item": self[f"item{i}"], "quantity": self[f"quantity{i}"]} for i in range(self.line_count)]

    @property
    def head_fields(self):
        return [self[name] for name in ("donor", "new_donor_name", "new_donor_kind", "new_donor_public_name")]

    @property
    def tail_fields(self):
        return [self[name] for name in ("site", "kind", "pledge_mxn", "note")]

    def clean(self):
        data = super().clean()
        if not data.get("donor") and not (data.get("new_donor_name") or "").strip():
            self.add_error("new_donor_name", _("Choose a donor or write the name of a new one."))
        lines = []
        seen = set()
        for i in range(self.line_count):
            item, quantity = data.get(f"item{i}"), data.get(f"quantity{i}")
            if item is None and quantity is None:
                continue
            if item is None:
                self.add_error(f"item{i}", _("Choose the item of this quantity."))
                continue
            if quantity is None:
                self.add_error(
                    f"quantity{i}", _("Write how much of %(item)s was received.") % {"item": item.name}
                )
                continue
            try:
                check_quantity(item, quantity)
            except ValidationError as exc:
                self.add_error(f"quantity{i}", exc)
                continue
            if item.pk in seen:
                self.add_error(
                    f"item{i}", _("%(item)s is on two lines: write it once.") % {"item": item.name}
                )
                continue
            seen.add(item.pk)
            lines.append((item, quantity))
        data["lines"] = lines
        is_pledge = data.get("kind") and data.get("kind") != "in_kind"
        if is_pledge and not data.get("pledge_mxn"):
            self.add_error("pledge_mxn", _("Write the amount pledged."))
        if not is_pledge and not lines and not self.errors:
            raise ValidationError(_("Add at least one item with its quantity."))
        return data


# --------------------------------------------------------------------------------------------------- sites


class SiteForm(forms.Form):
    kind = forms.ChoiceField(label=_("Kind of site"))
    name = forms.CharField(label=_("Name"), max_length=200)
    node = forms.ModelChoiceField(
        label=_("Area it serves"),
        queryset=None,
        empty_label=None,
        help_text=_("The unit of the territory it serves."),
    )
    address = forms.CharField(label=_("Address"), max_length=300, required=False)
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
    schedule = forms.CharField(
        label=_("Schedule"),
        max_length=300,
        required=False,
        help_text=_("E.g. Monday to Friday, 13:00 to 16:00."),
    )
    portions_per_day = forms.IntegerField(
        label=_("Portions per day"),
        required=False,
        min_value=0,
        widget=forms.TextInput(attrs=_NUMERIC),
        help_text=_("Community kitchens only."),
    )
    public = forms.BooleanField(label=_("Show on the public map"), required=False, initial=True)
    active = forms.BooleanField(label=_("Active"), required=False, initial=True)

    def __init__(self, *args, nodes, **kwargs):
        from redes.aid.models import Site

        super().__init__(*args, **kwargs)
        self.fields["kind"].choices = field_choices(Site, "kind")
        self.fields["node"].queryset = nodes
        self.fields["node"].label_from_instance = lambda n: f"{n.code} · {n.name}"

    def clean(self):
        data = super().clean()
        if (data.get("lat") is None) != (data.get("lon") is None):
            raise ValidationError(_("Give both latitude and longitude, or neither."))
        return data


class ReceiveForm(forms.Form):
    """Stock received at a site: a donation of one item from a donor."""

    donor = forms.ModelChoiceField(label=_("Donor"), queryset=None, empty_label=None)
    item = forms.ModelChoiceField(label=_("Item"), queryset=None, empty_label=None)
    quantity = _quantity_field(_("Quantity"))

    def __init__(self, *args, donors, items, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["donor"].queryset = donors
        self.fields["item"].queryset = items

    def clean(self):
        data = super().clean()
        try:
            check_quantity(data.get("item"), data.get("quantity"))
        except ValidationError as exc:
            self.add_error("quantity", exc)
        return data


class TransferForm(forms.Form):
    to_site = forms.ModelChoiceField(label=_("To site"), queryset=None, empty_label=None)
    item = forms.ModelChoiceField(label=_("Item"), queryset=None, empty_label=None)
    quantity = _quantity_field(_("Quantity"))

    def __init__(self, *args, sites, items, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["to_site"].queryset = sites
        self.fields["item"].queryset = items

    def clean(self):
        data = super().clean()
        try:
            check_quantity(data.get("item"), data.get("quantity"))
        except ValidationError as exc:
            self.add_error("quantity", exc)
        return data


class AdjustForm(forms.Form):
    item = forms.ModelChoiceField(label=_("Item"), queryset=None, empty_label=None)
    quantity = _quantity_field(_("Change"))
    reason = forms.CharField(
        label=_("Reason"), max_length=300, help_text=_("Required: e.g. spoiled, counted again, lost.")
    )

    def __init__(self, *args, items, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["item"].queryset = items
        self.fields["quantity"].help_text = _("Negative to take out (e.g. -3), positive to add.")

    def clean(self):
        data = super().clean()
        try:
            check_quantity(data.get("item"), data.get("quantity"), signed=True)
        except ValidationError as exc:
            self.add_error("quantity", exc)
        return data


class LedgerFilterForm(forms.Form):
    site = forms.ModelChoiceField(label=_("Site"), queryset=None, required=False, empty_label=_("All sites"))
    item = forms.ModelChoiceField(label=_("Item"), queryset=None, required=False, empty_label=_("All items"))
    kind = forms.ChoiceField(label=_("Movement"), required=False)

    def __init__(self, *args, sites, items, **kwargs):
        from redes.aid.models import StockEntry

        super().__init__(*args, **kwargs)
        self.fields["site"].queryset = sites
        self.fields["item"].queryset = items
        self.fields["kind"].choices = field_choices(StockEntry, "kind", blank=_("All movements"))


# ----------------------------------------------------------------------------------------------- templates


class PackageTemplateForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=120)
    persons = forms.IntegerField(
        label=_("Persons"), min_value=1, initial=4, widget=forms.TextInput(attrs=_NUMERIC)
    )
    days = forms.IntegerField(label=_("Days"), min_value=1, initial=7, widget=forms.TextInput(attrs=_NUMERIC))

    def __init__(self, *args, items, lines: int = TEMPLATE_LINES, **kwargs):
        super().__init__(*args, **kwargs)
        self.line_count = lines
        for i in range(lines):
            self.fields[f"item{i}"] = forms.ModelChoiceField(
                label=_("Item"), queryset=items, required=False, empty_label="—"
            )
            self.fields[f"quantity{i}"] = _quantity_field(_("Quantity"), required=False)

    @property
    def line_rows(self):
        return [{"item": self[f"item{i}"], "quantity": self[f"quantity{i}"]} for i in range(self.line_count)]

    def clean(self):
        data = super().clean()
        lines, seen = [], set()
        for i in range(self.line_count):
            item, quantity = data.get(f"item{i}"), data.get(f"quantity{i}")
            if item is None and quantity is None:
                continue
            if item is None or quantity is None:
                self.add_error(
                    f"quantity{i}" if item else f"item{i}", _("Give both the item and its quantity.")
                )
                continue
            try:
                check_quantity(item, quantity)
            except ValidationError as exc:
                self.add_error(f"quantity{i}", exc)
                continue
            if item.pk in seen:
                self.add_error(
                    f"item{i}", _("%(item)s is on two lines: write it once.") % {"item": item.name}
                )
                continue
            seen.add(item.pk)
            lines.append((item, quantity))
        if not lines and not self.errors:
            raise ValidationError(_("A package needs at least one item."))
        data["lines"] = lines
        return data


# ----------------------------------------------------------------------------------------------- campaigns


class CampaignForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=200)
    template = forms.ModelChoiceField(label=_("Package"), queryset=None, empty_label=None)
    node = forms.ModelChoiceField(
        label=_("Territory"),
        queryset=None,
        empty_label=None,
        help_text=_("Households below this unit take part."),
    )
    min_priority = forms.IntegerField(
        label=_("Minimum priority"),
        min_value=0,
        max_value=100,
        initial=0,
        widget=forms.TextInput(attrs=_NUMERIC),
        help_text=_("Only households with at least this priority score are eligible."),
    )
    need_categories = forms.MultipleChoiceField(
        label=_("With an open need in these categories"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    include_without_needs = forms.BooleanField(
        label=_("Also households without an open need"), required=False, initial=True
    )
    seed = forms.IntegerField(
        label=_("Lottery seed"),
        required=False,
        min_value=0,
        widget=forms.TextInput(attrs=_NUMERIC),
        help_text=_("Ties are broken by a lottery with this seed; the same seed gives the same result."),
    )

    def __init__(self, *args, templates, nodes, categories=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["template"].queryset = templates
        self.fields["node"].queryset = nodes
        self.fields["node"].label_from_instance = lambda n: f"{n.code} · {n.name}"
        self.fields["need_categories"].choices = list(categories)
        if not categories:
            del self.fields["need_categories"]


# ------------------------------------------------------------------------------------------------ delivery


class DeliveryForm(forms.Form):
    code = forms.CharField(
        label=_("Entitlement code"),
        max_length=40,
        widget=forms.TextInput(
            attrs={
                "autocomplete": "off",
                "autocapitalize": "characters",
                "spellcheck": "false",
                "inputmode": "text",
            }
        ),
    )
    mode = forms.ChoiceField(label=_("Where"), widget=forms.RadioSelect)
    site = forms.ModelChoiceField(
        label=_("Site"),
        queryset=None,
        required=False,
        empty_label="—",
        help_text=_("Needed when the package is handed over at the site."),
    )
    photo = forms.FileField(label=_("Photo"), required=False, help_text=_("JPEG, PNG or WebP, at most 5 MB."))
    signature = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, sites, **kwargs):
        from redes.aid.models import Entitlement

        super().__init__(*args, **kwargs)
        self.fields["mode"].choices = field_choices(Entitlement, "delivery_mode")
        self.fields["mode"].initial = self.fields["mode"].choices[0][0] if self.fields["mode"].choices else ""
        self.fields["site"].queryset = sites
        self.fields["photo"].widget.attrs.update({"accept": "image/*", "capture": "environment"})

    def clean_code(self):
        from redes.aid import codes

        return codes.normalize(self.cleaned_data["code"])

    def clean_signature(self):
        value = self.cleaned_data.get("signature") or ""
        if value and not (value.startswith("data:image/png;base64,") or value.lstrip().startswith("<svg")):
            raise ValidationError(_("The signature could not be read; clear it and sign again."))
        if len(value) > 400_000:
            raise ValidationError(_("The signature is too large; clear it and sign again."))
        return value

    def clean(self):
        data = super().clean()
        if data.get("mode") == "site" and not data.get("site"):
            self.add_error("site", _("Choose the site where the package is handed over."))
        return data
