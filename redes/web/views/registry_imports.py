"""Bulk import of households and persons for coordinators: upload → column mapping and mode → preview →
start → progress (an htmx fragment polled every second) → report, with the full errors as a CSV download.

The work is done by ``registry.importing`` (validation, block assignment, duplicate flagging) as a background
task; these views only collect the choices and show the job's state.
"""

from __future__ import annotations

from pathlib import Path

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import FileResponse, Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from redes.accounts import scoping
from redes.accounts.roles import Perm
from redes.audit.models import Outcome
from redes.audit.services import record_denied
from redes.registry.models import ImportJob
from redes.territories.models import Node

from ..forms_registry import ImportUploadForm, MappingForm
from .common import PAGE_SIZE, add_service_errors, is_htmx
from .registry_common import require_manage

FINISHED = {ImportJob.Status.DONE, ImportJob.Status.REJECTED, ImportJob.Status.FAILED}
REPORT_ERRORS = 50


def _importing():
    from redes.registry import importing

    return importing


def _jobs(user):
    return scoping.scoped(
        ImportJob.objects.select_related("node", "municipality", "created_by"),
        user,
        Perm.MANAGE_REGISTRY,
        via="node",
    )


def _job_or_404(request, uuid) -> ImportJob:
    return scoping.get_scoped_or_404(
        ImportJob.objects.select_related("node", "municipality", "created_by"),
        request.user,
        Perm.MANAGE_REGISTRY,
        via="node",
        uuid=uuid,
    )


def _get(obj, name, default=None):
    """Read ``name`` from a dict or an object (the importer's results may be either)."""
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)


def _percent(job: ImportJob) -> int:
    if job.status in FINISHED and job.status != ImportJob.Status.FAILED:
        return 100
    if not job.total_rows:
        return 0
    done = job.processed_rows
    if job.phase == "writing":
        done = max(done, _importing().live_progress(job) or 0)
    return min(100, round(100 * done / job.total_rows))


def _columns(job: ImportJob) -> list[str]:
    """The file's column headers as the importer read them on upload."""
    report = job.report or {}
    for key in ("columns", "headers", "header"):
        if report.get(key):
            return [str(c) for c in report[key]]
    importing = _importing()
    if hasattr(importing, "columns"):
        return [str(c) for c in importing.columns(job)]
    return sorted({str(v) for v in (job.mapping or {}).values() if v})


def _report_errors(job: ImportJob) -> list[dict]:
    report = job.report or {}
    errors = report.get("errors") or report.get("first_errors") or []
    out = []
    for e in errors[:REPORT_ERRORS]:
        if isinstance(e, dict):
            out.append(
                {
                    "row": e.get("row"),
                    "column": e.get("column") or e.get("field", ""),
                    "message": e.get("message", ""),
                }
            )
        elif isinstance(e, (list, tuple)) and len(e) >= 3:
            out.append({"row": e[0], "column": e[1], "message": e[2]})
    return out


def _phase_label(phase: str) -> str:
    """A readable name of the importer's phase (the code itself for any other)."""
    labels = {
        "queued": _("Waiting to start"),
        "reading": _("Reading the file"),
        "validating": _("Checking the rows"),
        "placing": _("Placing households on their blocks"),
        "writing": _("Saving"),
        "duplicates": _("Looking for duplicates"),
        "done": _("Finished"),
        "failed": _("Failed"),
    }
    return str(labels.get(phase, phase or ""))


def _state(job: ImportJob) -> dict:
    return {
        "job": job,
        "percent": _percent(job),
        "finished": job.status in FINISHED,
        "errors": _report_errors(job) if job.status in FINISHED else [],
        "has_errors_csv": job.status in FINISHED and job.invalid_rows > 0,
        "phase_label": "" if job.status in FINISHED else _phase_label(job.phase),
        "failure": (job.report or {}).get("failure", ""),
    }


@login_required
@require_http_methods(["GET", "POST"])
def import_list(request):
    require_manage(request, "registry.import.create")
    municipalities = scoping.municipalities(request.user, Perm.MANAGE_REGISTRY).order_by("name")
    form = ImportUploadForm(
        request.POST if request.method == "POST" else None,
        request.FILES if request.method == "POST" else None,
        municipalities=municipalities,
    )
    if request.method == "POST" and form.is_valid():
        municipality = form.cleaned_data["municipality"]
        code = form.cleaned_data["node_code"].strip()
        nodes = scoping.scoped(Node.objects.all(), request.user, Perm.MANAGE_REGISTRY).filter(
            municipality=municipality
        )
        node = (
            nodes.filter(code__iexact=code).first() if code else nodes.filter(pk=municipality.node_id).first()
        )
        if node is None:
            if code:
                form.add_error(
                    "node_code",
                    _("No unit with the code “%(code)s” in %(municipality)s that you manage.")
                    % {"code": code, "municipality": municipality.name},
                )
            else:
                form.add_error("node_code", _("Give the code of a unit you manage."))
        else:
            upload = form.cleaned_data["file"]
            try:
                job = _importing().create_job(
                    municipality, node, upload, actor=request.user, filename=Path(upload.name).name
                )
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                return redirect("registry-import", uuid=job.uuid)
    page = Paginator(_jobs(request.user).order_by("-created_at", "-pk"), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    return render(request, "web/registry/imports.html", {"form": form, "page": page})


@login_required
@require_http_methods(["GET", "POST"])
def import_detail(request, uuid):
    """The job's page: the mapping form while it is uploaded, then its progress, then its report."""
    require_manage(request, "registry.import.map")
    job = _job_or_404(request, uuid)
    if job.status != ImportJob.Status.UPLOADED:
        if request.method == "POST":
            messages.warning(request, _("This import has already started; its mapping cannot change."))
            return redirect("registry-import", uuid=job.uuid)
        return render(request, "web/registry/import_job.html", _state(job))
    importing = _importing()
    form = MappingForm(
        request.POST if request.method == "POST" else None,
        fields=importing.FIELDS,
        columns=_columns(job),
        mapping=job.mapping or {},
        initial={"mode": job.mode},
    )
    if request.method == "POST" and form.is_valid():
        try:
            importing.set_mapping(job, form.mapping(), form.cleaned_data["mode"], actor=request.user)
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            return redirect("registry-import-preview", uuid=job.uuid)
    return render(request, "web/registry/import_mapping.html", {"job": job, "form": form})


def _row_errors(errors) -> list[str]:
    """Per-row errors as lines: ``{column: [messages]}`` or a list of strings / error dicts."""
    if isinstance(errors, dict):
        return [
            f"{column}: {message}" if column else message
            for column, msgs in errors.items()
            for message in msgs
        ]
    out = []
    for e in errors or []:
        if isinstance(e, str):
            out.append(e)
        else:
            column, message = _get(e, "column") or _get(e, "field") or "", _get(e, "message", "")
            out.append(f"{column}: {message}" if column else message)
    return out


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def _preview_cells(values: dict) -> list[str]:
    """One preview row as people read it: name, birth, sex, CURP, address, block, phones."""
    name = values.get("full_name") or " ".join(
        p for p in (values.get("given_name"), values.get("surname1"), values.get("surname2")) if p
    )
    if values.get("birth_date"):
        birth = _cell(values["birth_date"])
    elif values.get("birth_year"):
        birth = _("born about %(year)s") % {"year": values["birth_year"]}
    else:
        birth = ""
    address = ", ".join(
        p
        for p in (
            f"{values.get('street') or ''} {values.get('ext_number') or ''}".strip(),
            _("int. %(n)s") % {"n": values["int_number"]} if values.get("int_number") else "",
            values.get("colonia") or "",
            values.get("postal_code") or "",
        )
        if p
    )
    if values.get("lat") is not None and values.get("lon") is not None and not address:
        address = f"{values['lat']}, {values['lon']}"
    phones = list(
        dict.fromkeys([*(values.get("phones") or []), *([values["phone"]] if values.get("phone") else [])])
    )
    return [
        name,
        birth,
        values.get("sex") or "",
        values.get("curp") or "",
        address,
        values.get("block") or "",
        ", ".join(phones),
    ]


def _preview_context(job: ImportJob, result) -> dict:
    rows = []
    for row in _get(result, "rows", []) or []:
        errors = _row_errors(_get(row, "errors"))
        rows.append(
            {
                "number": _get(row, "row"),
                "cells": _preview_cells(_get(row, "values") or {}),
                "errors": errors,
                "ok": not errors,
            }
        )
    return {
        "job": job,
        "rows": rows,
        "total": _get(result, "total"),
        "valid": _get(result, "valid"),
        "invalid": _get(result, "invalid"),
        "households": _get(result, "households"),
        "columns": [_("Name"), _("Birth"), _("Sex"), _("CURP"), _("Address"), _("Block"), _("Phones")],
        "all_or_nothing": job.mode == ImportJob.Mode.ALL_OR_NOTHING,
    }


@login_required
@require_GET
def import_preview(request, uuid):
    require_manage(request)
    job = _job_or_404(request, uuid)
    if job.status != ImportJob.Status.UPLOADED:
        return redirect("registry-import", uuid=job.uuid)
    try:
        result = _importing().preview(job, limit=20)
    except ValidationError as exc:
        for message in exc.messages:
            messages.error(request, message)
        return redirect("registry-import", uuid=job.uuid)
    return render(request, "web/registry/import_preview.html", _preview_context(job, result))


@login_required
@require_POST
def import_start(request, uuid):
    require_manage(request, "registry.import.start")
    job = _job_or_404(request, uuid)
    if job.status != ImportJob.Status.UPLOADED:
        messages.warning(request, _("This import has already started."))
        return redirect("registry-import", uuid=job.uuid)
    try:
        _importing().start(job, actor=request.user)
    except ValidationError as exc:
        record_denied(
            "registry.import.start",
            actor=request.user,
            obj=job,
            reason="; ".join(exc.messages)[:300],
            outcome=Outcome.REJECTED,
        )
        for message in exc.messages:
            messages.error(request, message)
        return redirect("registry-import-preview", uuid=job.uuid)
    return redirect("registry-import", uuid=job.uuid)


@never_cache
@login_required
@require_GET
def import_progress(request, uuid):
    """The progress fragment, polled every second by the job's page until the import is finished."""
    require_manage(request)
    job = _job_or_404(request, uuid)
    template = "web/registry/_import_progress.html"
    response = render(request, template, {**_state(job), "fragment": is_htmx(request)})
    return response


@login_required
@require_GET
def import_errors_csv(request, uuid):
    require_manage(request)
    job = _job_or_404(request, uuid)
    path = _importing().errors_csv_path(job)
    if not path or not Path(path).exists():
        raise Http404
    stem = Path(job.filename).stem or "import"
    return FileResponse(
        open(path, "rb"),  # noqa: SIM115 - FileResponse closes it
        as_attachment=True,
        filename=f"{stem}-errors.csv",
        content_type="text/csv; charset=utf-8",
    )
