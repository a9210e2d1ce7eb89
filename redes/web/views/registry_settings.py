"""Municipality-wide registry settings for coordinators: vulnerability weights and privacy notices.

Both need MANAGE_REGISTRY at the municipality's own node. A coordinator of several municipalities picks one
with ``?m=<uuid>``.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db.models import Count
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from redes.registry import services, vulnerability
from redes.registry.models import Household, PrivacyNotice, RecordStatus

from ..forms_registry import NoticeForm, WeightsForm
from .common import add_service_errors
from .registry_common import chosen_municipality


def _priority_households(municipality, threshold: int) -> int:
    return Household.objects.filter(
        municipality=municipality, status=RecordStatus.ACTIVE, priority__gte=threshold
    ).count()


def _back(name: str, municipality, choices) -> str:
    url = reverse(name)
    return f"{url}?m={municipality.uuid}" if len(choices) > 1 else url


def _band_preview(municipality, weights: dict[str, int], threshold: int, old_threshold: int) -> dict:
    """How many households would enter or leave the priority band with these weights, without saving.

    Works from each household's stored explanation, so nothing is decrypted: declared and derived factors are
    re-weighted; the "protected" line (the sensitive factors, folded) keeps its points. Changes this cannot
    see — a sensitive weight, or a weight raised from 0 (such factors are not in the explanations) — are
    listed as ``unseen``; saving recomputes everything from the records."""
    entering = leaving = changed = 0
    rows = Household.objects.filter(municipality=municipality, status=RecordStatus.ACTIVE).values_list(
        "priority", "priority_explanation"
    )
    for priority, explanation in rows.iterator(chunk_size=2000):
        total = 0
        for line in explanation or []:
            code = line.get("factor")
            factor = vulnerability.FACTORS.get(code)
            if factor is not None and not factor.sensitive:
                total += weights.get(code, 0)
            else:
                total += int(line.get("points") or 0)
        score = min(vulnerability.MAX_SCORE, total)
        changed += score != priority
        was, now = priority >= old_threshold, score >= threshold
        entering += now and not was
        leaving += was and not now
    current = vulnerability.weights_for(services.policy_for(municipality).weights)
    unseen = [
        code
        for code, factor in vulnerability.FACTORS.items()
        if (factor.sensitive and weights.get(code, 0) != current[code])
        or (current[code] == 0 and weights.get(code, 0) > 0)
    ]
    return {
        "entering": entering,
        "leaving": leaving,
        "changed": changed,
        "unseen": [str(vulnerability.FACTORS[code].label) for code in unseen],
    }


@login_required
@require_http_methods(["GET", "POST"])
def weights(request):
    municipality, choices = chosen_municipality(request, "registry.policy.update")
    policy = services.policy_for(municipality)
    current = vulnerability.weights_for(policy.weights)
    form = WeightsForm(
        request.POST if request.method == "POST" else None,
        current=current,
        initial={"threshold": policy.priority_threshold},
    )
    preview = None
    if request.method == "POST" and form.is_valid() and "preview" in request.POST:
        preview = _band_preview(
            municipality, form.weights(), form.cleaned_data["threshold"], policy.priority_threshold
        )
    elif request.method == "POST" and form.is_valid():
        before = _priority_households(municipality, policy.priority_threshold)
        try:
            changed = services.set_weights(
                municipality, form.weights(), actor=request.user, threshold=form.cleaned_data["threshold"]
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            after = _priority_households(municipality, form.cleaned_data["threshold"])
            messages.success(
                request,
                _(
                    "The weights were saved. %(changed)s households changed score; priority households: "
                    "%(before)s before, %(after)s now."
                )
                % {"changed": changed, "before": before, "after": after},
            )
            return redirect(_back("registry-weights", municipality, choices))
    households = Household.objects.filter(municipality=municipality, status=RecordStatus.ACTIVE)
    context = {
        "municipality": municipality,
        "choices": choices,
        "form": form,
        "rows": list(form.weight_rows(current)),
        "threshold": policy.priority_threshold,
        "max_score": vulnerability.MAX_SCORE,
        "older_adult_age": vulnerability.OLDER_ADULT_AGE,
        "young_child_age": vulnerability.YOUNG_CHILD_AGE,
        "households": households.count(),
        "priority_households": households.filter(priority__gte=policy.priority_threshold).count(),
        "policy": policy,
        "preview": preview,
    }
    return render(request, "web/registry/weights.html", context)


def _known_purposes(latest: PrivacyNotice | None) -> list[tuple[str, str, str]]:
    """The purposes offered as rows: the standard ones, then any other of the latest notice."""
    rows: dict[str, tuple[str, str, str]] = {}
    previous = {p["code"]: p for p in (latest.purposes if latest else [])}
    for p in services.DEFAULT_PURPOSES:
        code = p["code"]
        source = previous.get(code, p if not previous else None)
        initial = "" if source is None else ("necessary" if source.get("necessary") else "optional")
        rows[code] = (code, services.purpose_label(code), initial)
    for code, p in previous.items():
        if code not in rows:
            rows[code] = (code, p.get("label") or code, "necessary" if p.get("necessary") else "optional")
    return list(rows.values())


def _stored_purposes(purposes: list[dict]) -> list[dict]:
    """Standard purposes are stored without a label, so that each reader sees it in their own language."""
    standard = {p["code"] for p in services.DEFAULT_PURPOSES}
    return [{k: v for k, v in p.items() if not (k == "label" and p["code"] in standard)} for p in purposes]


@login_required
@require_http_methods(["GET", "POST"])
def notices(request):
    municipality, choices = chosen_municipality(request, "registry.notice.publish")
    versions = list(
        PrivacyNotice.objects.filter(municipality=municipality)
        .annotate(consents_count=Count("consents"))
        .order_by("-published_at")
    )
    latest = versions[0] if versions else None
    form = NoticeForm(request.POST if request.method == "POST" else None, known=_known_purposes(latest))
    if request.method == "POST" and form.is_valid():
        try:
            notice = services.publish_notice(
                municipality,
                version=form.cleaned_data["version"],
                text=form.cleaned_data["text"],
                purposes=_stored_purposes(form.purposes()),
                actor=request.user,
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(
                request,
                _("Version %(version)s of the privacy notice was published.") % {"version": notice.version},
            )
            return redirect(_back("registry-notices", municipality, choices))
    for notice in versions:
        notice.purpose_rows = [
            {
                "label": p.get("label") or services.purpose_label(p["code"]),
                "code": p["code"],
                "necessary": bool(p.get("necessary")),
            }
            for p in notice.purposes
        ]
    context = {"municipality": municipality, "choices": choices, "versions": versions, "form": form}
    return render(request, "web/registry/notices.html", context)
