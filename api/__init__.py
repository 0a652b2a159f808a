"""The HTTP API, contract v1: a thin edge over ``ledger.services.LedgerService``.

Every route is declared once (``api.endpoints``): its method, path, access action,
request and response schemas.  The same declaration routes the request,
validates it, and produces the OpenAPI document, so the document cannot drift
from what the server does.  Handlers are synchronous functions that call the
service layer; ``api.app`` runs them in a thread pool, never on the event loop.
"""
