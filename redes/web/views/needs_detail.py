"""A need: its facts, its timeline and the actions the caller may take in its current state.

Reads go through ``needs.queries.get_need`` (404 outside the caller's reach); every action posts to
``needs-action`` and calls one service of ``needs.services``, which checks the rules again, audits, and refuses
bad input with a ValidationError (shown on the form, the need unchanged) or PermissionDenied (403).
Sensitive needs: the full page only for case officers; the liaisons and the operator who registered one see a
stub ("referred to a case officer") with no category, description, person or place.
"""

from __future__ import annotations

import uuid as uuid_module

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from redes.accounts import scoping
from redes.accounts.roles import Perm
from redes.audit.services import record_denied
from redes.liaisons.models import LiaisonAssignment
from redes.needs import queries, services
from redes.needs.models import Need, NeedEvent, NeedStatus, Outcome, Referral, reference_of

from ..forms_needs import (
    AssignForm,
    CancelForm,
    CloseForm,
    DuplicateForm,
    NoteForm,
    ReferForm,
    ReferralUpdateForm,
    ResolveForm,
    TriageForm,
)
from .common import add_service_errors, audit_rejected
from .needs_common import need_url
from .needs_queue import prime_rows

S = NeedStatus


# ------------------------------------------------------------------------------------------------ lookup


def need_or_404(request, uuid) -> Need:
    """The need if the caller may see it (perhaps only as a stub); 404 for missing, not-yours and malformed."""
    return queries.get_need(request.user, uuid)


def full_need_or_404(request, uuid) -> Need:
    """The need if the caller may see all of it: a stub is a 404 for every action."""
    need = need_or_404(request, uuid)
    if queries.is_stub(need, request.user):
        raise Http404
    return need


# ----------------------------------------------------------------------------------------------- actions


def _allowed(user, need: Need) -> dict[str, bool]:
    handle = services.may_handle(user, need)
    act = services.may_work_on(user, need)
    return {
        "acknowledge": act and need.is_open and need.acknowledged_at is None,
        "start": act and need.status != S.IN_PROGRESS and need.can_move_to(S.IN_PROGRESS),
        "triage": handle and need.is_open,
        "assign": handle and need.can_move_to(S.ASSIGNED),
        "refer": handle and need.is_open,
        "resolve": act and need.can_move_to(S.RESOLVED),
        "close": handle and need.can_move_to(S.CLOSED),
        "cancel": handle and need.can_move_to(S.CANCELLED),
        "duplicate": handle and need.can_move_to(S.DUPLICATE),
        "reopen": handle and not need.is_open and need.can_move_to(S.TRIAGED),
        "note": act,
        "referral": handle,
        "_handle": handle,
        "_act": act,
    }


def _forms(need, bound: dict | None = None) -> dict:
    """The action forms, unbound except the one that was posted (so its errors show)."""
    bound = bound or {}
    assignable = queries.assignable(need)
    outcomes = Outcome.choices
    builders = {
        "assign": lambda data: AssignForm(
            data,
            users=assignable.users,
            groups=assignable.groups,
            offices=assignable.offices,
            prefix="assign",
        ),
        "refer": lambda data: ReferForm(
            data, offices=assignable.offices.order_by("kind", "name"), prefix="refer"
        ),
        "triage": lambda data: TriageForm(
            data,
            municipality=need.municipality,
            prefix="triage",
            initial={"category": need.category.code, "urgency": need.urgency},
        ),
        "resolve": lambda data: ResolveForm(data, outcomes=outcomes, prefix="resolve"),
        "close": lambda data: CloseForm(
            data, outcomes=outcomes, prefix="close", initial={"outcome": need.outcome or ""}
        ),
        "cancel": lambda data: CancelForm(data, prefix="cancel"),
        "duplicate": lambda data: DuplicateForm(data, prefix="duplicate"),
        "note": lambda data: NoteForm(data, prefix="note"),
    }
    return {name: build(bound.get(name)) for name, build in builders.items()}


def _assignee_kwargs(choice) -> dict:
    kind, item = choice
    return {kind: item}


def _uuid_range(prefix: str) -> tuple[uuid_module.UUID, uuid_module.UUID]:
    """UUIDs starting with these hex digits, as a range (an index range on both databases)."""
    prefix = prefix[:32]
    return uuid_module.UUID(prefix.ljust(32, "0")), uuid_module.UUID(prefix.ljust(32, "f"))


def _duplicate_target(user, need: Need, ref: str) -> Need:
    ref = (ref or "").strip().lower().replace("-", "")
    if len(ref) < 8 or not all(c in "0123456789abcdef" for c in ref):
        raise ValidationError(_("Give the 8-character reference of the other need."))
    candidates = list(
        queries.visible_needs(user)
        .filter(municipality_id=need.municipality_id, sensitive=need.sensitive)
        .exclude(pk=need.pk)
        .filter(uuid__range=_uuid_range(ref))[:2]
    )
    if len(candidates) != 1:
        raise ValidationError(_("No other need you can see has that reference."))
    return candidates[0]


def _run(action: str, request, need: Need, form) -> str:
    """Call the service of ``action`` with the form's data; returns the success message."""
    user = request.user
    data = form.cleaned_data if form is not None else {}
    if action == "acknowledge":
        services.acknowledge_need(need, actor=user)
        return _("Acknowledged.")
    if action == "start":
        services.start_need(need, actor=user)
        return _("Work started.")
    if action == "reopen":
        services.reopen_need(need, actor=user)
        return _("Reopened.")
    if action == "triage":
        services.triage_need(
            need, actor=user, category=data["category"], urgency=data["urgency"], note=data["note"]
        )
        return _("Saved.")
    if action == "assign":
        services.assign_need(need, actor=user, note=data["note"], **_assignee_kwargs(data["assignee"]))
        return _("Assigned.")
    if action == "refer":
        services.refer_need(need, actor=user, office=data["office"], note=data["note"])
        return _("Referred to %(office)s.") % {"office": data["office"].name}
    if action == "resolve":
        services.resolve_need(need, actor=user, outcome=data["outcome"], note=data["note"])
        return _("Resolved.")
    if action == "close":
        services.close_need(
            need,
            actor=user,
            outcome=data["outcome"] or None,
            satisfaction=data["satisfaction"],
            note=data["note"],
        )
        return _("Closed.")
    if action == "cancel":
        services.cancel_need(need, actor=user, reason=data["reason"])
        return _("Cancelled.")
    if action == "duplicate":
        other = _duplicate_target(user, need, data["of"])
        services.mark_duplicate(need, actor=user, of=other)
        return _("Marked as a duplicate.")
    if action == "note":
        services.add_note(need, actor=user, text=data["text"])
        return _("Note added.")
    raise Http404


FORMLESS = {"acknowledge", "start", "reopen"}


def action_forms() -> list[tuple[str, str, str, str]]:
    """The actions with a form, in page order: (name, title, button, button style)."""
    return [
        ("assign", _("Assign"), _("Assign"), ""),
        ("refer", _("Refer to an office or hotline"), _("Refer"), ""),
        ("note", _("Add a note"), _("Add note"), "secondary"),
        ("resolve", _("Mark as resolved"), _("Resolve"), ""),
        ("close", _("Close with the outcome"), _("Close"), ""),
        ("triage", _("Change category or urgency"), _("Save"), "secondary"),
        ("duplicate", _("Mark as duplicate"), _("Mark as duplicate"), "secondary"),
        ("cancel", _("Cancel"), _("Cancel the need"), "danger"),
    ]


ACTIONS = FORMLESS | {"triage", "assign", "refer", "resolve", "close", "cancel", "duplicate", "note"}


# ------------------------------------------------------------------------------------------------- pages


def _liaisons_at(node_ids) -> dict[int, str]:
    rows = (
        LiaisonAssignment.objects.active()
        .filter(node_id__in=node_ids, end_date__isnull=True)
        .values_list("node_id", "full_name")
    )
    return dict(rows)


def _names(events) -> dict[str, str]:
    """Names of the people, groups and offices the events point to by UUID (three queries at most)."""
    from redes.accounts.models import User
    from redes.needs.models import Office, WorkingGroup

    wanted = {"user": set(), "group": set(), "office": set()}
    for event in events:
        for key in wanted:
            value = (event.data or {}).get(key)
            if value:
                wanted[key].add(value)
    names: dict[str, str] = {}
    if wanted["user"]:
        for user in User.objects.filter(uuid__in=wanted["user"]):
            names[str(user.uuid)] = user.display_name
    for model, key in ((WorkingGroup, "group"), (Office, "office")):
        if wanted[key]:
            names.update(
                {str(u): n for u, n in model.objects.filter(uuid__in=wanted[key]).values_list("uuid", "name")}
            )
    return names


def timeline_rows(need: Need, user, *, show_names: bool) -> list[dict]:
    events = list(queries.timeline(need, user))
    node_ids = {e.node_id for e in events if e.node_id and e.kind == NeedEvent.Kind.ESCALATED}
    liaisons = _liaisons_at(node_ids) if show_names and node_ids else {}
    names = _names(events)
    rows = []
    for event in events:
        rows.append(
            {
                "event": event,
                "text": event_text(event, liaisons, names),
                "actor": event.actor.display_name if show_names and event.actor_id else "",
                "note": getattr(event, "note", ""),
            }
        )
    return rows


def _where(node) -> str:
    """ "Sector 3" for a unit named "3" of level Sector; just the name when it already says its level."""
    if node.kind != "unit":
        return node.name
    level = node.level_name
    if node.name.casefold().startswith(level.casefold()):
        return node.name
    return f"{level} {node.name}"


def event_text(event: NeedEvent, liaisons: dict[int, str], names: dict[str, str]) -> str:
    kind = event.kind
    data = event.data or {}
    node = event.node
    K = NeedEvent.Kind
    if kind == K.ESCALATED and node is not None:
        where = _where(node)
        name = liaisons.get(node.pk)
        if node.kind == "municipality":
            return _("Escalated to the municipal coordination (%(where)s)") % {"where": where}
        if name:
            return _("Escalated to %(where)s (liaison: %(name)s)") % {"where": where, "name": name}
        return _("Escalated to %(where)s") % {"where": where}
    if kind == K.ASSIGNED:
        who = next((names[data[k]] for k in ("user", "group", "office") if data.get(k) in names), "")
        if who:
            return _("Assigned to %(who)s") % {"who": who}
    if kind == K.REFERRED and data.get("office") in names:
        return _("Referred to %(office)s") % {"office": names[data["office"]]}
    if kind == K.REFERRAL_UPDATED and data.get("status") in Referral.Status.values:
        return _("Referral updated: %(status)s") % {"status": Referral.Status(data["status"]).label}
    if kind in (K.RESOLVED, K.CLOSED) and data.get("outcome") in Outcome.values:
        return _("%(what)s: %(outcome)s") % {
            "what": K(kind).label,
            "outcome": Outcome(data["outcome"]).label,
        }
    if kind == K.CREATED and data.get("channel"):
        from redes.needs.models import NeedChannel

        if data["channel"] in NeedChannel.values:
            return _("Registered (%(channel)s)") % {"channel": NeedChannel(data["channel"]).label}
    label = K(kind).label if kind in K.values else kind
    return str(label)


def _detail_context(request, need: Need, *, bound: dict | None = None) -> dict:
    user = request.user
    prime_rows([need])
    allowed = _allowed(user, need)
    show_personal = scoping.can(user, Perm.VIEW_PERSONAL, need.node)
    sensitive_text = services.read_sensitive(need, actor=user) if need.sensitive else ""
    referrals = list(need.referrals.select_related("office").order_by("created_at", "id"))
    return {
        "need": need,
        "ref": reference_of(need),
        "allowed": allowed,
        "any_action": any(v for k, v in allowed.items() if not k.startswith("_")),
        "forms": _forms(need, bound),
        "action_forms": action_forms(),
        "timeline": timeline_rows(need, user, show_names=show_personal),
        "show_personal": show_personal,
        "sensitive_text": sensitive_text,
        "referrals": referrals,
        "referral_statuses": Referral.Status.choices,
    }


@login_required
@require_GET
def needs_detail(request, uuid):
    need = need_or_404(request, uuid)
    if queries.is_stub(need, request.user):
        return render(request, "web/needs/stub.html", {"need": need, "ref": reference_of(need)})
    return render(request, "web/needs/detail.html", _detail_context(request, need))


@login_required
@require_POST
def needs_action(request, uuid, action):
    if action not in ACTIONS:
        raise Http404
    need = full_need_or_404(request, uuid)
    allowed = _allowed(request.user, need)
    if not allowed["_act"] or (
        action not in ("acknowledge", "start", "resolve", "note") and not allowed["_handle"]
    ):
        record_denied(
            f"needs.need.{action}", actor=request.user, obj=need, reason="not allowed for this user"
        )
        raise PermissionDenied
    form = None
    if action not in FORMLESS:
        form = _forms(need, {action: request.POST})[action]
        if not form.is_valid():
            audit_rejected(request, f"needs.need.{action}", form, obj=need)
            context = _detail_context(request, need, bound={action: request.POST})
            context["open_action"] = action
            return render(request, "web/needs/detail.html", context)
    # The service decides who may do what (PermissionDenied → 403, audited); the page only hides buttons.
    try:
        message = _run(action, request, need, form)
    except ValidationError as exc:
        need.refresh_from_db()
        context = _detail_context(request, need, bound={action: request.POST} if form is not None else None)
        if form is not None and context["allowed"].get(action):
            add_service_errors(context["forms"][action], exc)
        else:  # no form of this action on the page any more (e.g. resolving a cancelled need)
            for text in exc.messages:
                messages.error(request, text)
        context["open_action"] = action
        return render(request, "web/needs/detail.html", context)
    messages.success(request, message)
    return redirect(need_url(need))


@login_required
@require_POST
def needs_referral(request, uuid, referral):
    need = full_need_or_404(request, uuid)
    if not _allowed(request.user, need)["referral"]:
        record_denied(
            "needs.referral.update", actor=request.user, obj=need, reason="not allowed for this user"
        )
        raise PermissionDenied
    try:
        item = need.referrals.get(uuid=referral)
    except (Referral.DoesNotExist, ValidationError, ValueError) as exc:
        raise Http404 from exc
    form = ReferralUpdateForm(request.POST, statuses=Referral.Status.choices)
    if form.is_valid():
        try:
            services.update_referral(
                item, actor=request.user, status=form.cleaned_data["status"], note=form.cleaned_data["note"]
            )
        except ValidationError as exc:
            for text in exc.messages:
                messages.error(request, text)
        else:
            messages.success(request, _("Referral updated."))
    else:
        messages.error(request, _("Choose a status for the referral."))
    return redirect(need_url(need))
