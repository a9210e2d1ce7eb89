"""A person's sensitive data for case officers: read (every GET is an audited read) and record.

Who may see the person (VIEW_PERSONAL over their block) but is not a case officer gets 403, and the refused
attempt is audited by the service; everyone else gets 404. Nothing here may be cached anywhere.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from redes.accounts.roles import Perm
from redes.accounts.scoping import get_scoped_or_404
from redes.registry import crypto, queries, services, vulnerability

from ..forms_registry import SensitiveForm
from .common import add_service_errors
from .registry_common import optional_url


def _no_store(response):
    response["Cache-Control"] = "no-store, private, max-age=0"
    response["Pragma"] = "no-cache"
    return response


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def person_sensitive(request, uuid):
    person = get_scoped_or_404(
        queries.persons(request.user).select_related("household", "node"),
        request.user,
        Perm.VIEW_PERSONAL,
        via="node",
        uuid=uuid,
    )
    form = None
    if request.method == "POST":
        form = SensitiveForm(request.POST)
        if form.is_valid():
            try:
                services.set_sensitive(
                    person,
                    actor=request.user,
                    factors=form.cleaned_data["factors"],
                    notes=form.cleaned_data["notes"],
                )
            except PermissionDenied:
                raise
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                messages.success(request, _("The sensitive data was saved."))
                return _no_store(redirect("registry-person-sensitive", uuid=person.uuid))
    try:
        data = services.read_sensitive(person, actor=request.user)  # audited; 403 for non case officers
        unreadable = False
    except crypto.SensitiveDataUnreadable:
        data, unreadable = {}, True
    if form is None:
        form = SensitiveForm(initial={"factors": data.get("factors", []), "notes": data.get("notes", "")})
    consent = services.active_consent(person)
    context = {
        "person": person,
        "household": person.household,
        "factors": [
            vulnerability.FACTORS[code].label
            for code in data.get("factors", [])
            if code in vulnerability.FACTORS
        ],
        "notes": data.get("notes", ""),
        "has_data": bool(person.sensitive_data),
        "unreadable": unreadable,
        "consent": consent,
        "has_consent": bool(consent and consent.sensitive),
        "consent_url": optional_url("census-person-consent", person.uuid)
        or optional_url("census-consent", person.uuid),
        "form": form,
    }
    return _no_store(render(request, "web/registry/sensitive.html", context))
