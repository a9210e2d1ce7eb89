"""The duplicate review queue and a person's record as coordinators see it (status, merges, requests).

Only coordinators (MANAGE_REGISTRY) reach these pages. The comparison shows identifying fields, never
sensitive data. Merging goes through ``services.decide_duplicate``, which keeps the folded record as MERGED with
a snapshot (``Merge``), so the history stays readable here.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from redes.accounts.roles import Perm
from redes.accounts.scoping import get_scoped_or_404
from redes.audit.models import Outcome
from redes.audit.services import record_denied
from redes.registry import queries, services, vulnerability
from redes.registry.models import DataRequest, DuplicateCandidate, Merge, Person, RecordStatus, Relation, Sex

from .registry_common import person_for_manager, reason_label, require_manage

QUEUE_PAGE = 20


def _birth(person_or_snapshot) -> str:
    get = person_or_snapshot.get if isinstance(person_or_snapshot, dict) else person_or_snapshot.__dict__.get
    date, year = get("birth_date"), get("birth_year")
    if date:
        return str(date)
    if year:
        return _("born about %(year)s") % {"year": year}
    return ""


def _declared(codes) -> str:
    return ", ".join(
        str(vulnerability.FACTORS[c].label)
        for c in codes or []
        if c in vulnerability.FACTORS and not vulnerability.FACTORS[c].sensitive
    )


def _comparison(a: Person, b: Person) -> list[dict]:
    """Side-by-side rows of the two records' identifying fields (no sensitive data)."""
    rows = [
        (_("Full name"), a.full_name, b.full_name),
        (_("Given name(s)"), a.given_name, b.given_name),
        (_("First surname"), a.surname1, b.surname1),
        (_("Second surname"), a.surname2, b.surname2),
        (_("Birth"), _birth(a), _birth(b)),
        (
            _("Sex"),
            Sex(a.sex).label if a.sex and a.sex in Sex.values else "",
            Sex(b.sex).label if b.sex and b.sex in Sex.values else "",
        ),
        (_("CURP"), a.curp, b.curp),
        (_("Phone"), a.phone, b.phone),
        (
            _("Relation to the head"),
            Relation(a.relation).label if a.relation and a.relation in Relation.values else "",
            Relation(b.relation).label if b.relation and b.relation in Relation.values else "",
        ),
        (_("Address"), a.household.address, b.household.address),
        (_("Block"), a.node.code, b.node.code),
        (_("Declared factors"), _declared(a.factors), _declared(b.factors)),
        (_("Registered"), a.created_at.date(), b.created_at.date()),
    ]
    return [
        {"label": label, "a": va, "b": vb, "same": bool(va) and str(va) == str(vb)} for label, va, vb in rows
    ]


@login_required
@require_GET
def duplicate_queue(request):
    require_manage(request)
    qs = queries.duplicate_queue(request.user).select_related(
        "person_a__household", "person_a__node", "person_b__household", "person_b__node"
    )
    page = Paginator(qs, QUEUE_PAGE).get_page(request.GET.get("page"))
    pairs = [
        {
            "candidate": c,
            "percent": round(c.score * 100),
            "reasons": [reason_label(code) for code in c.reasons or []],
            "rows": _comparison(c.person_a, c.person_b),
        }
        for c in page.object_list
    ]
    return render(request, "web/registry/duplicates.html", {"page": page, "pairs": pairs})


@login_required
@require_POST
def duplicate_decide(request, uuid):
    require_manage(request, "registry.duplicate.decide")
    candidate = get_scoped_or_404(
        DuplicateCandidate.objects.select_related("person_a", "person_b", "node"),
        request.user,
        Perm.MANAGE_REGISTRY,
        via="node",
        uuid=uuid,
    )
    decision = request.POST.get("decision", "")
    choices = {"keep_a": candidate.person_a, "keep_b": candidate.person_b}
    if decision not in (*choices, "distinct"):
        messages.error(
            request,
            _("Choose one of the buttons: the same person (which record to keep) or different persons."),
        )
        return redirect("registry-duplicates")
    try:
        if decision == "distinct":
            services.decide_duplicate(candidate, actor=request.user, same=False)
            messages.success(request, _("Marked as different persons."))
        else:
            kept = choices[decision]
            services.decide_duplicate(candidate, actor=request.user, same=True, keep=kept)
            messages.success(
                request, _("The records were merged; “%(name)s” was kept.") % {"name": kept.full_name}
            )
    except ValidationError as exc:
        record_denied(
            "registry.duplicate.decide",
            actor=request.user,
            obj=candidate,
            reason="; ".join(exc.messages)[:300],
            outcome=Outcome.REJECTED,
        )
        for message in exc.messages:
            messages.error(request, message)
    page = request.POST.get("page")
    response = redirect("registry-duplicates")
    if page and page.isdigit():
        response["Location"] += f"?page={page}"
    return response


def _snapshot_view(merge: Merge) -> dict:
    snap = merge.snapshot or {}
    return {
        "merge": merge,
        "full_name": snap.get("full_name") or merge.merged.full_name,
        "birth": _birth(snap),
        "curp": snap.get("curp", ""),
        "phone": snap.get("phone", ""),
    }


@login_required
@require_GET
def person_record(request, uuid):
    require_manage(request)
    person = person_for_manager(request, uuid)
    folded_in = [
        _snapshot_view(m)
        for m in Merge.objects.filter(kept=person)
        .select_related("merged", "merged_by")
        .order_by("-merged_at")
    ]
    folded_into = (
        Merge.objects.filter(merged=person).select_related("kept", "merged_by").order_by("-merged_at").first()
    )
    context = {
        "person": person,
        "household": person.household,
        "status_label": RecordStatus(person.status).label,
        "birth": _birth(person),
        "sex": Sex(person.sex).label if person.sex in Sex.values and person.sex else "",
        "relation": Relation(person.relation).label
        if person.relation and person.relation in Relation.values
        else "",
        "factors": _declared(person.factors),
        "folded_in": folded_in,
        "folded_into": folded_into,
        "requests": list(DataRequest.objects.filter(person=person).order_by("-received_at")),
        "active": person.status == RecordStatus.ACTIVE,
    }
    return render(request, "web/registry/person.html", context)
