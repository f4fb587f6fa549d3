"""A client of baresip 1.0.0's ``ctrl_tcp`` module: control commands to a running baresip over TCP.

Configure baresip with ``module_app ctrl_tcp.so`` and ``ctrl_tcp_listen 127.0.0.1:<port>``. Each request and each
reply is a netstring (``<length>:<bytes>,``) holding JSON: requests ``{"command": "dial", "params": "sip:...",
"token": "..."}``; replies ``{"response": true, "ok": true|false, "data": "<console text>", "token": "..."}``,
interleaved with unsolicited events ``{"event": true, "type": "CALL_ESTABLISHED", "class": "call", ...}``. The
commands are the long names of baresip's menu (``/help`` lists them); call commands such as ``sndcode`` exist only
while a call is up. Used by :class:`telephony.peer_scripted.ScriptedCaller`; everything runs on the calling thread.
"""

from __future__ import annotations

import json
import socket
import time

from core.errors import VoxdeskError

__all__ = ["BaresipCommandError", "BaresipControl", "free_tcp_port"]


class BaresipCommandError(VoxdeskError):
    """baresip refused or failed a control command (or did not answer it in time)."""

    code = "baresip_command"


class BaresipControl:
    """A client of baresip's ``ctrl_tcp``: one command at a time, answered on the calling thread. Unsolicited
    events read while waiting for a response are dropped (the console reader reports the call's progress)."""

    def __init__(self, host: str, port: int, timeout_s: float) -> None:
        """Connect to ``host:port`` (baresip's ``ctrl_tcp_listen``; :class:`OSError` when it does not accept).
        ``timeout_s``: how long connecting, and each :meth:`command`, may take (s)."""
        self._sock = socket.create_connection((host, port), timeout=timeout_s)
        self._timeout_s = timeout_s
        self._buffer = b""
        self._count = 0

    def command(self, name: str, params: str | None) -> str:
        """Send ``name`` (``params``) and return the response's ``data``; :class:`BaresipCommandError` when the
        response is ``ok: false`` or none comes within the timeout."""
        self._count += 1
        token = f"voxdesk-{self._count}"
        request: dict[str, str] = {"command": name, "token": token}
        if params is not None:
            request["params"] = params
        body = json.dumps(request).encode()
        deadline = time.monotonic() + self._timeout_s
        try:
            self._sock.sendall(b"%d:%s," % (len(body), body))
            while True:
                message = self._next_message(deadline)
                if message.get("response") and message.get("token") == token:
                    break
        except (OSError, ValueError) as exc:
            raise BaresipCommandError("baresip's control port failed", command=name, error=str(exc)) from exc
        data = str(message.get("data", ""))
        if not message.get("ok"):
            raise BaresipCommandError("baresip refused a command", command=name, reply=data)
        return data

    def _next_message(self, deadline: float) -> dict[str, object]:
        while True:
            head, colon, rest = self._buffer.partition(b":")
            if colon and len(rest) > int(head):
                body, self._buffer = rest[: int(head)], rest[int(head) + 1 :]
                message = json.loads(body)
                return message if isinstance(message, dict) else {}
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no response from baresip")
            self._sock.settimeout(remaining)
            chunk = self._sock.recv(65536)
            if not chunk:
                raise ConnectionResetError("baresip closed its control port")
            self._buffer += chunk

    def close(self) -> None:
        """Close the connection."""
        self._sock.close()


def free_tcp_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that is free right now (nothing holds it afterwards)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])
