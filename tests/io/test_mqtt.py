"""MQTT output against a real mosquitto on 127.0.0.1: one message per frame, sources in
every message, a broker restart mid-run (reconnect, losses counted), credentials."""

from __future__ import annotations

import json
import re
import signal
import time
import urllib.request

import pytest

from pipeline.errors import SinkError
from pipeline.io.mqtt_sink import MqttParams
from pipeline.io.outbox import Outbox
from tests.helpers import (
    Mosquitto,
    RtspServer,
    Subscriber,
    fixed_yolo_model,
    free_port,
    make_video,
    needs_mosquitto,
    needs_rtsp_server,
    run_cli,
    start_cli,
)

PASSWORD = "pa55-w0rd-xyzzy"
SUMMARY = re.compile(r"(\d+) messages: (\d+) acknowledged, (\d+) dropped, (\d+) unacknowledged")


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return fixed_yolo_model(tmp_path_factory.mktemp("mqtt") / "m.onnx")


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """20 s of 320×240 H.264 at 25 FPS, key frame every second (a live camera's stream)."""
    return make_video(tmp_path_factory.mktemp("mqtt") / "clip.mp4", n=500, w=320, h=240,
                      faststart=True)


@pytest.mark.parametrize(("url", "expected"), [
    ("mqtt://h/t", MqttParams("h", 1883, "t")),
    ("mqtts://u:p%40ss@h:9/a/b?qos=0&masks=none&outbox=5",
     MqttParams("h", 9, "a/b", "u", "p@ss", 0, False, 5, True)),
])
def test_url_options(url, expected) -> None:
    assert MqttParams.parse(url) == expected


@pytest.mark.parametrize(("url", "message"), [
    ("mqtt://h", "expected mqtt://"),
    ("mqtt://u:secret@h/t?qos=3", "qos: expected 0, 1 or 2"),
    ("mqtt://u:secret@h/t?masks=full", "masks: expected rle or none"),
    ("mqtt://u:secret@h/t?outbox=0", "outbox: expected"),
    ("mqtt://u:secret@h/t?retain=1", "unknown option 'retain'"),
    ("mqtt://u:secret@h/a/#", "wildcards"),
])
def test_bad_urls_are_clear_and_hide_the_password(url, message) -> None:
    with pytest.raises(SinkError, match=re.escape(message)) as err:
        MqttParams.parse(url)
    assert "secret" not in str(err.value)


def test_outbox_drops_the_oldest_and_accounts_for_every_message() -> None:
    box: Outbox[int] = Outbox(capacity=3, max_in_flight=2)
    for i in range(5):
        box.put(i)  # disconnected: 0 and 1 are pushed out
    assert box.next(0.01) is None  # nothing leaves while disconnected
    box.set_connected(True)
    taken = [box.next(0.01), box.next(0.01), box.next(0.01)]
    assert taken == [2, 3, None]  # at most 2 in flight
    box.sent(101)
    box.acknowledged(202)  # acknowledged before sent() recorded it (a fast broker)
    box.sent(202)
    h = box.health
    assert (h.acknowledged, h.in_flight, h.dropped) == (1, 1, 2)
    assert box.next(0.01) == 4
    box.sent(303)
    box.acknowledged(101)
    box.close()
    assert h.counters() == {"acknowledged": 2, "dropped": 2, "unacknowledged": 1, "waiting": 0}
    assert sum(h.counters().values()) == h.messages == 5


@needs_mosquitto
def test_one_message_per_frame_with_the_jsonl_content(tmp_path, model) -> None:
    video = make_video(tmp_path / "clip.mp4", n=60)
    meta = tmp_path / "o.jsonl"
    with Mosquitto(tmp_path / "broker") as broker:
        sub = Subscriber(broker, "cams/#")
        try:
            r = run_cli("run", str(video), "-m", str(model), "-j", str(meta), "--output",
                        broker.url("cams/{source}", query="qos=1"), timeout=60)
            assert r.returncode == 0, r.stderr
            got = sub.wait_for(60, timeout=10)
        finally:
            sub.close()
    lines = [json.loads(line) for line in meta.read_text().splitlines()]
    assert len(got) == len(lines) == 60
    assert sorted((m for _t, m in got), key=lambda m: m["frame"]) == lines  # masks included
    assert {t for t, _m in got} == {"cams/src0"}
    assert "60 messages: 60 acknowledged, 0 dropped, 0 unacknowledged" in r.stdout
    print(f"file run: {len(lines)} frames, {len(got)} messages received")


def _run_live(args: list[str], seconds: float):
    proc = start_cli(*args)
    try:
        time.sleep(seconds)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    return proc.returncode, out, err


@needs_mosquitto
@needs_rtsp_server
def test_four_live_sources_every_message_carries_its_source(tmp_path, model, clip) -> None:
    cams = [f"cam{i}" for i in range(4)]
    with Mosquitto(tmp_path / "broker") as broker, RtspServer(clip) as server:
        sub = Subscriber(broker, "site/#")
        try:
            rc, out, err = _run_live(
                ["run", *[f"{c}={server.url}" for c in cams], "-m", str(model), "--workers", "1",
                 "--output", broker.url("site/{source}", query="masks=none")], seconds=8)
            time.sleep(1)
            got = list(sub.messages)
        finally:
            sub.close()
    assert rc == 0, err
    assert {m["source"] for _t, m in got} == set(cams)
    assert all(t == f"site/{m['source']}" for t, m in got)
    assert not any("mask" in d for _t, m in got for d in m["detections"])
    assert all(m["detections"] for _t, m in got)  # the model finds two instances a frame
    # one connection serves every camera ({source} is filled in per message)
    sinks = re.findall(r"sink:mqtt://127\.0\.0\.1:\d+/site/\{source\}: .*?(\d+) messages: "
                       r"(\d+) acknowledged", out)
    assert len(sinks) == 1, out
    print("messages per source:", {c: sum(m["source"] == c for _t, m in got) for c in cams},
          "acknowledged in all:", sinks[0][1])
    for cam in cams:
        frames = [m["frame"] for _t, m in got if m["source"] == cam]
        assert len(frames) >= 25, f"{cam}: {len(frames)} messages"
        assert frames == sorted(set(frames)), f"{cam}: out of order or repeated"
    assert len(got) == int(sinks[0][1])  # what the broker acknowledged, the subscriber got


def _metric(text: str, name: str) -> float | None:
    m = re.search(rf'^{name}(?:{{(?:[^"}}]|"[^"]*")*}})? (\S+)$', text, re.M)
    return float(m.group(1)) if m else None


@needs_mosquitto
@needs_rtsp_server
def test_broker_restart_mid_run_reconnects_and_counts_what_was_lost(tmp_path, model,
                                                                   clip) -> None:
    """The broker is SIGKILLed for 3 s mid-run; the outbox holds 20 messages, so some are
    dropped. Also: the password in the URL reaches no log line, summary or metric."""
    port = free_port()
    metrics_url = f"http://127.0.0.1:{port}/metrics"
    broker = Mosquitto(tmp_path / "broker", users={"cam-user": PASSWORD}).start()
    sub = Subscriber(broker, "yard/#", "cam-user", PASSWORD)
    server = RtspServer(clip).start()
    proc = start_cli("--debug", "run", f"gate={server.url}", "-m", str(model), "--workers", "1",
                     "--metrics-port", str(port), "--output",
                     broker.url("yard/{source}", "cam-user", PASSWORD, "qos=1&outbox=20"))
    scraped = []
    try:
        first = sub.wait_for(25, timeout=20)
        assert len(first) >= 25, "no messages before the restart"
        broker.kill()
        killed = time.monotonic()
        time.sleep(3.0)
        broker.start()
        back = time.monotonic()
        reconnected = None
        while time.monotonic() - back < 10:
            text = urllib.request.urlopen(metrics_url, timeout=5).read().decode()
            if _metric(text, "maskstream_sink_connected") == 1.0 and \
                    (_metric(text, "maskstream_sink_reconnects_total") or 0) >= 1:
                reconnected = time.monotonic() - back
                scraped.append(text)
                break
            time.sleep(0.1)
        time.sleep(3.0)  # keeps running after the restart
        scraped.append(urllib.request.urlopen(metrics_url, timeout=5).read().decode())
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        time.sleep(1.0)
        got = list(sub.messages)
    finally:
        proc.kill()
        sub.close()
        server.close()
        broker.close()
    assert proc.returncode == 0, err
    print(f"reconnected {reconnected} s after the broker came back "
          f"(down {back - killed:.1f} s); {SUMMARY.search(out).group(0)}")
    assert reconnected is not None and reconnected <= 5.0
    n, acked, dropped, unacked = map(int, SUMMARY.search(out).groups())
    assert acked + dropped + unacked == n  # every message accounted for
    written, lost = map(int, re.search(r"frames in \d+, out: \S+ (\d+) \(\+(\d+) dropped\)",
                                       out).groups())
    assert written + lost == n and lost == dropped + unacked  # the summary's first line too
    assert dropped > 0  # 3 s at 25 FPS overflow an outbox of 20: counted, not silent
    received = {m["frame"] for _t, m in got}
    print(f"subscriber got {len(received)} distinct frames ({len(got)} messages) of {n}; "
          f"not received {n - len(received)}, counted as lost {dropped + unacked}")
    after = [f for f in received if f > max(m["frame"] for _t, m in first)]
    assert len(after) >= 50, "the pipeline did not go on after the restart"
    assert n - len(received) <= dropped + unacked, "messages lost without being counted"
    assert f"{dropped} dropped" in err  # the warning at close
    assert _metric(scraped[-1], "maskstream_sink_messages_total") is not None
    assert 'state="dropped"' in scraped[-1]
    for text in (out, err, *scraped):
        assert PASSWORD not in text
    assert 'sink="sink:mqtt://127.0.0.1:' in scraped[-1]  # the sink: host and topic only


@needs_mosquitto
def test_wrong_password_is_refused_at_start_without_echoing_it(tmp_path, model) -> None:
    video = make_video(tmp_path / "clip.mp4", n=5)
    with Mosquitto(tmp_path / "broker", users={"u": "right-one"}) as broker:
        r = run_cli("--debug", "run", str(video), "-m", str(model), "--output",
                    broker.url("t", "u", PASSWORD), timeout=30)
    assert r.returncode == 1
    assert "cannot connect: the broker refused: Not authorized" in r.stderr
    assert PASSWORD not in r.stdout + r.stderr
