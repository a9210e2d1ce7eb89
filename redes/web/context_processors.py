from django.conf import settings


def redes(request):
    return {
        "REDES_TILE_URL": settings.REDES_TILE_URL,
        "REDES_TILE_ATTRIBUTION": settings.REDES_TILE_ATTRIBUTION,
    }
