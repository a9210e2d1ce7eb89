"""GeoJSON validation and centroids with shapely (no GDAL needed)."""

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from shapely.geometry import shape

ALLOWED_TYPES = {"Polygon", "MultiPolygon", "Point"}


def clean_geometry(geometry) -> tuple[dict | None, float | None, float | None]:
    """Validate a GeoJSON geometry and return it with its centroid (lat, lon)."""
    if geometry in (None, "", {}):
        return None, None, None
    if not isinstance(geometry, dict) or geometry.get("type") not in ALLOWED_TYPES:
        raise ValidationError(_("The geometry must be a GeoJSON Polygon, MultiPolygon or Point."))
    try:
        geom = shape(geometry)
    except Exception as exc:  # shapely raises several types for malformed coordinates
        raise ValidationError(_("The geometry is malformed: %(error)s") % {"error": exc}) from exc
    if geom.is_empty:
        raise ValidationError(_("The geometry is empty."))
    minx, miny, maxx, maxy = geom.bounds
    if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
        raise ValidationError(_("The geometry is not in longitude/latitude degrees (WGS84)."))
    point = geom.representative_point() if geom.geom_type != "Point" else geom
    if geom.geom_type != "Point" and geom.is_valid:
        centroid = geom.centroid
        if geom.contains(centroid):
            point = centroid
    return geometry, round(point.y, 7), round(point.x, 7)
