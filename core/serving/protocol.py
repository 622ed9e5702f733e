"""uvicorn's h11 protocol with a deadline for a request's headers (slow-drip clients).

uvicorn reads headers before the app sees a request, and has no deadline of its own for them: a
client dripping one header byte a second holds its connection open for as long as it likes. This
protocol closes a connection whose request line and headers have not all arrived within
`read_timeout_s` of the first byte of the request (or of the connection opening). Body deadlines
are the app's (`core.serving.server`, 408), so this class only watches headers.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol


def header_deadline_protocol(read_timeout_s: float) -> type[H11Protocol]:
    """An `H11Protocol` subclass closing connections whose headers are late (for uvicorn's `http=`)."""

    class HeaderDeadlineProtocol(H11Protocol):
        _header_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            if self._between_requests():
                self._arm()
            super().data_received(data)
            if not self._between_requests():
                self._disarm()  # the headers are in; the request is the app's now

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _between_requests(self) -> bool:
            return self.cycle is None or self.cycle.response_complete

        def _arm(self) -> None:
            if self._header_timer is None:
                self._header_timer = self.loop.call_later(read_timeout_s, self._late)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _late(self) -> None:
            self._header_timer = None
            if self._between_requests() and not self.transport.is_closing():
                self.transport.close()

    return HeaderDeadlineProtocol
