"""The territory tree: nation → state → municipality → the municipality's own levels (2 to 5).

Every node stores the id of its ancestor at each depth (``a0`` … ``a7``, itself included at its own depth),
so that "everything under node N" is one indexed equality (``a{N.depth} = N.id``) and the aggregate of a level
is one GROUP BY (the DHIS2 analytics-table approach). ``services.py`` is the only writer of the tree.
"""

import uuid

from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _

NATION_DEPTH = 0
STATE_DEPTH = 1
MUNICIPALITY_DEPTH = 2
MIN_LEVELS = 2
MAX_LEVELS = 5
MAX_DEPTH = MUNICIPALITY_DEPTH + MAX_LEVELS  # 7
ANCESTOR_FIELDS = tuple(f"a{d}" for d in range(MAX_DEPTH + 1))


class NodeKind(models.TextChoices):
    NATION = "nation", _("Nation")
    STATE = "state", _("State")
    MUNICIPALITY = "municipality", _("Municipality")
    UNIT = "unit", _("Territorial unit")


class NodeQuerySet(models.QuerySet):
    def subtree(self, node: "Node", include_self: bool = True) -> "NodeQuerySet":
        qs = self.filter(**{f"a{node.depth}": node.pk})
        return qs if include_self else qs.exclude(pk=node.pk)

    def units(self) -> "NodeQuerySet":
        return self.filter(kind=NodeKind.UNIT)


def _ancestor_field(depth: int) -> models.BigIntegerField:
    # A plain id, not a foreign key: the tree services keep it consistent in bulk writes. Indexed together with
    # the depth (see Node.Meta.indexes), so "units of level L under node N" is an index-only range.
    return models.BigIntegerField(null=True, blank=True, editable=False)


class Node(models.Model):
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    kind = models.CharField(_("kind"), max_length=16, choices=NodeKind.choices)
    municipality = models.ForeignKey(
        "territories.Municipality",
        verbose_name=_("municipality"),
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="nodes",
        help_text=_("The tenant: empty only for the nation and state nodes."),
    )
    parent = models.ForeignKey(
        "self",
        verbose_name=_("parent"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="children",
    )
    depth = models.PositiveSmallIntegerField(_("depth"))
    code = models.CharField(_("code"), max_length=32, help_text=_("INEGI CVEGEO where known."))
    name = models.CharField(_("name"), max_length=200)
    geometry = models.JSONField(
        _("geometry"), null=True, blank=True, help_text=_("GeoJSON geometry (WGS84).")
    )
    centroid_lat = models.FloatField(_("centroid latitude"), null=True, blank=True)
    centroid_lon = models.FloatField(_("centroid longitude"), null=True, blank=True)
    a0 = _ancestor_field(0)
    a1 = _ancestor_field(1)
    a2 = _ancestor_field(2)
    a3 = _ancestor_field(3)
    a4 = _ancestor_field(4)
    a5 = _ancestor_field(5)
    a6 = _ancestor_field(6)
    a7 = _ancestor_field(7)
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))

    objects = NodeQuerySet.as_manager()

    class Meta:
        verbose_name = _("territory node")
        verbose_name_plural = _("territory nodes")
        ordering = ["depth", "code"]
        constraints = [
            models.UniqueConstraint(
                fields=["municipality", "code"],
                condition=models.Q(kind="unit"),
                name="node_code_unique_in_municipality",
            ),
            models.UniqueConstraint(
                fields=["kind", "code"],
                condition=~models.Q(kind="unit"),
                name="node_code_unique_above_municipality",
            ),
            models.CheckConstraint(condition=models.Q(depth__lte=MAX_DEPTH), name="node_depth_within_bounds"),
        ]
        indexes = [
            models.Index(fields=["municipality", "depth"], name="node_muni_depth"),
            *(models.Index(fields=[f"a{d}", "depth"], name=f"node_a{d}_depth") for d in range(MAX_DEPTH + 1)),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"

    @property
    def ancestor_ids(self) -> list[int]:
        """Ids from the root down to (and including) this node."""
        return [getattr(self, f"a{d}") for d in range(self.depth + 1)]

    def ancestors(self) -> list["Node"]:
        ids = self.ancestor_ids[:-1]
        by_id = Node.objects.in_bulk(ids)
        return [by_id[i] for i in ids if i in by_id]

    def descendants(self, include_self: bool = False) -> NodeQuerySet:
        return Node.objects.subtree(self, include_self=include_self)

    @property
    def level_name(self) -> str:
        if self.kind != NodeKind.UNIT:
            return str(NodeKind(self.kind).label)
        return self.municipality.level_name(self.depth)

    @property
    def is_leaf_level(self) -> bool:
        return self.kind == NodeKind.UNIT and self.depth == self.municipality.leaf_depth


class Municipality(models.Model):
    """The tenant (the data controller under Mexican law) and its level schema."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    code = models.CharField(_("INEGI key"), max_length=5, unique=True)
    name = models.CharField(_("name"), max_length=200)
    node = models.OneToOneField(
        Node, on_delete=models.PROTECT, related_name="municipality_record", verbose_name=_("territory node")
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))

    class Meta:
        verbose_name = _("municipality")
        verbose_name_plural = _("municipalities")
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"

    @property
    def state_code(self) -> str:
        return self.code[:2]

    def level_names(self) -> list[str]:
        cached = getattr(self, "_level_names", None)
        if cached is None:
            cached = list(self.levels.order_by("position").values_list("name", flat=True))
            self._level_names = cached
        return cached

    def level_name(self, depth: int) -> str:
        names = self.level_names()
        index = depth - MUNICIPALITY_DEPTH - 1
        if 0 <= index < len(names):
            return names[index]
        raise ValidationError(_("Depth %(depth)s is not a level of this municipality.") % {"depth": depth})

    def depth_of_level(self, name: str) -> int | None:
        lowered = name.strip().casefold()
        for position, level in enumerate(self.level_names(), start=1):
            if level.casefold() == lowered:
                return MUNICIPALITY_DEPTH + position
        return None

    @property
    def leaf_depth(self) -> int:
        return MUNICIPALITY_DEPTH + len(self.level_names())


class Level(models.Model):
    """One level of a municipality's schema, e.g. 1 = Sector, 2 = Manzana (position 1 is just below the municipality)."""

    municipality = models.ForeignKey(
        Municipality, on_delete=models.CASCADE, related_name="levels", verbose_name=_("municipality")
    )
    position = models.PositiveSmallIntegerField(_("position"))
    name = models.CharField(_("name"), max_length=60)

    class Meta:
        verbose_name = _("level")
        verbose_name_plural = _("levels")
        ordering = ["municipality", "position"]
        constraints = [
            models.UniqueConstraint(fields=["municipality", "position"], name="level_position_unique"),
            models.UniqueConstraint(fields=["municipality", "name"], name="level_name_unique"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def depth(self) -> int:
        return MUNICIPALITY_DEPTH + self.position
