"""Messaging pages: the entry page per role, the console (the demo's phone simulator), acknowledging a cascade,
and the helpers the other messaging page modules share.

Access (``accounts.roles``): ``BROADCAST`` (coordinators, sector liaisons) for broadcasts over their territory;
``MANAGE_MESSAGING`` (coordinators) for the console, channel accounts, templates, flows, the group registry's
edits and the inbound log. Any liaison acknowledges the cascade messages addressed to them. Observers see counts
only, never phones, names or message texts. Records come through ``messaging.queries`` and the scoping door (404
for missing, not-yours and malformed ids alike); writes go through the messaging services, which audit them.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from redes.accounts import scoping
from redes.accounts.roles import Perm
from redes.messaging.models import (
    Broadcast,
    CascadeNode,
    Contact,
    Inbound,
    Medium,
    Outbound,
    WebhookLog,
)
from redes.territories.models import Municipality

from . import common
from .messaging_forms import ConsoleForm

HOME_BROADCASTS = 8
CONSOLE_ROWS = 30
CONVERSATION_ROWS = 40
DEMO_NUMBERS = 8


# --------------------------------------------------------------------------------------------- access helpers


def queries():
    from redes.messaging import queries as q

    return q


def get_or_404(qs, **lookup):
    """One row of an already scoped queryset; 404 for missing and malformed ids alike."""
    try:
        return qs.get(**lookup)
    except (qs.model.DoesNotExist, ValidationError, ValueError) as exc:
        raise Http404 from exc


def manage_municipality(request, action: str = "") -> tuple[Municipality, list[Municipality]]:
    """The municipality a messaging set-up page works on (``?m=<uuid>``); coordinators only."""
    return common.chosen_municipality(request, Perm.MANAGE_MESSAGING, action)


def perm_municipality(request, perm: str, action: str = "") -> tuple[Municipality, list[Municipality]]:
    """The municipality a page works on among those where the user holds ``perm`` anywhere."""
    return common.chosen_municipality(request, perm, action, anywhere=True)


def waiting_acks(user):
    """Cascade messages addressed to this user that still wait for their acknowledgement."""
    return queries().waiting_acks(user)


def show(request, template: str, context: dict, status: int = 200):
    """Render a messaging page with what its sub-navigation needs (which areas the user may open)."""
    user = request.user
    context.setdefault("can_broadcast", scoping.can(user, Perm.BROADCAST))
    context.setdefault("manage", scoping.can(user, Perm.MANAGE_MESSAGING))
    return render(request, template, context, status=status)


def safe_next(request, default: str) -> str:
    target = request.POST.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return target
    return default


# ------------------------------------------------------------------------------------------------------ home


def _counts(municipality) -> dict:
    """Outbox and inbox figures of a municipality (no personal data)."""
    outbox = dict(
        Outbound.objects.filter(municipality=municipality)
        .values_list("status")
        .annotate(n=Count("pk"))
        .values_list("status", "n")
    )
    inbox = dict(
        Inbound.objects.filter(municipality=municipality)
        .exclude(kind=Inbound.Kind.STATUS)
        .values_list("state")
        .annotate(n=Count("pk"))
        .values_list("state", "n")
    )
    problems = WebhookLog.objects.filter(
        municipality=municipality, outcome__in=[WebhookLog.Outcome.MALFORMED, WebhookLog.Outcome.FORGED]
    ).count()
    return {
        "queued": outbox.get("queued", 0) + outbox.get("sending", 0),
        "sent": sum(outbox.get(s, 0) for s in ("sent", "delivered", "read")),
        "failed": outbox.get("failed", 0),
        "inbox": sum(inbox.values()),
        "inbox_pending": inbox.get("pending", 0),
        "inbox_failed": inbox.get("failed", 0),
        "log_problems": problems,
        "contacts": Contact.objects.filter(municipality=municipality).count(),
    }


def _broadcast_counts(user) -> list[dict]:
    """Broadcasts in the user's territory by status: what an observer may see."""
    qs = scoping.scoped(Broadcast.objects.all(), user, Perm.VIEW_AGGREGATES, via="node")
    by_status = dict(qs.values_list("status").annotate(n=Count("pk")).values_list("status", "n"))
    return [
        {"status": value, "label": label, "count": by_status.get(value, 0)}
        for value, label in Broadcast.Status.choices
    ]


@login_required
@require_GET
def messaging_home(request):
    """Coordinators: broadcasts, outbox and inbox figures, the set-up pages. Liaisons: the cascade messages
    waiting for their acknowledgement (a big "Received" button) and their broadcasts. Observers: counts."""
    user = request.user
    acks = list(waiting_acks(user))
    can_broadcast = scoping.can(user, Perm.BROADCAST)
    manage = scoping.can(user, Perm.MANAGE_MESSAGING) and bool(
        common.managed_municipalities(user, Perm.MANAGE_MESSAGING)
    )
    aggregates = scoping.can(user, Perm.VIEW_AGGREGATES)
    if not (acks or can_broadcast or manage or aggregates or scoping.can(user, Perm.ACK_CASCADE)):
        raise PermissionDenied
    context = {"acks": acks, "can_broadcast": can_broadcast, "manage": manage}
    if can_broadcast:
        context["broadcasts"] = list(
            queries()
            .broadcasts_for(user)
            .select_related("node")
            .order_by("-created_at", "-pk")[:HOME_BROADCASTS]
        )
    if manage:
        municipality, choices = manage_municipality(request)
        context.update(municipality=municipality, municipalities=choices, counts=_counts(municipality))
    if not can_broadcast and aggregates:
        context["broadcast_counts"] = _broadcast_counts(user)
    return show(request, "web/messaging/home.html", context)


@login_required
@require_POST
def acknowledge(request, pk):
    """A liaison's "Received" for a cascade message (their own, or one in the territory they broadcast to)."""
    from redes.messaging import broadcasts

    user = request.user
    own = CascadeNode.objects.filter(user=user)
    row = own.filter(pk=pk).select_related("broadcast", "node").first()
    if row is None:
        scoped = scoping.scoped(CascadeNode.objects.all(), user, Perm.BROADCAST, via="node")
        row = get_or_404(scoped.select_related("broadcast", "node"), pk=pk)
    default = reverse("messaging-home")
    try:
        broadcasts.acknowledge(row, actor=user, via="web")
    except (ValidationError, PermissionDenied) as exc:
        for message in getattr(exc, "messages", None) or [str(exc) or _("You may not acknowledge this.")]:
            messages.error(request, message)
    else:
        messages.success(request, _("Acknowledged: “%(title)s”. Thank you.") % {"title": row.broadcast.title})
    target = safe_next(request, default)
    if common.is_htmx(request):
        response = HttpResponse(status=204)
        response["HX-Redirect"] = target
        return response
    return redirect(target)


# --------------------------------------------------------------------------------------------------- console


def _console_account(municipality):
    from redes.messaging import accounts

    return accounts.console_account(municipality)


def _address(raw: str) -> str:
    from redes.messaging import contacts

    return contacts.address_of(raw, Medium.CONSOLE)


def _demo_numbers(user, municipality) -> list[dict]:
    """A few numbers to "text" from: households of the registry and liaisons (the coordinator sees personal
    data of their municipality anyway)."""
    from redes.liaisons.models import LiaisonAssignment
    from redes.registry.models import Phone

    phones = scoping.scoped(
        Phone.objects.filter(municipality=municipality, household__status="active"),
        user,
        Perm.VIEW_PERSONAL,
        via="household__node",
    ).select_related("household__node")
    rows = [
        {"number": p.number, "label": _("Household in %(block)s") % {"block": p.household.node.code}}
        for p in phones.order_by("household__node__code", "pk")[:DEMO_NUMBERS]
    ]
    posts = scoping.scoped(
        LiaisonAssignment.objects.active()
        .filter(municipality=municipality, user__isnull=False)
        .exclude(phone=""),
        user,
        Perm.VIEW_PERSONAL,
        via="node",
    ).select_related("node")
    for post in posts.order_by("node__depth", "node__code")[:3]:
        try:
            number = _address(post.phone)
        except ValidationError:
            continue
        rows.append({"number": number, "label": _("Liaison of %(node)s") % {"node": post.node.code}})
    return rows


def _conversation(account, number: str) -> dict:
    """The messages between the console and one number, oldest first (the last ``CONVERSATION_ROWS``)."""
    if not number:
        return {"number": "", "lines": [], "problem": ""}
    try:
        address = _address(number)
    except ValidationError as exc:
        return {"number": number, "lines": [], "problem": " ".join(exc.messages)}
    inbound = list(
        Inbound.objects.filter(account=account, sender=address)
        .exclude(kind=Inbound.Kind.STATUS)
        .order_by("-received_at", "-pk")[:CONVERSATION_ROWS]
    )
    contact = Contact.objects.filter(municipality_id=account.municipality_id, address=address).first()
    outbound = []
    if contact is not None:
        outbound = list(
            Outbound.objects.filter(account=account, contact=contact).order_by("-created_at", "-pk")[
                :CONVERSATION_ROWS
            ]
        )
    lines = [
        {"mine": True, "at": m.received_at, "text": _inbound_text(m), "state": m.state, "row": m}
        for m in inbound
    ]
    lines += [
        {"mine": False, "at": m.created_at, "text": m.body, "state": m.status, "row": m} for m in outbound
    ]
    lines.sort(key=lambda line: (line["at"], 0 if line["mine"] else 1, line["row"].pk))
    pending = any(line["mine"] and line["state"] == Inbound.State.PENDING for line in lines) or any(
        not line["mine"] and line["state"] in (Outbound.Status.QUEUED, Outbound.Status.SENDING)
        for line in lines
    )
    return {"number": address, "lines": lines[-CONVERSATION_ROWS:], "pending": pending, "problem": ""}


def _inbound_text(row) -> str:
    if row.kind == Inbound.Kind.LOCATION:
        lat, lon = row.data.get("lat"), row.data.get("lon")
        return _("📍 Location %(lat)s, %(lon)s") % {"lat": lat, "lon": lon}
    return row.text


def _console_context(request, municipality, choices, form=None, number="") -> dict:
    account = _console_account(municipality)
    number = number or (request.GET.get("number") or "").strip()[:40]
    return {
        "municipality": municipality,
        "municipalities": choices,
        "account": account,
        "form": form or ConsoleForm(initial={"number": number}),
        "numbers": _demo_numbers(request.user, municipality),
        "conversation": _conversation(account, number),
        "inbox": list(
            Inbound.objects.filter(account=account)
            .exclude(kind=Inbound.Kind.STATUS)
            .order_by("-received_at", "-pk")[:CONSOLE_ROWS]
        ),
        "outbox": list(
            Outbound.objects.filter(account=account)
            .select_related("contact")
            .order_by("-created_at", "-pk")[:CONSOLE_ROWS]
        ),
        "quick": ["MENU", "1", "2", "3", "4", "OK", "BAJA"],
    }


@login_required
@require_http_methods(["GET", "POST"])
def console(request):
    """The phone simulator: "text" the network from a number and watch the replies arrive (they are produced by
    the dispatcher in the background; the conversation polls for them)."""
    from redes.messaging import ingest

    municipality, choices = manage_municipality(request, "messaging.console.send")
    form = None
    number = ""
    if request.method == "POST":
        data = request.POST.copy()
        if data.get("quick"):  # a quick-reply button: its text instead of the typed one
            data["text"] = data["quick"][:20]
        form = ConsoleForm(data)
        if form.is_valid():
            data = form.cleaned_data
            try:
                address = _address(data["number"])
                ingest.store_console(
                    _console_account(municipality),
                    address,
                    text=(data.get("text") or "").strip(),
                    lat=data.get("lat"),
                    lon=data.get("lon"),
                )
            except ValidationError as exc:
                common.add_service_errors(form, exc)
            else:
                query = urlencode({"m": str(municipality.uuid), "number": address})
                if common.is_htmx(request):
                    context = _console_context(request, municipality, choices, number=address)
                    context["form"] = ConsoleForm(initial={"number": address})
                    return render(request, "web/messaging/_console_phone.html", context)
                return redirect(f"{reverse('messaging-console')}?{query}")
        else:
            common.audit_rejected(request, "messaging.console.send", form, municipality=municipality)
        number = (request.POST.get("number") or "").strip()[:40]
    context = _console_context(request, municipality, choices, form=form, number=number)
    status = 400 if form is not None and form.errors else 200
    if common.is_htmx(request) and request.method == "POST":
        return render(request, "web/messaging/_console_phone.html", context, status=status)
    return show(request, "web/messaging/console.html", context, status)


@login_required
@require_GET
def console_conversation(request):
    """The conversation fragment, polled every two seconds while a reply is on its way."""
    municipality, _choices = manage_municipality(request)
    account = _console_account(municipality)
    number = (request.GET.get("number") or "").strip()[:40]
    context = {"conversation": _conversation(account, number), "municipality": municipality}
    return render(request, "web/messaging/_conversation.html", context)
