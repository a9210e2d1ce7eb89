"""JSON API for municipalities, level schemas and territory nodes.

Reads go through ``redes.accounts.scoping``; writes through ``redes.territories.services``. Nodes are named by
UUID; a missing, foreign or malformed UUID answers 404.
"""

from typing import Any
from uuid import UUID

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, Q
from django.http import Http404, HttpRequest
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from ninja import Field, File, Form, Query, Router, Schema, Status
from ninja.files import UploadedFile
from ninja.pagination import paginate

from redes.accounts import scoping
from redes.accounts.roles import Perm
from redes.core.api import (
    ERRORS,
    WRITE_ERRORS,
    ErrorItem,
    ErrorOut,
    Input,
    NotFound,
    Paginator,
    attempt,
    user_of,
)
from redes.liaisons.services import Coverage, coverage, coverage_by_child, current_liaisons, vacant_posts

from . import services
from .importers import import_territory
from .models import MAX_DEPTH, MUNICIPALITY_DEPTH, Level, Municipality, Node, NodeKind

router = Router()

MUNICIPALITIES = "Municipalities"
NODES = "Territory nodes"

SQUARE = {
    "type": "Polygon",
    "coordinates": [
        [[-100.33, 25.79], [-100.32, 25.79], [-100.32, 25.80], [-100.33, 25.80], [-100.33, 25.79]]
    ],
}


# --- lookups --------------------------------------------------------------------------------------------------


def level_label(node: Node, request: HttpRequest | None) -> str:
    """The level name of a node (its kind above the municipality's units), cached per request."""
    if node.kind != NodeKind.UNIT:
        return str(NodeKind(node.kind).label)
    cache = request.__dict__.setdefault("_redes_level_names", {}) if request is not None else {}
    names = cache.get(node.municipality_id)
    if names is None:
        names = list(
            Level.objects.filter(municipality_id=node.municipality_id)
            .order_by("position")
            .values_list("name", flat=True)
        )
        cache[node.municipality_id] = names
    index = node.depth - MUNICIPALITY_DEPTH - 1
    return names[index] if 0 <= index < len(names) else ""


def find_node(
    request: HttpRequest, key: str, perm: str = Perm.VIEW_TERRITORY, loc: list | None = None
) -> Node:
    """A node the user reaches with ``perm``, by UUID; 404 otherwise (``loc`` names the input in the answer)."""
    try:
        return scoping.get_scoped_or_404(
            Node.objects.select_related("municipality", "parent"), user_of(request), perm, uuid=key
        )
    except Http404 as exc:
        raise NotFound(loc) from exc


def find_municipality(request: HttpRequest, key: str, loc: list | None = None) -> Municipality:
    """A municipality the user reaches, by UUID or by its 5-digit INEGI key; 404 otherwise."""
    key = (key or "").strip()
    lookup = {"code": key} if key.isdigit() and len(key) == 5 else {"uuid": key}
    qs = scoping.municipalities(user_of(request)).select_related("node")
    try:
        return qs.get(**lookup)
    except (Municipality.DoesNotExist, ValidationError, ValueError) as exc:
        raise NotFound(loc) from exc


# --- schemas --------------------------------------------------------------------------------------------------


class LevelOut(Schema):
    position: int = Field(..., examples=[1], description="1 is the level just below the municipality.")
    name: str = Field(..., examples=["Sector"])
    depth: int = Field(..., examples=[3], description="Depth in the national tree (nation = 0).")


class MunicipalityOut(Schema):
    uuid: UUID
    code: str = Field(
        ..., examples=["19021"], description="INEGI key: 2 digits of state + 3 of municipality."
    )
    name: str = Field(..., examples=["General Escobedo"])
    state_code: str = Field(..., examples=["19"])
    node: UUID = Field(..., description="The municipality's node in the territory tree.")
    levels: list[LevelOut]

    @staticmethod
    def resolve_node(obj: Municipality) -> UUID:
        return obj.node.uuid

    @staticmethod
    def resolve_levels(obj: Municipality) -> list[dict]:
        return [{"position": lv.position, "name": lv.name, "depth": lv.depth} for lv in obj.levels.all()]


class LevelCount(Schema):
    level: str = Field(..., examples=["Manzana"])
    depth: int
    units: int = Field(..., description="Units of this level that the caller reaches.")


class MunicipalityDetail(MunicipalityOut):
    state_name: str = Field(..., examples=["Nuevo León"])
    units: list[LevelCount]


class MunicipalityIn(Input):
    code: str = Field(..., examples=["19021"], description="INEGI key, 5 digits.")
    name: str = Field(..., examples=["General Escobedo"])
    levels: list[str] = Field(
        ..., examples=[["Sector", "Manzana"]], description="2 to 5 level names, top first."
    )
    state_name: str = Field("", examples=["Nuevo León"], description="Used when the state is new.")
    geometry: dict[str, Any] | None = Field(None, description="GeoJSON Polygon or MultiPolygon (WGS84).")


class LevelsIn(Input):
    levels: list[str] = Field(..., examples=[["Sector", "Zona", "Manzana"]])


class NodeRef(Schema):
    uuid: UUID
    code: str = Field(..., examples=["S01"])
    name: str = Field(..., examples=["Sector 1"])
    kind: str = Field(..., examples=["unit"], description="nation, state, municipality or unit.")
    level: str = Field(..., examples=["Sector"])
    depth: int = Field(..., examples=[3])

    @staticmethod
    def resolve_level(obj: Node, context) -> str:
        return level_label(obj, context["request"] if context else None)


class NodeOut(NodeRef):
    parent: UUID | None = Field(None, description="The parent node (null for the nation).")
    municipality: UUID | None = Field(None, description="The municipality (null above municipalities).")
    centroid_lat: float | None = Field(None, examples=[25.795])
    centroid_lon: float | None = Field(None, examples=[-100.325])
    has_geometry: bool

    @staticmethod
    def resolve_parent(obj: Node) -> UUID | None:
        return obj.parent.uuid if obj.parent_id else None

    @staticmethod
    def resolve_municipality(obj: Node) -> UUID | None:
        return obj.municipality.uuid if obj.municipality_id else None

    @staticmethod
    def resolve_has_geometry(obj: Node) -> bool:
        return obj.geometry is not None


class AncestorOut(NodeRef):
    reachable: bool = Field(..., description="Whether the caller may open this ancestor.")


class NodeDetail(NodeOut):
    ancestors: list[AncestorOut] = Field(
        ..., description="The breadcrumb, from the nation down to the parent."
    )
    children: int = Field(..., description="Number of direct children.")
    geometry: dict[str, Any] | None = Field(None, description="GeoJSON geometry, only with ?geometry=true.")

    @staticmethod
    def resolve_ancestors(obj: Node, context) -> list[Node]:
        user = user_of(context["request"])
        ancestors = obj.ancestors()
        for a in ancestors:
            a.reachable = scoping.can(user, Perm.VIEW_TERRITORY, a)
        return ancestors

    @staticmethod
    def resolve_children(obj: Node) -> int:
        return obj.children.count()

    @staticmethod
    def resolve_geometry(obj: Node) -> dict | None:
        return obj.geometry if getattr(obj, "with_geometry", False) else None


class NodeFilters(Input):
    municipality: str | None = Field(None, description="Municipality UUID or INEGI key, e.g. 19021.")
    subtree: str | None = Field(None, description="Only nodes under this node (itself included).")
    parent: str | None = Field(None, description="Only the direct children of this node.")
    level: str | None = Field(
        None, description="Level name (e.g. Manzana) or position (1 = just below the municipality)."
    )
    depth: int | None = Field(
        None, ge=0, le=MAX_DEPTH, description="Depth in the national tree (nation = 0)."
    )
    q: str | None = Field(None, max_length=100, description="Search in names and codes.")


class NodeIn(Input):
    parent: str = Field(..., description="UUID of the parent node (the municipality or a unit).")
    code: str = Field(..., max_length=32, examples=["S01-M003"])
    name: str = Field(..., max_length=200, examples=["Manzana 3"])
    level: str | None = Field(
        None, examples=["Manzana"], description="Optional check: the level the new unit must be at."
    )
    geometry: dict[str, Any] | None = Field(None, examples=[SQUARE], description="GeoJSON geometry (WGS84).")


class NodePatch(Input):
    code: str | None = Field(None, max_length=32, examples=["S01-M003"])
    name: str | None = Field(None, max_length=200, examples=["Manzana 3 (norte)"])
    geometry: dict[str, Any] | None = Field(
        None, description="GeoJSON geometry; send null to remove it, leave it out to keep it."
    )


class MoveIn(Input):
    parent: str = Field(..., description="UUID of the new parent (of the level above the node's).")


class RemovedOut(Schema):
    removed: int = Field(..., examples=[1], description="Units removed (the node and its subtree).")


class CoverageNumbers(Schema):
    covered: int = Field(..., examples=[3])
    total: int = Field(..., examples=[4])
    ratio: float | None = Field(None, examples=[0.75], description="covered / total; null without units.")
    percent: int | None = Field(None, examples=[75])


class ChildCoverage(CoverageNumbers):
    node: NodeRef
    has_liaison: bool = Field(..., description="Whether the child itself has an active liaison.")


class CoverageOut(CoverageNumbers):
    node: NodeRef
    children: list[ChildCoverage] = Field(..., description="Coverage of the units under each child.")
    vacant_count: int = Field(..., description="Units under the node with no active liaison.")
    vacant: list[NodeRef] = Field(..., description="Vacant posts, shallowest first (up to vacant_limit).")


class ImportErrorItem(ErrorItem):
    row: int = Field(
        ..., examples=[7], description="Row (CSV line or GeoJSON feature number); 0 for the file."
    )
    field: str = Field("", examples=["parent_code"])
    code: str = Field(..., examples=["unknown_parent"], description="A stable error code.")


class ImportReportOut(Schema):
    detail: str = Field(..., examples=["Imported 120 units."])
    ok: bool
    format: str = Field(..., examples=["csv"])
    total_rows: int
    created: int
    error_count: int
    errors: list[ImportErrorItem] = Field(default_factory=list, description="At most 1,000 are listed.")


def _numbers(cov) -> dict:
    return {"covered": cov.covered, "total": cov.total, "ratio": cov.ratio, "percent": cov.percent}


# --- municipalities -------------------------------------------------------------------------------------------


@router.get(
    "/municipalities",
    response={200: list[MunicipalityOut], **ERRORS},
    tags=[MUNICIPALITIES],
    summary="Municipalities the caller reaches",
)
@paginate(Paginator)
def list_municipalities(request):
    """Every municipality the caller holds a membership in or under (observers: all those under their node).

    Paginated (``limit`` at most 500), by INEGI key."""
    return (
        scoping.municipalities(user_of(request))
        .select_related("node")
        .prefetch_related("levels")
        .order_by("code")
    )


@router.get(
    "/municipalities/{uuid}",
    response={200: MunicipalityDetail, **ERRORS},
    tags=[MUNICIPALITIES],
    summary="One municipality with its level schema",
)
def get_municipality(request, uuid: str):
    """``uuid`` may also be the INEGI key (e.g. 19021). ``units`` counts the units the caller reaches per level."""
    municipality = find_municipality(request, uuid)
    counts = dict(
        scoping.visible_nodes(user_of(request))
        .filter(municipality=municipality, kind=NodeKind.UNIT)
        .values_list("depth")
        .annotate(n=Count("pk"))
    )
    state = municipality.node.parent
    municipality.state_name = state.name if state else ""
    municipality.units = [
        {"level": lv.name, "depth": lv.depth, "units": counts.get(lv.depth, 0)}
        for lv in municipality.levels.all()
    ]
    return municipality


@router.post(
    "/municipalities",
    response={201: MunicipalityOut, **WRITE_ERRORS},
    tags=[MUNICIPALITIES],
    summary="Create a municipality (superusers only)",
)
def create_municipality(request, payload: MunicipalityIn):
    user = user_of(request)
    with attempt(request, "territories.municipality.create"):
        if not user.is_superuser:
            raise PermissionDenied(_("Only superusers can create municipalities."))
        municipality = services.create_municipality(
            payload.code,
            payload.name,
            payload.levels,
            actor=user,
            state_name=payload.state_name,
            geometry=payload.geometry,
        )
    return Status(201, municipality)


@router.get(
    "/municipalities/{uuid}/levels",
    response={200: list[LevelOut], **ERRORS},
    tags=[MUNICIPALITIES],
    summary="The level schema of a municipality",
)
def get_levels(request, uuid: str):
    return find_municipality(request, uuid).levels.all()


@router.put(
    "/municipalities/{uuid}/levels",
    response={200: list[LevelOut], **WRITE_ERRORS},
    tags=[MUNICIPALITIES],
    summary="Replace the level schema",
    description="Rename levels, or add or drop levels at the bottom (only empty levels can be dropped). "
    "Needs the territory-management permission over the whole municipality.",
)
def put_levels(request, uuid: str, payload: LevelsIn):
    user = user_of(request)
    with attempt(request, "territories.levels.update") as a:
        a.obj = municipality = find_municipality(request, uuid)
        if not scoping.can(user, Perm.MANAGE_TERRITORY, municipality.node):
            raise PermissionDenied
        services.set_levels(municipality, payload.levels, actor=user)
    return municipality.levels.all()


@router.post(
    "/municipalities/{uuid}/import",
    response={**WRITE_ERRORS, 201: ImportReportOut, 400: ImportReportOut},
    tags=[MUNICIPALITIES],
    summary="Import territory units from CSV or GeoJSON",
    description="Multipart upload: ``file`` and ``format`` (``csv`` or ``geojson``; guessed from the file name "
    "when left out). CSV columns: code, name, level, parent code. Every row is checked first; when any row is "
    "wrong nothing is imported and the answer (400) lists the errors row by row.",
)
def import_units(request, uuid: str, file: File[UploadedFile], format: Form[str | None] = None):
    user = user_of(request)
    with attempt(request, "territories.territory.import") as a:
        a.obj = municipality = find_municipality(request, uuid)
        if not scoping.can(user, Perm.MANAGE_TERRITORY, municipality.node):
            raise PermissionDenied
        limit = getattr(settings, "REDES_MAX_IMPORT_BYTES", 200 * 1024 * 1024)
        if file.size is not None and file.size > limit:
            # Refused before reading the upload into memory.
            raise ValidationError(
                {
                    "file": _("The file is too large (%(size)s MB); the limit is %(limit)s MB.")
                    % {"size": round(file.size / 2**20, 1), "limit": round(limit / 2**20, 1)}
                }
            )
        fmt = (format or "").strip().lower() or _guess_format(file.name)
        if fmt not in ("csv", "geojson", "json"):
            raise ValidationError(
                {"format": _("Unknown file format; use csv or geojson (or name the file .csv or .geojson).")}
            )
    report = import_territory(municipality, file.read(), fmt, actor=user)
    body = report.as_dict()
    body["errors"] = [
        {
            **e,
            "loc": ["file", e["row"], e["field"]] if e["field"] else ["file", e["row"]],
            "msg": e["message"],
        }
        for e in body["errors"]
    ]
    if report.ok:
        body["detail"] = ngettext("Imported %(count)s unit.", "Imported %(count)s units.", report.created) % {
            "count": report.created
        }
        return Status(201, body)
    body["detail"] = ngettext(
        "Nothing was imported: the file has %(count)s error.",
        "Nothing was imported: the file has %(count)s errors.",
        report.error_count,
    ) % {"count": report.error_count}
    return Status(400, body)


def _guess_format(filename: str | None) -> str:
    name = (filename or "").lower()
    if name.endswith(".csv"):
        return "csv"
    if name.endswith((".geojson", ".json")):
        return "geojson"
    return ""


# --- nodes ----------------------------------------------------------------------------------------------------


def _level_depth(municipality: Municipality, level: str, where: str = "body") -> int:
    level = level.strip()
    if level.isdigit():
        position = int(level)
        if 1 <= position <= len(municipality.level_names()):
            return MUNICIPALITY_DEPTH + position
    else:
        depth = municipality.depth_of_level(level)
        if depth is not None:
            return depth
    raise ValidationError(
        {
            f"{where}.level": _("“%(level)s” is not a level of %(municipality)s (levels: %(levels)s).")
            % {
                "level": level,
                "municipality": municipality.name,
                "levels": ", ".join(municipality.level_names()),
            }
        }
    )


@router.get(
    "/nodes",
    response={200: list[NodeOut], **ERRORS, 400: ErrorOut},
    tags=[NODES],
    summary="Search the territory the caller reaches",
    description="Filters combine. ``level`` needs a municipality (from ``municipality``, ``subtree`` or "
    "``parent``). Paginated with ``limit`` (at most 500) and ``offset``.",
)
@paginate(Paginator)
def list_nodes(request, filters: Query[NodeFilters]):
    user = user_of(request)
    qs = scoping.visible_nodes(user).select_related("municipality", "parent")
    municipality = None
    if filters.municipality:
        municipality = find_municipality(request, filters.municipality, loc=["query", "municipality"])
        qs = qs.filter(municipality=municipality)
    if filters.subtree:
        top = find_node(request, str(filters.subtree), loc=["query", "subtree"])
        qs = qs.filter(**{f"a{top.depth}": top.pk})
        municipality = municipality or top.municipality
    if filters.parent:
        parent = find_node(request, filters.parent, loc=["query", "parent"])
        qs = qs.filter(parent=parent)
        municipality = municipality or parent.municipality
    if filters.level:
        if municipality is None:
            raise ValidationError(
                {"query.level": _("Filtering by level needs a municipality, a subtree or a parent.")}
            )
        qs = qs.filter(municipality=municipality, depth=_level_depth(municipality, filters.level, "query"))
    if filters.depth is not None:
        qs = qs.filter(depth=filters.depth)
    if filters.q:
        qs = qs.filter(Q(name__icontains=filters.q.strip()) | Q(code__icontains=filters.q.strip()))
    return qs.order_by("depth", "code", "pk")


@router.get(
    "/nodes/{uuid}",
    response={200: NodeDetail, **ERRORS},
    tags=[NODES],
    summary="One node, with its breadcrumb",
)
def get_node(request, uuid: str, geometry: bool = False):
    node = find_node(request, uuid)
    node.with_geometry = geometry
    return node


@router.post(
    "/nodes",
    response={201: NodeOut, **WRITE_ERRORS},
    tags=[NODES],
    summary="Create a unit under a parent",
    description="The new unit's level is the one below its parent's. Needs territory management over the parent.",
)
def create_node(request, payload: NodeIn):
    user = user_of(request)
    with attempt(request, "territories.node.create") as a:
        a.obj = parent = find_node(request, payload.parent, loc=["body", "parent"])
        scoping.require(user, Perm.MANAGE_TERRITORY, parent)
        municipality = parent.municipality
        if municipality is None or parent.kind not in (NodeKind.MUNICIPALITY, NodeKind.UNIT):
            raise ValidationError({"parent": _("Units can only be created inside a municipality.")})
        if payload.level:
            wanted = _level_depth(municipality, payload.level)
            if wanted != parent.depth + 1:
                raise ValidationError(
                    {
                        "level": _("A unit under “%(parent)s” is a %(level)s, not a %(wanted)s.")
                        % {
                            "parent": parent.name,
                            "level": _level_or_none(municipality, parent.depth + 1),
                            "wanted": payload.level,
                        }
                    }
                )
        node = services.create_node(
            municipality, parent, payload.code, payload.name, actor=user, geometry=payload.geometry
        )
    return Status(201, node)


def _level_or_none(municipality: Municipality, depth: int) -> str:
    try:
        return municipality.level_name(depth)
    except ValidationError:
        return "—"


@router.patch(
    "/nodes/{uuid}",
    response={200: NodeOut, **WRITE_ERRORS},
    tags=[NODES],
    summary="Rename, re-code or re-draw a unit",
)
def update_node(request, uuid: str, payload: NodePatch):
    user = user_of(request)
    with attempt(request, "territories.node.update") as a:
        a.obj = node = find_node(request, uuid)
        scoping.require(user, Perm.MANAGE_TERRITORY, node)
        if node.kind != NodeKind.UNIT:
            raise ValidationError(_("Only territorial units can be edited through the API."))
        kwargs = {"name": payload.name, "code": payload.code}
        if "geometry" in payload.model_fields_set:
            kwargs["geometry"] = payload.geometry
        node = services.update_node(node, actor=user, **kwargs)
    return node


@router.post(
    "/nodes/{uuid}/move",
    response={200: NodeOut, **WRITE_ERRORS},
    tags=[NODES],
    summary="Move a unit (and its subtree) under another parent",
)
def move_node(request, uuid: str, payload: MoveIn):
    user = user_of(request)
    with attempt(request, "territories.node.move") as a:
        a.obj = node = find_node(request, uuid)
        scoping.require(user, Perm.MANAGE_TERRITORY, node)
        new_parent = find_node(request, payload.parent, loc=["body", "parent"])
        scoping.require(user, Perm.MANAGE_TERRITORY, new_parent)
        node = services.move_node(node, new_parent, actor=user)
    return Node.objects.select_related("municipality", "parent").get(pk=node.pk)


@router.delete(
    "/nodes/{uuid}",
    response={200: RemovedOut, **WRITE_ERRORS},
    tags=[NODES],
    summary="Remove a unit",
    description="A unit with units below it is removed only with ``?cascade=true`` (the whole branch).",
)
def delete_node(request, uuid: str, cascade: bool = False):
    user = user_of(request)
    with attempt(request, "territories.node.remove") as a:
        a.obj = node = find_node(request, uuid)
        scoping.require(user, Perm.MANAGE_TERRITORY, node)
        removed = services.remove_node(node, actor=user, cascade=cascade)
    return {"removed": removed}


@router.get(
    "/nodes/{uuid}/coverage",
    response={200: CoverageOut, **ERRORS, 403: ErrorOut},
    tags=[NODES],
    summary="Liaison coverage under a node",
    description="Aggregates only (no names or phones): covered/total units below the node, the same per child, "
    "and the vacant posts.",
)
def get_coverage(request, uuid: str, vacant_limit: int = Query(100, ge=0, le=1000)):
    user = user_of(request)
    node = find_node(request, uuid)
    scoping.require(user, Perm.VIEW_AGGREGATES, node)
    children = list(node.children.select_related("municipality").order_by("code"))
    by_child = coverage_by_child(node)
    held = current_liaisons(children)
    vacant = vacant_posts(node)
    empty = _numbers(Coverage(covered=0, total=0))
    return {
        **_numbers(coverage(node)),
        "node": node,
        "children": [
            {
                **(_numbers(by_child[c.pk]) if c.pk in by_child else empty),
                "node": c,
                "has_liaison": c.pk in held,
            }
            for c in children
        ],
        "vacant_count": vacant.count(),
        "vacant": list(vacant[:vacant_limit]),
    }


@router.get(
    "/nodes/{uuid}/geojson",
    response={200: dict[str, Any], **ERRORS},
    tags=[NODES],
    summary="The children of a node as a GeoJSON FeatureCollection",
    description="One Feature per child that has a geometry; properties: uuid, code, name, level. No personal data.",
)
def get_geojson(request, uuid: str):
    node = find_node(request, uuid)
    children = node.children.exclude(geometry__isnull=True).order_by("code")
    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "id": str(c.uuid),
                "geometry": c.geometry,
                "properties": {
                    "uuid": str(c.uuid),
                    "code": c.code,
                    "name": c.name,
                    "level": level_label(c, request),
                },
            }
            for c in children
        ],
    }
