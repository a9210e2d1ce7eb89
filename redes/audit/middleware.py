from .context import Channel, using_channel


class ChannelMiddleware:
    """Marks writes made while serving a request as coming from the web (or the admin site)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        path = request.path_info
        if path.startswith("/api/"):
            channel = Channel.API
        elif path.startswith("/admin/"):
            channel = Channel.ADMIN
        else:
            channel = Channel.WEB
        with using_channel(channel, request.META.get("REMOTE_ADDR")):
            return self.get_response(request)
