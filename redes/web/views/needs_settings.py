"""Needs settings of a municipality (coordinators, MANAGE_NEEDS): categories, offices and hotlines, working
groups, routing rules and the deadline table. Each form posts a ``section`` (and, to edit, the item's
``instance`` key); every save goes through ``needs.services``, which checks and audits again."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from redes.accounts import scoping
from redes.accounts.models import Membership, User
from redes.accounts.roles import Perm
from redes.audit.services import record_denied
from redes.needs import services
from redes.needs.models import (
    DEFAULT_DEADLINES,
    DeadlinePolicy,
    NeedCategory,
    Office,
    RoutingRule,
    Urgency,
    WorkingGroup,
)
from redes.territories.models import Node

from ..forms_needs import CategoryForm, DeadlineForm, OfficeForm, RoutingRuleForm, WorkingGroupForm
from .common import add_service_errors, audit_rejected, require_or_refuse
from .needs_common import pick_municipality

UNIT_CODES = 400
ANCHORS = {
    "category": "categories",
    "office": "offices",
    "group": "groups",
    "rule": "rules",
    "deadline": "deadlines",
}


def _people(municipality):
    ids = Membership.objects.active().filter(municipality=municipality).values("user_id")
    return User.objects.filter(pk__in=ids, is_active=True).order_by("full_name", "username")


def _lookup(model, municipality, key, field="uuid"):
    try:
        return model.objects.get(municipality=municipality, **{field: key})
    except (model.DoesNotExist, ValidationError, ValueError) as exc:
        raise Http404 from exc


def _hours(minutes: int) -> str:
    value = minutes / 60
    return f"{value:g}"


def _initial(section: str, item) -> dict:
    if section == "category":
        return {
            "code": item.code,
            "name": item.name,
            "parent": item.parent.code if item.parent_id else None,
            "sensitive": item.sensitive,
            "active": item.active,
            "order": item.order,
        }
    if section == "office":
        return {
            "name": item.name,
            "kind": item.kind,
            "phone": item.phone,
            "hours": item.hours,
            "categories": [c.code for c in item.categories.all()],
            "active": item.active,
        }
    if section == "group":
        return {
            "name": item.name,
            "node": "" if item.node_id == item.municipality.node_id else item.node.code,
            "theme": item.theme.code if item.theme_id else None,
            "members": [u.uuid for u in item.members.all()],
            "active": item.active,
        }
    return {}


class _Builder:
    """Builds the forms of one municipality's settings page (bound for the posted one)."""

    def __init__(self, municipality):
        self.municipality = municipality
        self.people = _people(municipality)
        self.groups = WorkingGroup.objects.filter(municipality=municipality, active=True)
        self.offices = Office.objects.filter(municipality=municipality, active=True)

    def form(self, section: str, data=None, initial=None, prefix=None):
        kwargs = {"municipality": self.municipality, "initial": initial, "prefix": prefix}
        if section == "category":
            return CategoryForm(data, **kwargs)
        if section == "office":
            return OfficeForm(data, **kwargs)
        if section == "group":
            return WorkingGroupForm(data, people=self.people, **kwargs)
        if section == "rule":
            return RoutingRuleForm(
                data,
                people=self.people,
                groups=self.groups,
                offices=self.offices,
                targets=RoutingRule.Target.choices,
                **kwargs,
            )
        if section == "deadline":
            return DeadlineForm(data, **kwargs)
        raise Http404


def _save(section: str, municipality, user, form, instance):
    data = form.cleaned_data
    if section == "category":
        return services.save_category(municipality, actor=user, instance=instance, **data)
    if section == "office":
        return services.save_office(municipality, actor=user, instance=instance, **data)
    if section == "group":
        return services.save_working_group(municipality, actor=user, instance=instance, **data)
    if section == "rule":
        return services.save_routing_rule(municipality, actor=user, instance=instance, **data)
    if section == "deadline":
        ack, resolve = form.minutes()
        return services.save_deadline_policy(
            municipality,
            actor=user,
            urgency=data["urgency"],
            category=data["category"],
            ack_minutes=ack,
            resolve_minutes=resolve,
        )
    raise Http404


_MODELS = {
    "category": (NeedCategory, "code"),
    "office": (Office, "uuid"),
    "group": (WorkingGroup, "uuid"),
    "rule": (RoutingRule, "uuid"),
}


def _deadline_rows(municipality) -> list[dict]:
    own = {
        (p.category_id, p.urgency): p
        for p in DeadlinePolicy.objects.filter(municipality=municipality).select_related("category")
    }
    rows = []
    for urgency, label in Urgency.choices:
        policy = own.get((None, urgency))
        ack, resolve = (
            (policy.ack_minutes, policy.resolve_minutes) if policy else DEFAULT_DEADLINES[Urgency(urgency)]
        )
        rows.append({"category": None, "urgency": label, "ack": _hours(ack), "resolve": _hours(resolve)})
    for (category_id, urgency), policy in sorted(own.items(), key=lambda kv: (str(kv[0][0]), kv[0][1])):
        if category_id is None:
            continue
        rows.append(
            {
                "category": policy.category.label,
                "urgency": Urgency(urgency).label,
                "ack": _hours(policy.ack_minutes),
                "resolve": _hours(policy.resolve_minutes),
            }
        )
    return rows


@login_required
@require_http_methods(["GET", "POST"])
def needs_settings(request):
    if not scoping.can(request.user, Perm.MANAGE_NEEDS):
        if request.method == "POST":
            record_denied(
                "needs.settings.update", actor=request.user, reason=f"missing permission {Perm.MANAGE_NEEDS}"
            )
        raise PermissionDenied
    municipality = pick_municipality(request, Perm.MANAGE_NEEDS)
    require_or_refuse(request, Perm.MANAGE_NEEDS, municipality.node, "needs.settings.update")
    user = request.user
    builder = _Builder(municipality)
    posted = None
    if request.method == "POST":
        section = request.POST.get("section", "")
        key = request.POST.get("instance", "")
        if section == "rule-delete":
            rule = _lookup(RoutingRule, municipality, key)
            services.delete_routing_rule(rule, actor=user)
            messages.success(request, _("Routing rule removed."))
            return redirect(f"{reverse('needs-settings')}?m={municipality.code}#rules")
        if section not in ("category", "office", "group", "rule", "deadline"):
            raise Http404
        instance = None
        if key and section in _MODELS:
            model, field = _MODELS[section]
            instance = _lookup(model, municipality, key, field)
        prefix = f"{section}-{key}" if key else section
        form = builder.form(section, request.POST, prefix=prefix)
        if not form.is_valid():
            audit_rejected(request, f"needs.{section}.save", form, obj=instance, municipality=municipality)
        else:
            try:
                _save(section, municipality, user, form, instance)
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                messages.success(request, _("Saved."))
                return redirect(f"{reverse('needs-settings')}?m={municipality.code}#{ANCHORS[section]}")
        posted = (section, key, form)

    def form_for(section, item=None):
        key = (
            (str(getattr(item, _MODELS[section][1])) if item is not None else "")
            if section in _MODELS
            else ""
        )
        if posted and posted[0] == section and posted[1] == key:
            return posted[2]
        prefix = f"{section}-{key}" if key else section
        return builder.form(section, initial=_initial(section, item) if item else None, prefix=prefix)

    categories = list(
        NeedCategory.objects.filter(municipality=municipality)
        .select_related("parent")
        .order_by("order", "code")
    )
    offices = list(Office.objects.filter(municipality=municipality).prefetch_related("categories"))
    groups = list(
        WorkingGroup.objects.filter(municipality=municipality)
        .select_related("node", "theme", "municipality")
        .prefetch_related("members")
    )
    rules = list(
        RoutingRule.objects.filter(municipality=municipality).select_related(
            "category", "node", "user", "group", "office"
        )
    )
    context = {
        "municipality": municipality,
        "categories": [(c, form_for("category", c)) for c in _tree(categories)],
        "offices": [(o, form_for("office", o)) for o in offices],
        "groups": [(g, form_for("group", g)) for g in groups],
        "rules": rules,
        "new": {s: form_for(s) for s in ("category", "office", "group", "rule", "deadline")},
        "deadlines": _deadline_rows(municipality),
        "unit_codes": list(
            Node.objects.filter(municipality=municipality)
            .order_by("depth", "code")
            .values_list("code", "name")[:UNIT_CODES]
        ),
        "open_section": posted[0] if posted else "",
    }
    return render(request, "web/needs/settings.html", context, status=200)


def _tree(categories: list[NeedCategory]) -> list[NeedCategory]:
    """Parents first, each followed by its children (``depth`` set for indenting)."""
    children: dict[int | None, list[NeedCategory]] = {}
    for c in categories:
        children.setdefault(c.parent_id, []).append(c)
    out: list[NeedCategory] = []

    def walk(parent_id, depth):
        for c in children.get(parent_id, []):
            if c in out:
                continue
            c.depth = depth
            out.append(c)
            walk(c.pk, depth + 1)

    walk(None, 0)
    out += [c for c in categories if c not in out]
    return out
