"""Data-subject (ARCO) requests for coordinators: the open ones with their deadlines, registering a request,
answering it, and the JSON export of a person's data for an access request.

The export comes from ``services.export_person``, which leaves sensitive data out unless the actor is a case
officer (coordinators are not), and is audited there. A small fragment (``requests_summary``) warns about the
requests due, for the home page to include with htmx.
"""

from __future__ import annotations

import datetime as dt
import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from redes.accounts import scoping
from redes.accounts.roles import Perm
from redes.accounts.scoping import get_scoped_or_404
from redes.registry import queries, services
from redes.registry.models import DataRequest, Person, RecordStatus

from ..forms_registry import AnswerForm, DataRequestForm, PersonSearchForm
from .common import PAGE_SIZE, add_service_errors
from .registry_common import person_for_manager, require_manage

#: Requests due within this many calendar days are shown as "due soon".
DUE_SOON_DAYS = 5


def _with_deadline(requests, today=None):
    today = today or timezone.localdate()
    rows = []
    for r in requests:
        days = (r.due_on - today).days
        rows.append(
            {
                "request": r,
                "days_left": days,
                "days_overdue": -days,
                "overdue": days < 0,
                "soon": 0 <= days <= DUE_SOON_DAYS,
            }
        )
    return rows


def _purposes_for(person) -> list[tuple[str, str]]:
    consent = services.active_consent(person)
    notice = consent.notice if consent else services.current_notice(person.municipality_id)
    if notice is None:
        return []
    return [(p["code"], p.get("label") or services.purpose_label(p["code"])) for p in notice.purposes]


@login_required
@require_GET
def request_list(request):
    require_manage(request)
    page = Paginator(
        queries.open_requests(request.user).select_related("person", "node"), PAGE_SIZE
    ).get_page(request.GET.get("page"))
    rows = _with_deadline(page.object_list)
    answered = scoping.scoped(
        DataRequest.objects.exclude(status=DataRequest.Status.OPEN).select_related("person"),
        request.user,
        Perm.MANAGE_REGISTRY,
        via="node",
    ).order_by("-answered_at", "-pk")[:10]
    context = {
        "page": page,
        "rows": rows,
        "overdue": sum(1 for row in rows if row["overdue"]),
        "answered": list(answered),
    }
    return render(request, "web/registry/requests.html", context)


@login_required
@require_GET
def requests_summary(request):
    """An HTML fragment: how many requests are open, due soon, overdue (empty if none).

    Answers 204 (nothing to show) to users who do not answer data requests. The home page renders the same
    context inline (``summary_context``)."""
    context = summary_context(request.user)
    if context is None:
        return HttpResponse(status=204)
    return render(request, "web/registry/_requests_summary.html", context)


def summary_context(user) -> dict | None:
    """Counts of the open data requests the user answers (None for users who answer none)."""
    if not scoping.can(user, Perm.MANAGE_REGISTRY):
        return None
    today = timezone.localdate()
    open_qs = queries.open_requests(user)
    return {
        "open": open_qs.count(),
        "overdue": open_qs.filter(due_on__lt=today).count(),
        "soon": open_qs.filter(
            due_on__gte=today, due_on__lte=today + dt.timedelta(days=DUE_SOON_DAYS)
        ).count(),
    }


@login_required
@require_http_methods(["GET", "POST"])
def request_new(request):
    require_manage(request, "registry.request.open")
    person_uuid = (request.GET.get("person") or request.POST.get("person") or "").strip()
    if not person_uuid:
        search = PersonSearchForm(request.GET or None)
        results = []
        if search.is_valid() and search.cleaned_data["q"].strip():
            found = [p.pk for p in queries.search_persons(request.user, search.cleaned_data["q"])]
            results = list(
                scoping.scoped(
                    Person.objects.filter(pk__in=found), request.user, Perm.MANAGE_REGISTRY, via="node"
                )
                .select_related("household", "node")
                .order_by("surname1_key", "surname2_key", "given_key", "pk")
            )
        return render(
            request,
            "web/registry/request_new.html",
            {"search": search, "results": results, "searched": bool(request.GET.get("q"))},
        )
    person = person_for_manager(request, person_uuid, include_inactive=False)
    form = DataRequestForm(request.POST if request.method == "POST" else None, purposes=_purposes_for(person))
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            created = services.open_data_request(
                person,
                data["kind"],
                actor=request.user,
                details=data["details"],
                purpose=data["purpose"] if data["kind"] == DataRequest.Kind.OBJECTION else "",
                changes=form.changes() if data["kind"] == DataRequest.Kind.RECTIFICATION else None,
            )
        except ValidationError as exc:
            if hasattr(exc, "error_dict"):
                for field, errors in exc.error_dict.items():
                    target = f"fix_{field}" if f"fix_{field}" in form.fields else None
                    for error in errors:
                        form.add_error(target, error.messages)
            else:
                add_service_errors(form, exc)
        else:
            messages.success(
                request,
                _("The request was registered. It must be answered by %(date)s.")
                % {"date": created.due_on.strftime("%Y-%m-%d")},
            )
            return redirect("registry-request", uuid=created.uuid)
    return render(request, "web/registry/request_new.html", {"person": person, "form": form})


def _request_or_404(request, uuid) -> DataRequest:
    return get_scoped_or_404(
        DataRequest.objects.select_related("person__household", "node", "answered_by", "created_by"),
        request.user,
        Perm.MANAGE_REGISTRY,
        via="node",
        uuid=uuid,
    )


@login_required
@require_http_methods(["GET", "POST"])
def request_detail(request, uuid):
    require_manage(request, "registry.request.answer")
    data_request = _request_or_404(request, uuid)
    is_open = data_request.status == DataRequest.Status.OPEN
    form = AnswerForm(request.POST if request.method == "POST" else None)
    if request.method == "POST":
        if not is_open:
            messages.warning(request, _("This request was already answered."))
            return redirect("registry-request", uuid=data_request.uuid)
        if form.is_valid():
            try:
                services.answer_data_request(
                    data_request,
                    actor=request.user,
                    response=form.cleaned_data["response"],
                    reject=form.cleaned_data["reject"],
                )
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                messages.success(
                    request,
                    _("The request was rejected.")
                    if form.cleaned_data["reject"]
                    else _("The request was answered."),
                )
                return redirect("registry-request", uuid=data_request.uuid)
    context = {
        "r": data_request,
        "row": _with_deadline([data_request])[0],
        "person": data_request.person,
        "is_open": is_open,
        "form": form,
        "purpose_label": services.purpose_label(data_request.purpose) if data_request.purpose else "",
        "changes": sorted(data_request.changes.items()),
        "can_export": data_request.kind == DataRequest.Kind.ACCESS
        and data_request.person.status != RecordStatus.ANONYMISED,
    }
    return render(request, "web/registry/request_detail.html", context)


@never_cache
@login_required
@require_GET
def request_export(request, uuid):
    """The person's data as a JSON file (ARCO access). Audited by the service."""
    require_manage(request)
    data_request = _request_or_404(request, uuid)
    if data_request.kind != DataRequest.Kind.ACCESS or data_request.person.status == RecordStatus.ANONYMISED:
        raise Http404
    data = services.export_person(data_request.person, actor=request.user)
    body = json.dumps(data, ensure_ascii=False, indent=2, default=str)
    response = HttpResponse(body, content_type="application/json; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="person-{data_request.person.uuid}.json"'
    response["Cache-Control"] = "no-store, private, max-age=0"
    return response
