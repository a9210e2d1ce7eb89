"""Forms of the messaging pages: broadcasts, groups, message templates, flows, channel accounts, the console.

They check the shape of the input and give each field a clear message; the messaging services check every rule
again and do the writes (``messaging.broadcasts``, ``groups``, ``texts``, ``flows``, ``accounts``). Choices of
kinds are read from the models, so the forms follow them.
"""

from __future__ import annotations

import json

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from redes.accounts.roles import Role
from redes.messaging import accounts
from redes.messaging.models import Broadcast, Group, Medium, MessageTemplate, Provider

_TEXT = {"autocomplete": "off"}
_NUMERIC = {"inputmode": "numeric", "autocomplete": "off"}
#: The longest a cascade may wait for an acknowledgement: a week.
MAX_MINUTES = 7 * 24 * 60


def _minutes(label, initial, help_text=""):
    return forms.IntegerField(
        label=label,
        min_value=1,
        max_value=MAX_MINUTES,
        initial=initial,
        help_text=help_text,
        widget=forms.NumberInput(attrs=_NUMERIC),
        error_messages={"invalid": _("Enter a whole number of minutes.")},
    )


class BroadcastForm(forms.Form):
    title = forms.CharField(label=_("Title"), max_length=120, widget=forms.TextInput(attrs=_TEXT))
    body = forms.CharField(
        label=_("Message"),
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_("Short and clear: it may arrive as an SMS."),
    )
    node = forms.ModelChoiceField(label=_("Territory"), queryset=None, empty_label=None)
    target = forms.ChoiceField(label=_("To"), choices=Broadcast.Target.choices, initial="subtree")
    roles = forms.MultipleChoiceField(
        label=_("Roles"),
        required=False,
        choices=[(r.value, r.label) for r in Role if r not in (Role.NATIONAL_OBSERVER, Role.STATE_OBSERVER)],
        widget=forms.CheckboxSelectMultiple,
        help_text=_("When sending to people with a role."),
    )
    group = forms.ModelChoiceField(label=_("Group"), queryset=None, required=False)
    min_priority = forms.IntegerField(
        label=_("Households with priority at least"),
        required=False,
        min_value=0,
        max_value=1000,
        widget=forms.NumberInput(attrs=_NUMERIC),
        help_text=_("For a segment of households."),
    )
    vulnerable = forms.BooleanField(label=_("Only vulnerable households"), required=False)
    categories = forms.MultipleChoiceField(
        label=_("With an open need of"), required=False, choices=(), widget=forms.CheckboxSelectMultiple
    )
    cascade = forms.BooleanField(
        label=_("Cascade down the liaison tree, with acknowledgements"),
        required=False,
        help_text=_("Sector liaisons acknowledge and relay to block liaisons, who relay to households."),
    )
    reach_households = forms.BooleanField(label=_("The last level sends to the households"), required=False)
    ack_minutes = _minutes(_("Minutes to acknowledge"), 60, _("After this a node is overdue and escalated."))
    remind_minutes = _minutes(_("Remind after (minutes)"), 30)
    template = forms.ModelChoiceField(
        label=_("WhatsApp template (outside the 24-hour window)"),
        queryset=None,
        required=False,
        help_text=_("Only approved templates reach people who have not written in the last 24 hours."),
    )

    def __init__(self, *args, nodes, groups, templates, categories=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["node"].queryset = nodes
        self.fields["node"].label_from_instance = lambda n: f"{n.code} · {n.name}"
        self.fields["group"].queryset = groups
        self.fields["template"].queryset = templates
        self.fields["template"].label_from_instance = lambda t: (
            f"{t.whatsapp_name or t.key} ({t.get_whatsapp_status_display()})"
        )
        if categories:
            self.fields["categories"].choices = list(categories)
        else:
            del self.fields["categories"]

    def clean(self):
        data = super().clean()
        target = data.get("target")
        if target == Broadcast.Target.ROLE and not data.get("roles"):
            self.add_error("roles", _("Choose at least one role."))
        if target == Broadcast.Target.GROUP and not data.get("group"):
            self.add_error("group", _("Choose the group."))
        ack, remind = data.get("ack_minutes"), data.get("remind_minutes")
        if data.get("cascade") and ack and remind and remind >= ack:
            self.add_error("remind_minutes", _("The reminder must come before the deadline."))
        return data

    def service_arguments(self) -> dict:
        data = self.cleaned_data
        segment = {}
        if data["target"] == Broadcast.Target.SEGMENT:
            if data.get("min_priority") is not None:
                segment["min_priority"] = data["min_priority"]
            if data.get("vulnerable"):
                segment["vulnerable"] = True
            if data.get("categories"):
                segment["categories"] = list(data["categories"])
        return {
            "node": data["node"],
            "title": data["title"],
            "body": data["body"],
            "target": data["target"],
            "roles": tuple(data.get("roles") or ()),
            "group": data.get("group"),
            "segment": segment or None,
            "cascade": data.get("cascade", False),
            "reach_households": data.get("reach_households", False),
            "ack_minutes": data["ack_minutes"],
            "remind_minutes": data["remind_minutes"],
            "template": data.get("template"),
        }


class GroupForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=120, widget=forms.TextInput(attrs=_TEXT))
    kind = forms.ChoiceField(label=_("Kind"), choices=Group.Kind.choices)
    medium = forms.ChoiceField(
        label=_("App"),
        choices=[(Medium.WHATSAPP, Medium.WHATSAPP.label), (Medium.TELEGRAM, Medium.TELEGRAM.label)],
        initial=Medium.WHATSAPP,
    )
    node = forms.ModelChoiceField(label=_("Territory"), queryset=None, empty_label=None)
    working_group = forms.ModelChoiceField(
        label=_("Working group"), queryset=None, required=False, help_text=_("For theme groups.")
    )
    invite_link = forms.URLField(
        label=_("Invite link"), required=False, assume_scheme="https", widget=forms.URLInput(attrs=_TEXT)
    )
    rules = forms.CharField(label=_("Rules"), required=False, widget=forms.Textarea(attrs={"rows": 4}))
    moderators = forms.ModelMultipleChoiceField(
        label=_("Moderators"), queryset=None, required=False, widget=forms.CheckboxSelectMultiple
    )
    active = forms.BooleanField(label=_("Active"), required=False, initial=True)

    def __init__(self, *args, nodes, working_groups, users, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["node"].queryset = nodes
        self.fields["node"].label_from_instance = lambda n: f"{n.code} · {n.name}"
        self.fields["working_group"].queryset = working_groups
        self.fields["moderators"].queryset = users
        self.fields["moderators"].label_from_instance = lambda u: u.display_name


class TemplateForm(forms.Form):
    key = forms.SlugField(
        label=_("Key"),
        max_length=60,
        help_text=_("Letters, numbers and underscores; how the system refers to the text."),
        widget=forms.TextInput(attrs=_TEXT),
    )
    name = forms.CharField(label=_("Name"), max_length=120, widget=forms.TextInput(attrs=_TEXT))
    body = forms.CharField(
        label=_("Text"),
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text=_("Placeholders in braces, e.g. {reference}, are filled in when the message is sent."),
    )
    whatsapp_name = forms.CharField(
        label=_("WhatsApp template name"), max_length=120, required=False, widget=forms.TextInput(attrs=_TEXT)
    )
    whatsapp_language = forms.CharField(
        label=_("WhatsApp template language"),
        max_length=10,
        initial="es_MX",
        widget=forms.TextInput(attrs=_TEXT),
    )
    whatsapp_status = forms.ChoiceField(
        label=_("WhatsApp approval"), required=False, choices=MessageTemplate.WhatsAppStatus.choices
    )

    def __init__(self, *args, editing: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if editing:
            self.fields["key"].disabled = True


class FlowForm(forms.Form):
    definition = forms.CharField(
        label=_("Definition (JSON)"),
        widget=forms.Textarea(attrs={"rows": 24, "spellcheck": "false", "class": "messaging-code"}),
        max_length=200_000,
    )

    def clean_definition(self):
        raw = self.cleaned_data["definition"]
        try:
            value = json.loads(raw)
        except ValueError as exc:
            raise ValidationError(
                _("This is not valid JSON (line %(line)s, column %(column)s): %(problem)s"),
                code="json",
                params={
                    "line": getattr(exc, "lineno", "?"),
                    "column": getattr(exc, "colno", "?"),
                    "problem": getattr(exc, "msg", str(exc)),
                },
            ) from exc
        if not isinstance(value, dict):
            raise ValidationError(_("The definition must be a JSON object."), code="not_object")
        return value


#: Secrets each provider needs (write-only fields) and its settings, as ``messaging.accounts`` defines them.
PROVIDER_SECRETS = accounts.SECRET_KEYS
PROVIDER_CONFIG = accounts.CONFIG_KEYS
SECRET_LABELS = {
    "access_token": _("Access token"),
    "app_secret": _("App secret"),
    "verify_token": _("Verify token"),
    "auth_token": _("Auth token"),
    "api_key": _("API key"),
    "webhook_secret": _("Webhook secret"),
    "bot_token": _("Bot token"),
}
CONFIG_LABELS = {
    "api_base": _("API base URL"),
    "api_version": _("API version"),
    "phone_number_id": _("Phone number id"),
    "account_sid": _("Account SID"),
    "from_number": _("Sender number"),
    "send_url": _("Send URL"),
    "messaging_service_sid": _("Messaging service SID"),
}


def config_keys() -> list[str]:
    return sorted({key for keys in PROVIDER_CONFIG.values() for key in keys})


def secret_keys() -> list[str]:
    return sorted({key for keys in PROVIDER_SECRETS.values() for key in keys})


class AccountForm(forms.Form):
    provider = forms.ChoiceField(label=_("Provider"), choices=Provider.choices)
    name = forms.CharField(label=_("Name"), max_length=80, widget=forms.TextInput(attrs=_TEXT))
    address = forms.CharField(
        label=_("Number or bot"), max_length=64, required=False, widget=forms.TextInput(attrs=_TEXT)
    )
    rate_per_second = forms.FloatField(
        label=_("Messages per second"), min_value=0.1, max_value=1000, initial=80.0
    )
    burst = forms.IntegerField(label=_("Burst"), min_value=1, max_value=10000, initial=80)
    active = forms.BooleanField(label=_("Active"), required=False, initial=True)

    def __init__(self, *args, editing: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        for key in config_keys():
            self.fields[f"config_{key}"] = forms.CharField(
                label=CONFIG_LABELS.get(key, key),
                required=False,
                max_length=300,
                widget=forms.TextInput(attrs=_TEXT),
            )
        for key in secret_keys():
            self.fields[f"secret_{key}"] = forms.CharField(
                label=SECRET_LABELS.get(key, key),
                required=False,
                max_length=500,
                widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}, render_value=False),
                help_text=_("Write-only: leave empty to keep the saved value."),
            )
        if editing:
            self.fields["provider"].disabled = True

    def config(self) -> dict:
        provider = self.cleaned_data["provider"]
        return {
            key: self.cleaned_data[f"config_{key}"].strip()
            for key in PROVIDER_CONFIG.get(Provider(provider), ())
            if self.cleaned_data.get(f"config_{key}", "").strip()
        }

    def secrets(self) -> dict:
        provider = self.cleaned_data["provider"]
        return {
            key: self.cleaned_data[f"secret_{key}"]
            for key in PROVIDER_SECRETS.get(Provider(provider), ())
            if self.cleaned_data.get(f"secret_{key}")
        }


class ConsoleForm(forms.Form):
    number = forms.CharField(
        label=_("Phone number"),
        max_length=40,
        widget=forms.TextInput(attrs={"inputmode": "tel", "autocomplete": "off"}),
    )
    text = forms.CharField(
        label=_("Message"), max_length=4096, required=False, widget=forms.TextInput(attrs=_TEXT)
    )
    lat = forms.FloatField(label=_("Latitude"), required=False, min_value=-90, max_value=90)
    lon = forms.FloatField(label=_("Longitude"), required=False, min_value=-180, max_value=180)

    def clean(self):
        data = super().clean()
        has_point = data.get("lat") is not None and data.get("lon") is not None
        if (data.get("lat") is None) != (data.get("lon") is None):
            self.add_error(None, _("Give both latitude and longitude, or neither."))
        elif not (data.get("text") or "").strip() and not has_point:
            self.add_error("text", _("Write a message or share a location."))
        return data
