"""The HTTP edge: ASGI app, composition root, wire endpoints, admin API."""
