"""Forms of the pages. They check the shape of the input; the services check the rules and do the writes."""

from __future__ import annotations

from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from redes.accounts.models import User
from redes.accounts.roles import ROLE_NODE_KINDS, Perm, Role
from redes.accounts.scoping import municipalities, scoped
from redes.audit.context import Channel
from redes.audit.models import Outcome
from redes.core.phones import normalize_phone
from redes.territories.models import Node, NodeKind

_TEXT = {"autocomplete": "off", "autocapitalize": "off", "spellcheck": "false"}


def _municipal_roles() -> list[tuple[str, str]]:
    """Roles that can be held inside a municipality (observers sit above municipalities)."""
    return [
        (role.value, role.label)
        for role in Role
        if ROLE_NODE_KINDS[role] & {NodeKind.MUNICIPALITY, NodeKind.UNIT}
    ]


class ChildForm(forms.Form):
    code = forms.CharField(label=_("Code"), max_length=32, widget=forms.TextInput(attrs=_TEXT))
    name = forms.CharField(label=_("Name"), max_length=200)


class RenameForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=200)
    code = forms.CharField(label=_("Code"), max_length=32, widget=forms.TextInput(attrs=_TEXT))


class MoveForm(forms.Form):
    parent_code = forms.CharField(
        label=_("Code of the new parent unit"), max_length=32, widget=forms.TextInput(attrs=_TEXT)
    )


class RemoveForm(forms.Form):
    cascade = forms.BooleanField(label=_("Also remove every unit below it"), required=False)
    confirm = forms.BooleanField(
        label=_("Yes, remove this unit"),
        error_messages={"required": _("Tick the box to confirm the removal.")},
    )


class AssignLiaisonForm(forms.Form):
    full_name = forms.CharField(label=_("Full name"), max_length=200)
    phone = forms.CharField(
        label=_("Contact phone"),
        max_length=32,
        required=False,
        help_text=_("10 digits, e.g. 81 1234 5678."),
        widget=forms.TextInput(attrs={"type": "tel", "autocomplete": "off", "inputmode": "tel"}),
    )
    user = forms.ModelChoiceField(
        label=_("User account"),
        queryset=User.objects.none(),
        required=False,
        to_field_name="uuid",
        empty_label=_("(none)"),
        help_text=_("People who hold a role at this unit. Create their account first under Users."),
    )
    start_date = forms.DateField(label=_("From"), widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args, node: Node, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["user"].queryset = (
            User.objects.filter(is_active=True, memberships__node=node, memberships__ended_at__isnull=True)
            .distinct()
            .order_by("full_name", "username")
        )
        self.fields["user"].label_from_instance = lambda u: f"{u.display_name} ({u.username})"
        if not self.is_bound:
            self.initial.setdefault("start_date", timezone.localdate())

    def clean_phone(self) -> str:
        phone = self.cleaned_data["phone"].strip()
        return normalize_phone(phone) if phone else ""


class EndLiaisonForm(forms.Form):
    reason = forms.CharField(label=_("Reason"), max_length=200)


class _NodeByCodeMixin:
    """A municipality and the code of one of its nodes, both within what the acting user manages."""

    actor: User

    def _setup_place(self, actor: User) -> None:
        self.actor = actor
        qs = municipalities(actor, Perm.MANAGE_USERS).order_by("name")
        self.fields["municipality"].queryset = qs
        if len(qs) == 1:
            self.fields["municipality"].initial = qs[0].uuid
            self.fields["municipality"].widget = forms.HiddenInput()

    def clean_place(self, cleaned: dict) -> None:
        municipality, code = cleaned.get("municipality"), (cleaned.get("node_code") or "").strip()
        if municipality is None or not code:
            return
        node = (
            scoped(Node.objects.select_related("municipality"), self.actor, Perm.MANAGE_USERS)
            .filter(municipality=municipality, code__iexact=code)
            .first()
        )
        if node is None:
            self.add_error(
                "node_code",
                _("No unit with the code “%(code)s” in %(municipality)s that you manage.")
                % {"code": code, "municipality": municipality.name},
            )
        cleaned["node"] = node


class GrantMembershipForm(_NodeByCodeMixin, forms.Form):
    municipality = forms.ModelChoiceField(
        label=_("Municipality"), queryset=None, to_field_name="uuid", empty_label=None
    )
    node_code = forms.CharField(
        label=_("Where: code of the unit"),
        max_length=32,
        help_text=_("The municipality's own key (e.g. 19021) or a unit's code (e.g. S01)."),
        widget=forms.TextInput(attrs=_TEXT),
    )
    role = forms.ChoiceField(label=_("Role"), choices=())

    def __init__(self, *args, actor: User, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["role"].choices = [("", _("Choose a role"))] + _municipal_roles()
        self._setup_place(actor)

    def clean(self):
        cleaned = super().clean()
        self.clean_place(cleaned)
        return cleaned


class UserCreateForm(GrantMembershipForm):
    username = forms.CharField(label=_("Username"), max_length=150, widget=forms.TextInput(attrs=_TEXT))
    full_name = forms.CharField(label=_("Full name"), max_length=200)
    phone = forms.CharField(
        label=_("Phone"),
        max_length=32,
        required=False,
        widget=forms.TextInput(attrs={"type": "tel", "autocomplete": "off", "inputmode": "tel"}),
    )
    email = forms.EmailField(label=_("Email"), required=False)
    password1 = forms.CharField(
        label=_("Password"), strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "new-password"})
    )
    password2 = forms.CharField(
        label=_("Password again"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    field_order = [
        "username",
        "full_name",
        "phone",
        "email",
        "password1",
        "password2",
        "municipality",
        "node_code",
        "role",
    ]

    def clean_phone(self) -> str:
        phone = self.cleaned_data["phone"].strip()
        return normalize_phone(phone) if phone else ""

    def clean(self):
        cleaned = super().clean()
        if (
            cleaned.get("password1")
            and cleaned.get("password2")
            and cleaned["password1"] != cleaned["password2"]
        ):
            self.add_error("password2", _("The two passwords are different."))
        return cleaned


class AuditFilterForm(forms.Form):
    action = forms.CharField(
        label=_("Action"), required=False, max_length=64, widget=forms.TextInput(attrs=_TEXT)
    )
    user = forms.CharField(
        label=_("User"), required=False, max_length=150, widget=forms.TextInput(attrs=_TEXT)
    )
    outcome = forms.ChoiceField(
        label=_("Outcome"), required=False, choices=[("", _("Any"))] + list(Outcome.choices)
    )
    channel = forms.ChoiceField(
        label=_("Channel"), required=False, choices=[("", _("Any"))] + list(Channel.choices)
    )
    since = forms.DateField(label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(label=_("Until"), required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self):
        cleaned = super().clean()
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and until < since:
            raise ValidationError(_("The end date is before the start date."))
        return cleaned


class LoginForm(AuthenticationForm):
    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": _(
            "The username or password is not right. Check them and try again; capital letters count."
        ),
        "inactive": _("This account is disabled. Ask your municipal coordination."),
    }
