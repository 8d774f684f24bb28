"""The issuer's discovery document and JWKS over HTTP, on the running event loop (aiohttp)."""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable

from aiohttp import web

from shop.identity.issuer import LocalIssuer


class IssuerServer:
    """Serves `issuer.documents()` on a listening socket until closed."""

    def __init__(self, issuer: LocalIssuer, sock: socket.socket) -> None:
        self.issuer = issuer
        self._sock = sock
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        for path, document in self.issuer.documents().items():
            app.router.add_get(path, _serve(document))
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.SockSite(self._runner, self._sock).start()

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


def _serve(document: object) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        return web.json_response(document)

    return handle
