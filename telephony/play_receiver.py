"""The play channel of a media worker: a thread that receives bot audio and call commands from navigator sessions.

Binds a ZeroMQ PULL socket (``telephony.play_endpoint_template`` for the worker's index) and decodes every
message with :func:`core.media.decode_play`; ``deliver`` gets each one (on this thread, so it must not call
pjsua2: the worker routes audio and pause/resume/stop to the call's :class:`telephony.playout.Playout` and queues
hangup/transfer for its pjsua thread). A malformed message is counted and logged, never fatal.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import zmq

from core.errors import ConfigError, InvalidInputError
from core.logging import get_logger
from core.media import PlayMessage, decode_play

log = get_logger(__name__)

_POLL_MS = 100


class PlayReceiver:
    """Receives :data:`core.media.PlayMessage` on ``endpoint`` and hands each to ``deliver`` (receiver thread)."""

    def __init__(self, endpoint: str, deliver: Callable[[PlayMessage], None]) -> None:
        self.endpoint = endpoint
        """The endpoint to bind; after :meth:`start`, the bound one (``tcp://…:*`` resolved)."""
        self._deliver = deliver
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._context: zmq.Context[zmq.Socket[bytes]] | None = None
        self._socket: zmq.Socket[bytes] | None = None
        self.received = 0
        self.malformed = 0
        self.failed = 0
        """Messages whose delivery raised (logged)."""

    def start(self) -> None:
        """Bind and start the thread; raises :class:`ConfigError` when the endpoint cannot be bound."""
        if self.endpoint.startswith("ipc://") and not self.endpoint.startswith("ipc://@"):
            Path(self.endpoint.removeprefix("ipc://")).parent.mkdir(parents=True, exist_ok=True)
        self._context = zmq.Context()
        sock = self._context.socket(zmq.PULL)
        sock.setsockopt(zmq.LINGER, 0)
        try:
            sock.bind(self.endpoint)
        except zmq.ZMQError as exc:
            sock.close()
            self._context.term()
            self._context = None
            raise ConfigError("media worker cannot bind its play channel", endpoint=self.endpoint) from exc
        self.endpoint = sock.getsockopt_string(zmq.LAST_ENDPOINT)
        self._socket = sock
        self._thread = threading.Thread(target=self._run, name="voxdesk-play-receiver", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 2.0) -> None:
        """Stop the thread and close the socket; idempotent."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        if self._context is not None:
            self._context.term()
            self._context = None

    def _run(self) -> None:
        sock = self._socket
        assert sock is not None
        poller: Any = zmq.Poller()
        poller.register(sock, zmq.POLLIN)
        while not self._stop.is_set():
            try:
                if not dict(poller.poll(_POLL_MS)):
                    continue
                frames = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.ZMQError:
                if self._stop.is_set():
                    return
                log.exception("play channel receive failed")
                continue
            self.received += 1
            try:
                message = decode_play(frames)
            except InvalidInputError:
                self.malformed += 1
                log.warning("malformed play message dropped", frames=len(frames))
                continue
            try:
                self._deliver(message)
            except Exception:  # task root of the receiver thread: one bad message never stops the channel
                self.failed += 1
                log.exception("play message could not be delivered", action=getattr(message, "action", "audio"))


__all__ = ["PlayReceiver"]
