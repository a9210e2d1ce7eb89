"""The census pages for the field (block and sector liaisons, hotline operators, case officers, coordinators).

A liaison on a cheap phone: "my block" (its households as big cards, the unvisited ones on a tap), a household
(phones, members, priority and why, visits, consent) and the forms to add and edit them. Reads go through
``accounts.scoping`` and ``registry.queries``; every write goes through ``registry.services`` and then
redirects (post / redirect / get). Sensitive data is never read here: the priority explanation comes from
``services.explain_priority``, where sensitive factors are one folded "protected" line for everyone.

Access: ``VIEW_PERSONAL`` to see, ``EDIT_REGISTRY`` to write. A household or person outside the user's
territory is a 404; a block the user sees on the map but whose people they may not see is a 403.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Exists, OuterRef, Prefetch, Q
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from redes.accounts import scoping
from redes.accounts.roles import Perm
from redes.registry import queries, services, vulnerability
from redes.registry.models import (
    BlockCounts,
    Consent,
    DuplicateCandidate,
    Household,
    Person,
    RecordStatus,
    RegistryPolicy,
    Visit,
)
from redes.territories.models import Node, NodeKind

from ..forms_census import ConsentForm, HouseholdForm, PersonForm, RevokeConsentForm, VisitForm
from .common import PAGE_SIZE, add_service_errors, is_htmx, node_or_404, require_or_refuse

VISITS_SHOWN = 20
SEARCH_MIN = 2

# ------------------------------------------------------------------------------------------------ lookups


def _require_field_access(user) -> None:
    """Census pages are for users who may see personal data somewhere; others get 403."""
    if not scoping.can(user, Perm.VIEW_PERSONAL):
        raise PermissionDenied


def _is_block(node: Node) -> bool:
    return node.kind == NodeKind.UNIT and not Node.objects.filter(parent=node).exists()


def block_or_404(request, uuid) -> Node:
    """A block whose households the user may see: 404 if unseen or not a block, 403 if seen on the map only."""
    node = node_or_404(request, uuid)
    if not _is_block(node):
        raise Http404
    scoping.require(request.user, Perm.VIEW_PERSONAL, node)
    return node


def household_or_404(request, uuid) -> Household:
    qs = Household.objects.filter(status=RecordStatus.ACTIVE).select_related("node", "node__municipality")
    return scoping.get_scoped_or_404(qs, request.user, Perm.VIEW_PERSONAL, via="node", uuid=uuid)


def person_or_404(request, uuid) -> Person:
    qs = Person.objects.filter(status=RecordStatus.ACTIVE).select_related(
        "household", "node", "node__municipality"
    )
    return scoping.get_scoped_or_404(qs, request.user, Perm.VIEW_PERSONAL, via="node", uuid=uuid)


def editable_blocks(user):
    """The blocks (units with no unit below) under the user's EDIT_REGISTRY grants."""
    leaves = Node.objects.filter(kind=NodeKind.UNIT).filter(
        ~Exists(Node.objects.filter(parent=OuterRef("pk")))
    )
    return scoping.scoped(leaves, user, Perm.EDIT_REGISTRY)


def _threshold(municipality_id: int) -> int:
    value = (
        RegistryPolicy.objects.filter(municipality_id=municipality_id)
        .values_list("priority_threshold", flat=True)
        .first()
    )
    return value if value is not None else RegistryPolicy._meta.get_field("priority_threshold").default


def household_url(household: Household, anchor: str = "") -> str:
    url = reverse("census-household", args=[household.uuid])
    return f"{url}#{anchor}" if anchor else url


# --------------------------------------------------------------------------------------------- entry, search


@login_required
@require_GET
def census_home(request):
    """The blocks the user may census, with a search box; a single block opens at once."""
    user = request.user
    _require_field_access(user)
    query = (request.GET.get("q") or "").strip()
    blocks = editable_blocks(user)
    if not query and not request.GET.get("page") and "all" not in request.GET:
        first_two = list(blocks.values_list("uuid", flat=True)[:2])
        if len(first_two) == 1:
            return redirect("census-block", uuid=first_two[0])
    if query:
        blocks = blocks.filter(Q(code__icontains=query) | Q(name__icontains=query))
    blocks = blocks.select_related("parent", "registry_counts").order_by("code", "pk")
    page = Paginator(blocks, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {"page": page, "blocks": list(page.object_list), "query": query}
    return render(request, "web/census/home.html", context)


@login_required
@require_GET
def census_search(request):
    """Persons by name (any order, accents ignored) or by exact CURP, across the user's territory."""
    user = request.user
    _require_field_access(user)
    query = (request.GET.get("q") or "").strip()
    too_short = bool(query) and len(query) < SEARCH_MIN
    results = []
    if query and not too_short:
        results = list(
            queries.search_persons(user, query)
            .select_related("household", "node")
            .only(
                "uuid",
                "full_name",
                "birth_year",
                "household__uuid",
                "household__street",
                "household__ext_number",
                "household__int_number",
                "household__colonia",
                "household__postal_code",
                "node__code",
                "node__name",
            )
        )
    context = {
        "query": query,
        "too_short": too_short,
        "results": results,
        "limit": queries.SEARCH_LIMIT,
        "min_length": SEARCH_MIN,
    }
    if is_htmx(request):
        return render(request, "web/census/_search_results.html", context)
    return render(request, "web/census/search.html", context)


# ------------------------------------------------------------------------------------------------- block


@login_required
@require_GET
def census_block(request, uuid):
    node = block_or_404(request, uuid)
    user = request.user
    unvisited = request.GET.get("show") == "unvisited"
    counts = BlockCounts.objects.filter(node=node).first()
    qs = queries.block_households(user, node, unvisited=unvisited).only(
        "uuid",
        "street",
        "ext_number",
        "int_number",
        "colonia",
        "postal_code",
        "members_count",
        "priority",
        "last_visit_at",
    )
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "node": node,
        "level": node.level_name,
        "counts": counts,
        "unvisited": unvisited,
        "page": page,
        "households": list(page.object_list),
        "threshold": _threshold(node.municipality_id),
        "can_edit": scoping.can(user, Perm.EDIT_REGISTRY, node),
        "parent": node.parent,
    }
    if is_htmx(request) and not request.headers.get("HX-History-Restore-Request"):
        return render(request, "web/census/_households.html", context)
    return render(request, "web/census/block.html", context)


# --------------------------------------------------------------------------------------------- household


def _member_rows(household: Household, today) -> list[dict]:
    members = (
        household.members.filter(status=RecordStatus.ACTIVE)
        .prefetch_related(
            Prefetch(
                "consents",
                queryset=Consent.objects.filter(revoked_at__isnull=True)
                .select_related("notice")
                .order_by("-captured_at"),
                to_attr="active_consents",
            )
        )
        .order_by("pk")
    )
    rows = []
    for person in members:
        consent = person.active_consents[0] if person.active_consents else None
        factors = [
            vulnerability.FACTORS[code].label
            for code in (person.factors or [])
            if code in vulnerability.FACTORS and not vulnerability.FACTORS[code].sensitive
        ]
        rows.append(
            {
                "person": person,
                "age": vulnerability.age_on(person.birth_date, person.birth_year, today),
                "factors": factors,
                "consent": consent,
                "purposes": [services.purpose_label(code) for code in consent.purposes] if consent else [],
            }
        )
    return rows


def _possible_duplicates(user, member_ids: list[int]) -> dict[int, dict]:
    """Pending duplicate pairs of these members: the other records the user may see, and how many not."""
    if not member_ids:
        return {}
    pairs = DuplicateCandidate.objects.filter(
        Q(person_a_id__in=member_ids) | Q(person_b_id__in=member_ids),
        status=DuplicateCandidate.Status.PENDING,
    ).values_list("person_a_id", "person_b_id")
    others: dict[int, set[int]] = {}
    for a, b in pairs:
        if a in member_ids:
            others.setdefault(a, set()).add(b)
        if b in member_ids:
            others.setdefault(b, set()).add(a)
    all_other = set().union(*others.values()) if others else set()
    visible = {
        p.pk: p for p in queries.persons(user).filter(pk__in=all_other).select_related("household", "node")
    }
    result = {}
    for member_id, ids in others.items():
        shown = [visible[i] for i in sorted(ids) if i in visible]
        result[member_id] = {"shown": shown, "hidden": len(ids) - len(shown)}
    return result


def household_context(request, household: Household, *, visit_form=None) -> dict:
    user = request.user
    today = timezone.localdate()
    rows = _member_rows(household, today)
    duplicates = _possible_duplicates(user, [row["person"].pk for row in rows])
    for row in rows:
        row["duplicates"] = duplicates.get(row["person"].pk)
    node = household.node
    return {
        "household": household,
        "node": node,
        "phones": list(household.phones.order_by("pk")),
        "members": rows,
        "explanation": services.explain_priority(household, user),
        "threshold": _threshold(household.municipality_id),
        "visits": list(household.visits.select_related("visited_by").order_by("-visited_at")[:VISITS_SHOWN]),
        "visit_total": household.visits.count(),
        "outcomes": Visit.Outcome.choices,
        "visit_form": visit_form or VisitForm(),
        "can_edit": scoping.can(user, Perm.EDIT_REGISTRY, node),
        "can_see_sensitive": scoping.can(user, Perm.VIEW_SENSITIVE, node, superuser=False),
        "added": request.GET.get("added", ""),
        "has_notice": services.current_notice(household.municipality_id) is not None,
    }


@login_required
@require_GET
def census_household(request, uuid):
    household = household_or_404(request, uuid)
    return render(request, "web/census/household.html", household_context(request, household))


@login_required
@require_POST
def census_visit(request, uuid):
    household = household_or_404(request, uuid)
    require_or_refuse(request, Perm.EDIT_REGISTRY, household.node, "registry.visit.create")
    form = VisitForm(request.POST)
    if form.is_valid():
        try:
            services.record_visit(
                household, form.cleaned_data["outcome"], note=form.cleaned_data["note"], actor=request.user
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            label = Visit.Outcome(form.cleaned_data["outcome"]).label
            messages.success(request, _("Visit recorded: %(outcome)s.") % {"outcome": label})
            return redirect(household_url(household, "visits"))
    context = household_context(request, household, visit_form=form)
    return render(request, "web/census/household.html", context)


# ----------------------------------------------------------------------------------------- household forms


@login_required
@require_http_methods(["GET", "POST"])
def census_household_add(request, uuid):
    node = block_or_404(request, uuid)
    require_or_refuse(request, Perm.EDIT_REGISTRY, node, "registry.household.create")
    form = HouseholdForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.service_data()
        try:
            household = services.create_household(node, actor=request.user, **data)
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, _("Household registered. Now add the people who live there."))
            return redirect(household_url(household))
    context = {"form": form, "node": node, "household": None, "parent": node.parent}
    return render(request, "web/census/household_form.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def census_household_edit(request, uuid):
    household = household_or_404(request, uuid)
    node = household.node
    require_or_refuse(request, Perm.EDIT_REGISTRY, node, "registry.household.update")
    phones = list(household.phones.order_by("pk"))
    form = HouseholdForm(request.POST or None, phones=phones, initial=HouseholdForm.initial_for(household))
    if request.method == "POST" and form.is_valid():
        data = form.service_data()
        try:
            services.update_household(household, actor=request.user, **data)
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, _("Household saved."))
            return redirect(household_url(household))
    context = {"form": form, "node": node, "household": household, "parent": node.parent}
    return render(request, "web/census/household_form.html", context)


# -------------------------------------------------------------------------------------------- person forms


def _duplicate_notice(request, person: Person) -> None:
    found = getattr(person, "duplicates", None) or []
    if found:
        messages.warning(
            request,
            _("This may be the same person as a record already registered. Check the list below."),
        )


@login_required
@require_http_methods(["GET", "POST"])
def census_person_add(request, uuid):
    household = household_or_404(request, uuid)
    require_or_refuse(request, Perm.EDIT_REGISTRY, household.node, "registry.person.create")
    form = PersonForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            person = services.add_person(household, actor=request.user, **form.service_data())
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, _("%(name)s was added.") % {"name": person.full_name})
            _duplicate_notice(request, person)
            url = reverse("census-household", args=[household.uuid])
            return redirect(f"{url}?added={person.uuid}#person-{person.uuid}")
    context = {"form": form, "household": household, "node": household.node, "person": None}
    return render(request, "web/census/person_form.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def census_person_edit(request, uuid):
    person = person_or_404(request, uuid)
    household = person.household
    require_or_refuse(request, Perm.EDIT_REGISTRY, person.node, "registry.person.update")
    initial = PersonForm.initial_for(person, timezone.localdate())
    form = PersonForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            person = services.update_person(person, actor=request.user, **form.service_data(editing=True))
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, _("%(name)s was saved.") % {"name": person.full_name})
            _duplicate_notice(request, person)
            url = reverse("census-household", args=[household.uuid])
            return redirect(f"{url}?added={person.uuid}#person-{person.uuid}")
    context = {"form": form, "household": household, "node": person.node, "person": person}
    return render(request, "web/census/person_form.html", context)


# ------------------------------------------------------------------------------------------------- consent


def _consent_context(request, person: Person, notice, *, form=None, revoke_form=None) -> dict:
    current = services.active_consent(person)
    if form is None and notice is not None:
        initial = {}
        if current is not None:
            # A new consent starts from the current one: unticking by mistake would erase sensitive data.
            codes = {p["code"] for p in notice.purposes}
            initial = {
                "purposes": [c for c in current.purposes if c in codes],
                "sensitive": current.sensitive,
                "channel": current.channel,
            }
        form = ConsentForm(notice=notice, initial=initial)
    return {
        "person": person,
        "household": person.household,
        "node": person.node,
        "notice": notice,
        "form": form,
        "current": current,
        "current_purposes": [services.purpose_label(c) for c in current.purposes] if current else [],
        "revoke_form": revoke_form or RevokeConsentForm(prefix="revoke"),
    }


@login_required
@require_http_methods(["GET", "POST"])
def census_consent(request, uuid):
    person = person_or_404(request, uuid)
    require_or_refuse(request, Perm.EDIT_REGISTRY, person.node, "registry.consent.create")
    notice = services.current_notice(person.municipality_id)
    form = None
    if request.method == "POST":
        if notice is None:
            messages.error(request, _("Publish a privacy notice before capturing consent."))
            return redirect("census-consent", uuid=person.uuid)
        form = ConsentForm(request.POST, notice=notice)
        if form.is_valid():
            data = form.cleaned_data
            try:
                services.record_consent(
                    person,
                    actor=request.user,
                    notice=notice,
                    purposes=data["purposes"],
                    sensitive=data["sensitive"],
                    channel=data["channel"],
                )
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                messages.success(request, _("Consent recorded for %(name)s.") % {"name": person.full_name})
                return redirect(household_url(person.household, f"person-{person.uuid}"))
    context = _consent_context(request, person, notice, form=form)
    return render(request, "web/census/consent.html", context)


@login_required
@require_POST
def census_consent_revoke(request, uuid):
    person = person_or_404(request, uuid)
    require_or_refuse(request, Perm.EDIT_REGISTRY, person.node, "registry.consent.revoke")
    notice = services.current_notice(person.municipality_id)
    form = RevokeConsentForm(request.POST, prefix="revoke")
    current = services.active_consent(person)
    if form.is_valid():
        if current is None:
            form.add_error(None, _("This person has no consent to revoke."))
        else:
            try:
                services.revoke_consent(current, actor=request.user, reason=form.cleaned_data["reason"])
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                messages.success(request, _("Consent revoked for %(name)s.") % {"name": person.full_name})
                return redirect(household_url(person.household, f"person-{person.uuid}"))
    context = _consent_context(request, person, notice, revoke_form=form)
    return render(request, "web/census/consent.html", context)
