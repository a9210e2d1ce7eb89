"""Messaging set-up pages: the group registry, message templates, conversation flows, channel accounts and the
inbound log (payloads that could not be read, forged requests, messages whose processing failed).

The group registry is read by whoever broadcasts (``BROADCAST``) and edited by coordinators; everything else
needs ``MANAGE_MESSAGING`` at the municipality. Secrets of channel accounts are write-only: the pages never show
them. Writes go through the messaging services (``groups``, ``texts``, ``flows``, ``accounts``), which validate
and audit them.
"""

from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from redes.accounts import scoping
from redes.accounts.roles import Perm
from redes.messaging.models import ChannelAccount, Flow, Group, Inbound, MessageTemplate, WebhookLog
from redes.territories.models import Node, NodeKind

from . import common
from .messaging import get_or_404, manage_municipality, perm_municipality, queries, show
from .messaging_forms import AccountForm, FlowForm, GroupForm, TemplateForm

LOG_ROWS = 50


def _back(name: str, municipality, **kwargs) -> str:
    return f"{reverse(name, kwargs=kwargs or None)}?{urlencode({'m': str(municipality.uuid)})}"


# ------------------------------------------------------------------------------------------------- groups


def _group_form(request, municipality, data=None, initial=None) -> GroupForm:
    from redes.needs.models import WorkingGroup

    nodes = scoping.scoped(
        Node.objects.filter(municipality=municipality, kind__in=[NodeKind.MUNICIPALITY, NodeKind.UNIT]),
        request.user,
        Perm.MANAGE_MESSAGING,
    ).order_by("depth", "code")
    working_groups = WorkingGroup.objects.filter(municipality=municipality, active=True).order_by("name")
    users = (
        scoping.users(request.user, Perm.MANAGE_MESSAGING, active_memberships=True)
        .filter(memberships__municipality=municipality)
        .distinct()
        .order_by("full_name", "username")
    )
    return GroupForm(data, initial=initial, nodes=nodes, working_groups=working_groups, users=users)


@login_required
@require_GET
def groups(request):
    """The network's groups (WhatsApp, Telegram), filtered by territory and kind."""
    if not (scoping.can(request.user, Perm.BROADCAST) or scoping.can(request.user, Perm.MANAGE_MESSAGING)):
        raise PermissionDenied
    perm = Perm.MANAGE_MESSAGING if scoping.can(request.user, Perm.MANAGE_MESSAGING) else Perm.BROADCAST
    municipality, choices = perm_municipality(request, perm)
    qs = (
        queries()
        .groups_for(request.user)
        .filter(municipality=municipality)
        .select_related("node", "working_group")
        .prefetch_related("moderators")
    )
    kind = request.GET.get("kind") or ""
    if kind in Group.Kind.values:
        qs = qs.filter(kind=kind)
    else:
        kind = ""
    area = (request.GET.get("node") or "").strip()
    area_node = None
    if area:
        area_node = Node.objects.filter(municipality=municipality, code=area).first()
        qs = qs.filter(**{f"node__a{area_node.depth}": area_node.pk}) if area_node else qs.none()
    page = Paginator(qs.order_by("kind", "name"), common.PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "municipality": municipality,
        "municipalities": choices,
        "page": page,
        "kind": kind,
        "kinds": Group.Kind.choices,
        "area": area,
        "can_edit": scoping.can(request.user, Perm.MANAGE_MESSAGING, municipality.node),
    }
    return show(request, "web/messaging/groups.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def group_edit(request, uuid=None):
    """A new group, or changes to one."""
    from redes.messaging import groups as group_services

    action = "messaging.group.update" if uuid else "messaging.group.create"
    municipality, choices = manage_municipality(request, action)
    group = None
    initial = None
    if uuid:
        qs = queries().groups_for(request.user).filter(municipality=municipality)
        group = get_or_404(qs, uuid=uuid)
        initial = {
            "name": group.name,
            "kind": group.kind,
            "medium": group.medium,
            "node": group.node,
            "working_group": group.working_group,
            "invite_link": group.invite_link,
            "rules": group.rules,
            "moderators": list(group.moderators.all()),
            "active": group.active,
        }
    form = _group_form(request, municipality, request.POST or None, initial)
    if request.method == "POST" and not form.is_valid():
        common.audit_rejected(
            request, action, form, group, **({} if group else {"municipality": municipality})
        )
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        data["moderators"] = list(data["moderators"])
        try:
            saved = group_services.save_group(municipality, actor=request.user, group=group, **data)
        except ValidationError as exc:
            common.add_service_errors(form, exc)
        except PermissionDenied:
            form.add_error("node", _("You may not register groups in this territory."))
        else:
            messages.success(request, _("Group saved: %(name)s.") % {"name": saved.name})
            return redirect(_back("messaging-groups", municipality))
    context = {"municipality": municipality, "municipalities": choices, "form": form, "group": group}
    context.update(back_url=_back("messaging-groups", municipality), back_label=_("Groups"))
    return show(request, "web/messaging/group_form.html", context, 400 if form.errors else 200)


# ---------------------------------------------------------------------------------------------- templates


def _ensure_defaults(municipality) -> None:
    from redes.messaging import defaults

    defaults.ensure_defaults(municipality)


@login_required
@require_GET
def templates(request):
    municipality, choices = manage_municipality(request)
    _ensure_defaults(municipality)
    rows = (
        MessageTemplate.objects.filter(municipality=municipality).select_related("updated_by").order_by("key")
    )
    context = {"municipality": municipality, "municipalities": choices, "rows": list(rows)}
    return show(request, "web/messaging/templates.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def template_edit(request, key=None):
    from redes.messaging import texts

    municipality, choices = manage_municipality(request, "messaging.template.save")
    template = None
    initial = None
    if key:
        template = get_or_404(MessageTemplate.objects.filter(municipality=municipality), key=key)
        initial = {
            "key": template.key,
            "name": template.name,
            "body": template.body,
            "whatsapp_name": template.whatsapp_name,
            "whatsapp_language": template.whatsapp_language,
            "whatsapp_status": template.whatsapp_status,
        }
    form = TemplateForm(request.POST or None, initial=initial, editing=template is not None)
    if request.method == "POST" and not form.is_valid():
        common.audit_rejected(
            request,
            "messaging.template.save",
            form,
            template,
            **({} if template else {"municipality": municipality}),
        )
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        if (
            template is None
            and MessageTemplate.objects.filter(municipality=municipality, key=data["key"]).exists()
        ):
            form.add_error("key", _("A text with this key exists already: edit it instead."))
        else:
            try:
                texts.save_template(municipality, actor=request.user, **data)
            except ValidationError as exc:
                common.add_service_errors(form, exc)
            else:
                messages.success(request, _("Text saved."))
                return redirect(_back("messaging-templates", municipality))
    context = {"municipality": municipality, "municipalities": choices, "form": form, "template": template}
    context.update(back_url=_back("messaging-templates", municipality), back_label=_("Message texts"))
    return show(request, "web/messaging/template_form.html", context, 400 if form.errors else 200)


# -------------------------------------------------------------------------------------------------- flows


@login_required
@require_GET
def flows(request):
    municipality, choices = manage_municipality(request)
    _ensure_defaults(municipality)
    rows = Flow.objects.filter(municipality=municipality).select_related("updated_by").order_by("key")
    context = {"municipality": municipality, "municipalities": choices, "rows": list(rows)}
    return show(request, "web/messaging/flows.html", context)


def menu_preview(definition) -> list[dict]:
    """The flow's steps as people read them: each step's text and its numbered options (whatever the
    definition names them), for the editor's preview. Never raises on an odd definition."""
    steps = (definition.get("nodes") or definition.get("steps")) if isinstance(definition, dict) else None
    if isinstance(steps, dict):
        items = list(steps.items())
    elif isinstance(steps, list):
        items = [(s.get("id", i) if isinstance(s, dict) else i, s) for i, s in enumerate(steps)]
    else:
        items = []
    out = []
    for key, step in items:
        if not isinstance(step, dict):
            continue
        text = step.get("text") or step.get("prompt") or step.get("body") or ""
        options = step.get("options") or step.get("choices") or []
        shown = []
        if isinstance(options, dict):
            options = [{"key": k, **(v if isinstance(v, dict) else {"label": v})} for k, v in options.items()]
        if isinstance(options, list):
            for n, option in enumerate(options, 1):
                if isinstance(option, dict):
                    label = option.get("label") or option.get("text") or option.get("title") or ""
                    target = option.get("next") or option.get("goto") or option.get("action") or ""
                    shown.append({"key": option.get("key", n), "label": label, "target": target})
                else:
                    shown.append({"key": n, "label": str(option), "target": ""})
        out.append(
            {
                "id": key,
                "text": text if isinstance(text, str) else json.dumps(text, ensure_ascii=False),
                "kind": step.get("type") or step.get("kind") or step.get("input") or "",
                "action": step.get("action") or "",
                "options": shown,
            }
        )
    return out


@login_required
@require_http_methods(["GET", "POST"])
def flow_edit(request, key):
    """The JSON editor of a flow: "Check" lists the problems, "Save" stores a valid definition (new version)."""
    from redes.messaging import flows as flow_services

    municipality, choices = manage_municipality(request, "messaging.flow.save")
    _ensure_defaults(municipality)
    flow = get_or_404(Flow.objects.filter(municipality=municipality), key=key)
    initial = {"definition": json.dumps(flow.definition, ensure_ascii=False, indent=2)}
    form = FlowForm(request.POST or None, initial=initial)
    problems: list[str] = []
    checked = False
    definition = flow.definition
    if request.method == "POST" and not form.is_valid():
        common.audit_rejected(request, "messaging.flow.save", form, flow)
    if request.method == "POST" and form.is_valid():
        definition = form.cleaned_data["definition"]
        problems = list(flow_services.validate(definition))
        checked = True
        if request.POST.get("save") and not problems:
            try:
                saved = flow_services.save_flow(
                    municipality, actor=request.user, key=flow.key, definition=definition
                )
            except ValidationError as exc:
                problems = list(exc.messages)
            else:
                messages.success(request, _("Flow saved: version %(version)s.") % {"version": saved.version})
                return redirect(_back("messaging-flow", municipality, key=flow.key))
        if problems:
            form.add_error("definition", _("The flow has problems: nothing was saved."))
    context = {
        "municipality": municipality,
        "municipalities": choices,
        "flow": flow,
        "form": form,
        "problems": problems,
        "checked": checked,
        "preview": menu_preview(definition),
        "back_url": _back("messaging-flows", municipality),
        "back_label": _("Conversation menus"),
    }
    return show(request, "web/messaging/flow_form.html", context, 400 if form.errors else 200)


# ----------------------------------------------------------------------------------------- channel accounts


@login_required
@require_GET
def accounts(request):
    from redes.messaging import accounts as account_services

    municipality, choices = manage_municipality(request)
    account_services.console_account(municipality)
    rows = list(ChannelAccount.objects.filter(municipality=municipality).order_by("provider", "name"))
    for row in rows:
        row.has_secrets = bool(row.secrets)
        row.hook = ""
        if row.provider != "console":
            try:
                row.hook = request.build_absolute_uri(
                    reverse(f"messaging-hook-{row.provider}", args=[row.uuid])
                )
            except Exception:  # noqa: BLE001 (hooks not mounted: no URL to show)
                row.hook = ""
    context = {"municipality": municipality, "municipalities": choices, "rows": rows}
    return show(request, "web/messaging/accounts.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def account_edit(request, uuid=None):
    from redes.messaging import accounts as account_services

    action = "messaging.account.update" if uuid else "messaging.account.create"
    municipality, choices = manage_municipality(request, action)
    account = None
    initial = None
    if uuid:
        account = get_or_404(ChannelAccount.objects.filter(municipality=municipality), uuid=uuid)
        initial = {
            "provider": account.provider,
            "name": account.name,
            "address": account.address,
            "rate_per_second": account.rate_per_second,
            "burst": account.burst,
            "active": account.active,
        }
        for key, value in (account.config or {}).items():
            initial[f"config_{key}"] = value
    form = AccountForm(request.POST or None, initial=initial, editing=account is not None)
    if request.method == "POST" and not form.is_valid():
        common.audit_rejected(
            request, action, form, account, **({} if account else {"municipality": municipality})
        )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            saved = account_services.save_account(
                municipality,
                actor=request.user,
                account=account,
                provider=data["provider"],
                name=data["name"],
                address=data["address"],
                config=form.config(),
                secrets=form.secrets(),
                rate_per_second=data["rate_per_second"],
                burst=data["burst"],
                active=data["active"],
            )
        except ValidationError as exc:
            common.add_service_errors(form, exc)
        else:
            messages.success(request, _("Channel account saved: %(name)s.") % {"name": saved.name})
            return redirect(_back("messaging-accounts", municipality))
    context = {
        "municipality": municipality,
        "municipalities": choices,
        "form": form,
        "account": account,
        "back_url": _back("messaging-accounts", municipality),
        "back_label": _("Channel accounts"),
    }
    return show(request, "web/messaging/account_form.html", context, 400 if form.errors else 200)


# ---------------------------------------------------------------------------------------------- inbound log


@login_required
@require_GET
def inbound_log(request):
    """Requests the webhooks could not use (malformed, forged) and messages whose processing failed."""
    municipality, choices = manage_municipality(request)
    outcome = request.GET.get("outcome") or "problems"
    logs = WebhookLog.objects.filter(municipality=municipality).select_related("account")
    if outcome == "problems":
        logs = logs.filter(outcome__in=[WebhookLog.Outcome.MALFORMED, WebhookLog.Outcome.FORGED])
    elif outcome in WebhookLog.Outcome.values:
        logs = logs.filter(outcome=outcome)
    else:
        outcome = "all"
    page = Paginator(logs.order_by("-received_at", "-pk"), LOG_ROWS).get_page(request.GET.get("page"))
    failed = list(
        Inbound.objects.filter(municipality=municipality, state=Inbound.State.FAILED)
        .select_related("account")
        .order_by("-received_at", "-pk")[:LOG_ROWS]
    )
    context = {
        "municipality": municipality,
        "municipalities": choices,
        "page": page,
        "failed": failed,
        "outcome": outcome,
        "outcomes": WebhookLog.Outcome.choices,
    }
    return show(request, "web/messaging/inbound_log.html", context)


@login_required
@require_GET
def inbound_log_entry(request, pk):
    """One request as received: headers and the raw payload (coordinators only)."""
    municipality, choices = manage_municipality(request)
    entry = get_or_404(WebhookLog.objects.filter(municipality=municipality).select_related("account"), pk=pk)
    events = list(Inbound.objects.filter(log=entry).order_by("pk")[:LOG_ROWS])
    context = {
        "municipality": municipality,
        "municipalities": choices,
        "entry": entry,
        "events": events,
        "headers": json.dumps(entry.headers, ensure_ascii=False, indent=2),
    }
    return show(request, "web/messaging/inbound_entry.html", context)
