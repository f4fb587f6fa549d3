"""The navigator's side of the play channel: bot audio and call commands to the media worker that holds a call.

Media worker ``i`` binds a ZeroMQ PULL socket at ``telephony.play_endpoint_template.format(index=i)``;
:class:`ZmqPlaySink` keeps one PUSH socket per worker, connected on first use, and sends every
:data:`core.media.PlayMessage` with ``NOBLOCK`` (:func:`core.media.encode_play` frames). A message that cannot be
queued (the worker is gone and the socket's high-water mark is reached) is dropped and counted, never waited for:
a late prompt is worse than a lost one. Messages to one worker keep their order (one socket).

Threads: a sink belongs to the event-loop thread of the agent process (ZeroMQ sockets are not thread-safe);
``send`` never blocks.
"""

from __future__ import annotations

from typing import Protocol

import zmq

from core.errors import InvalidInputError
from core.logging import get_logger
from core.media import PlayMessage, encode_play

__all__ = ["PlaySink", "ZmqPlaySink"]

log = get_logger(__name__)


class PlaySink(Protocol):
    """Where a navigator session sends bot audio and call commands."""

    def send(self, media_worker: int, message: PlayMessage) -> None:
        """Queue ``message`` for media worker ``media_worker``; never blocks, never raises for a lost message."""
        ...


class ZmqPlaySink:
    """:class:`PlaySink` over ZeroMQ PUSH sockets, one per media worker (``0 … workers-1``).

    ``endpoint_template`` has an ``{index}`` field (``ipc://var/run/play-{index}.sock``); ``hwm`` is the send
    high-water mark per worker (messages; a 20 ms-frame chunk of a second is one message). Event-loop thread only.
    """

    def __init__(
        self,
        endpoint_template: str,
        *,
        workers: int,
        hwm: int = 20_000,
        context: zmq.Context[zmq.Socket[bytes]] | None = None,
    ) -> None:
        if workers < 1:
            raise InvalidInputError("at least one media worker is needed")
        if "{index}" not in endpoint_template:
            raise InvalidInputError("the play endpoint template needs an {index} field")
        self.endpoint_template = endpoint_template
        self.workers = workers
        self.hwm = hwm
        self._context = context or zmq.Context.instance()
        self._sockets: dict[int, zmq.Socket[bytes]] = {}
        self.sent = 0
        """Messages handed to ZeroMQ."""
        self.dropped = 0
        """Messages dropped: a full queue, a closed sink or an unknown worker index."""

    def endpoint(self, media_worker: int) -> str:
        """The play endpoint of worker ``media_worker``."""
        return self.endpoint_template.format(index=media_worker)

    def send(self, media_worker: int, message: PlayMessage) -> None:
        """Send ``message`` to worker ``media_worker`` without blocking; drops (and counts) what cannot go."""
        if not 0 <= media_worker < self.workers:
            self.dropped += 1
            log.warning("play message for an unknown media worker dropped", media_worker=media_worker)
            return
        try:
            self._socket(media_worker).send_multipart(encode_play(message), flags=zmq.NOBLOCK)
        except zmq.Again:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning("play channel full: message dropped", media_worker=media_worker, dropped=self.dropped)
            return
        except zmq.ZMQError:
            self.dropped += 1
            log.exception("play channel send failed", media_worker=media_worker)
            return
        self.sent += 1

    def close(self, linger_ms: int = 500) -> None:
        """Close every socket, letting queued messages go out for up to ``linger_ms`` ms; idempotent."""
        for sock in self._sockets.values():
            sock.close(linger=linger_ms)
        self._sockets.clear()

    def _socket(self, media_worker: int) -> zmq.Socket[bytes]:
        sock = self._sockets.get(media_worker)
        if sock is None:
            endpoint = self.endpoint(media_worker)
            sock = self._context.socket(zmq.PUSH)
            sock.setsockopt(zmq.SNDHWM, self.hwm)
            sock.setsockopt(zmq.LINGER, 500)
            sock.connect(endpoint)  # asynchronous: ZeroMQ queues until the worker's PULL socket is there
            self._sockets[media_worker] = sock
        return sock
