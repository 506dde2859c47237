"""Detections as a message stream: one JSON message per frame to an MQTT broker.

``mqtt://[user:password@]host[:port]/topic[?qos=1&masks=rle|none&outbox=1000]``
(``mqtts://`` for TLS, port 8883 by default). The message is the frame's JSONL line
(``source``, ``frame``, ``pts``, ``detections``); ``masks=none`` leaves out the masks.
``{source}`` in the topic is replaced by the frame's source id.

- The pipeline never waits for the broker: messages go into a bounded outbox
  (:mod:`pipeline.io.outbox`, drop-oldest) and a sender thread publishes them while
  connected, at most ``max_in_flight`` awaiting acknowledgement (QoS 1).
- The first connection must succeed within ``connect_timeout`` (a wrong password or an
  unreachable broker is an error at start); after that the client reconnects with
  backoff (1 s doubling to 2 s) for as long as the pipeline runs. QoS 1 messages in flight
  when the connection drops are sent again after it comes back (the broker may see them
  twice: at-least-once).
- Messages dropped, and those never acknowledged, are counted: in the summary, in the
  Prometheus metrics, and in a warning at close.
- Credentials never reach logs, errors, the summary or metrics: the sink is named by
  host, port and topic only.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from itertools import count
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from pipeline.errors import BackendUnavailable, SinkError
from pipeline.io.jsonl_sink import RleEncoder, frame_record
from pipeline.io.outbox import Outbox, OutputHealth
from pipeline.io.uri import redact, scrub
from pipeline.runtime.stage import Sink
from pipeline.types import Frame

log = logging.getLogger(__name__)

INSTALL = "pip install 'maskstream[mqtt]'"
RECONNECT_MIN_S = 1
RECONNECT_MAX_S = 2
KEEPALIVE_S = 30
POLL_S = 0.2
_ids = count()


@dataclass(frozen=True)
class MqttParams:
    """What an ``mqtt://`` URL says."""

    host: str
    port: int
    topic: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    qos: int = 1
    masks: bool = True
    outbox: int = 1000
    tls: bool = False

    @classmethod
    def parse(cls, uri: str) -> MqttParams:
        shown = redact(uri)
        try:
            parts = urlsplit(uri)
            port = parts.port
        except ValueError as exc:
            raise SinkError(f"{shown}: not a valid URL ({scrub(str(exc), uri)})") from None
        if parts.scheme not in ("mqtt", "mqtts"):
            raise SinkError(f"{shown}: expected mqtt:// or mqtts://")
        topic = unquote(parts.path.lstrip("/"))
        if not parts.hostname or not topic:
            raise SinkError(f"{shown}: expected mqtt://[user:password@]host[:port]/topic")
        if "#" in uri or any(c in topic for c in "#+"):  # a raw # starts a URL fragment
            raise SinkError(f"{shown}: a topic to publish to cannot hold the wildcards # or +")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        unknown = sorted(set(query) - {"qos", "masks", "outbox"})
        if unknown:
            raise SinkError(f"{shown}: unknown option {unknown[0]!r} (known: qos, masks, outbox)")
        qos = query.get("qos", "1")
        if qos not in ("0", "1", "2"):
            raise SinkError(f"{shown}: qos: expected 0, 1 or 2, got {qos!r}")
        masks = query.get("masks", "rle")
        if masks not in ("rle", "none"):
            raise SinkError(f"{shown}: masks: expected rle or none, got {masks!r}")
        outbox = query.get("outbox", "1000")
        if not outbox.isdigit() or int(outbox) < 1:
            raise SinkError(f"{shown}: outbox: expected a number of messages >= 1, got {outbox!r}")
        tls = parts.scheme == "mqtts"
        return cls(parts.hostname, port or (8883 if tls else 1883), topic,
                   unquote(parts.username) if parts.username else None,
                   unquote(parts.password) if parts.password is not None else None,
                   int(qos), masks == "rle", int(outbox), tls)

    @property
    def shown(self) -> str:
        """How the output is named everywhere: no credentials."""
        return f"mqtt{'s' if self.tls else ''}://{self.host}:{self.port}/{self.topic}"


def _paho() -> Any:
    try:
        import paho.mqtt.client as mqtt
    except ImportError:
        raise BackendUnavailable(f"mqtt:// outputs need paho-mqtt 2: {INSTALL}") from None
    if not hasattr(mqtt, "CallbackAPIVersion"):
        raise BackendUnavailable(f"mqtt:// outputs need paho-mqtt >= 2.0: {INSTALL}")
    return mqtt


class MqttSink(Sink):
    """Publishes each frame's metadata; see the module docstring.

    It handles its own outages and never raises for them, and its ``write`` never waits
    for the broker (the outbox drops, counted), so its ring need not drop frames: it
    blocks like a file's (``network`` False) and a file run loses nothing on the way."""

    network = False

    def __init__(self, uri: str, connect_timeout: float = 5.0, drain_timeout: float = 5.0,
                 max_in_flight: int = 20) -> None:
        mqtt = _paho()
        self.params = p = MqttParams.parse(uri)
        self.target = p.shown
        self.name = f"sink:{p.shown}"
        self.drain_timeout = drain_timeout
        self.outbox: Outbox[tuple[str, bytes]] = Outbox(p.outbox, max_in_flight)
        self.health: OutputHealth = self.outbox.health
        self._rle = RleEncoder()
        self._first = threading.Event()
        self._refused = ""
        self._stop = threading.Event()
        client_id = f"maskstream-{socket.gethostname()}-{os.getpid()}-{next(_ids)}"
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
        if log.isEnabledFor(logging.DEBUG):  # paho's own log (it never writes the password)
            c.enable_logger(logging.getLogger(f"{__name__}.paho"))
        if p.username is not None:
            c.username_pw_set(p.username, p.password)
        if p.tls:
            c.tls_set()
        c.max_inflight_messages_set(max_in_flight)
        c.reconnect_delay_set(RECONNECT_MIN_S, RECONNECT_MAX_S)
        c.on_connect, c.on_disconnect, c.on_publish = (self._on_connect, self._on_disconnect,
                                                       self._on_publish)
        self._client = c
        self._sender = threading.Thread(target=self._send_loop, name=f"{self.name}:send",
                                        daemon=True)
        self._connect(connect_timeout)

    # -- connection --------------------------------------------------------------------

    def _connect(self, timeout: float) -> None:
        p = self.params
        try:
            self._client.connect_async(p.host, p.port, KEEPALIVE_S)
        except (OSError, ValueError) as exc:
            raise SinkError(f"{p.shown}: cannot connect: {exc}") from None
        self._client.loop_start()
        if not self._first.wait(timeout) or self._refused:
            reason = self._refused or (f"no answer within {timeout:g} s (is the broker running, "
                                       "and the host and port right?)")
            self._client.loop_stop()
            raise SinkError(f"{p.shown}: cannot connect: {reason}")
        self._sender.start()

    def _on_connect(self, _client: Any, _userdata: Any, _flags: Any, reason: Any,
                    _properties: Any) -> None:
        if reason.is_failure:
            text = str(reason)
            if not self._first.is_set():  # the first answer decides: refused → error at start
                self._refused = f"the broker refused: {text}"
                self._first.set()
                self._client.disconnect()
            self.outbox.set_connected(False, f"refused: {text}")
            return
        again = self.health.connects > 0
        self.outbox.set_connected(True)
        self._first.set()
        if again:
            log.warning("%s: reconnected", self.params.shown)

    def _on_disconnect(self, _client: Any, _userdata: Any, _flags: Any, reason: Any,
                       _properties: Any) -> None:
        was = self.health.connected
        self.outbox.set_connected(False, str(reason) if reason.is_failure else "")
        if was and not self._stop.is_set():
            log.warning("%s: connection lost (%s); reconnecting", self.params.shown, reason)

    def _on_publish(self, _client: Any, _userdata: Any, mid: int, _reason: Any,
                    _properties: Any) -> None:
        self.outbox.acknowledged(mid)

    # -- sending ---------------------------------------------------------------------

    def _send_loop(self) -> None:
        mqtt = _paho()
        while not self._stop.is_set():
            item = self.outbox.next(POLL_S)
            if item is None:
                continue
            topic, payload = item
            try:
                info = self._client.publish(topic, payload, qos=self.params.qos)
            except (OSError, ValueError, RuntimeError) as exc:  # paho's own refusals
                # counted like a refusal and said once; this thread must outlive any message
                self.outbox.refused()
                first = not self.health.last_error
                self.health.last_error = redact(str(exc) or type(exc).__name__)
                if first:
                    log.warning("%s: publishing failed: %s", self.params.shown,
                                self.health.last_error)
                continue
            if info.rc == mqtt.MQTT_ERR_SUCCESS or (self.params.qos > 0
                                                    and info.rc == mqtt.MQTT_ERR_NO_CONN):
                self.outbox.sent(info.mid)  # QoS > 0 while disconnected: sent on reconnect
            else:
                self.outbox.refused()

    @property
    def dropped(self) -> int:
        """Frames not delivered: dropped from the outbox, and (once closed) never
        acknowledged."""
        h = self.health
        return h.dropped + (h.in_flight if h.closed else 0)

    def write(self, frame: Frame) -> None:
        record = frame_record(frame, self._rle, masks=self.params.masks)
        topic = self.params.topic.replace("{source}", frame.source_id)
        self.outbox.put((topic, json.dumps(record, separators=(",", ":")).encode()))

    def abort(self) -> None:
        """The pipeline never started: disconnect without waiting."""
        self.drain_timeout = 0.0
        self.close()

    def close(self) -> None:
        """Give the outbox ``drain_timeout`` seconds to empty, then disconnect and count
        what was not delivered."""
        t0 = time.monotonic()
        drained = self.outbox.drain(self.drain_timeout)
        self._stop.set()
        if self._sender.is_alive():  # it polls the stop flag every POLL_S
            self._sender.join(max(self.drain_timeout, 2 * POLL_S))
        self._client.disconnect()
        self._client.loop_stop()
        self.outbox.close()
        h = self.health
        if h.dropped or h.in_flight:
            log.warning("%s: %d of %d message(s) not delivered: %d dropped, %d unacknowledged",
                        self.params.shown, h.dropped + h.in_flight, h.messages, h.dropped,
                        h.in_flight)
        log.info("%s: closed after %.1f s of draining (%s)", self.params.shown,
                 time.monotonic() - t0, "drained" if drained else "gave up")
