"""A small ASGI app standing in for the Amarktai Network API in tests and demos.

It has what the service notes rely on: a lifespan that starts and stops its
subsystems cleanly, and a /health endpoint. Standard library only; uvicorn
serves it (`python -m uvicorn server:app`).
"""

import asyncio
import hashlib
import json
import os
import socket
import time
from pathlib import Path



def say(message: str) -> None:
    """Writes a line to stdout, which systemd sends to the journal."""
    print(f"amarktai-demo: {message}", flush=True)

STATE = {"started_at": None, "ticks": 0, "ready": False}


async def _heartbeat() -> None:
    """A background task like the notes' autopilot: runs until cancelled."""
    while True:
        STATE["ticks"] += 1
        await asyncio.sleep(5)


async def _startup(tasks: list) -> None:
    if os.environ.get("DEMO_FAIL_ON_STARTUP") == "1":
        # Test support: a deployment that can never become healthy.
        raise RuntimeError("DEMO_FAIL_ON_STARTUP=1: refusing to start")
    delay = float(os.environ.get("DEMO_STARTUP_DELAY_SEC", "0") or 0)
    if delay > 0:
        # Test support: a slow start, to exercise faults in the middle of an activation.
        say(f"delaying startup by {delay}s")
        await asyncio.sleep(delay)
    STATE["started_at"] = time.time()
    tasks.append(asyncio.create_task(_heartbeat()))
    log_dir = Path(os.environ.get("AMARKTAI_LOG_DIR", "/var/amarktai/logs"))
    try:
        with open(log_dir / "demo-app.log", "a", encoding="utf-8") as f:
            f.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} startup pid={os.getpid()}\n")
    except OSError as e:  # logs are optional; the journal has everything
        say(f"cannot write to {log_dir}: {e}")
    STATE["ready"] = True
    say("startup complete")


async def _shutdown(tasks: list) -> None:
    STATE["ready"] = False
    for task in tasks:
        task.cancel()
    for task in tasks:
        try:
            await task
        except asyncio.CancelledError:
            pass
    say("shutdown complete")


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


async def _send_json(send, status: int, body: dict) -> None:
    payload = json.dumps(body).encode("utf-8")
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": payload})


async def _http(scope, receive, send) -> None:
    path = scope["path"]
    query = dict(
        part.split("=", 1) for part in scope.get("query_string", b"").decode().split("&") if "=" in part
    )
    if path == "/health":
        if STATE["ready"]:
            await _send_json(send, 200, {"status": "ok", "uptime": round(time.time() - STATE["started_at"], 1)})
        else:
            await _send_json(send, 503, {"status": "starting"})
    elif path == "/debug/env-digest":
        # Test support: proves a value reached the process byte for byte without revealing it.
        name = query.get("name", "")
        value = os.environ.get(name)
        await _send_json(send, 200, {"name": name, "present": value is not None, "sha256": _digest(value) if value is not None else None})
    elif path == "/debug/connect":
        # Test support: can the sandboxed service open an outbound TCP connection?
        host, port = query.get("host", "127.0.0.1"), int(query.get("port", "0"))
        try:
            with socket.create_connection((host, port), timeout=5):
                pass
            await _send_json(send, 200, {"connected": True})
        except OSError as e:
            await _send_json(send, 200, {"connected": False, "error": str(e)})
    elif path == "/":
        await _send_json(send, 200, {"service": "amarktai-demo", "pid": os.getpid(), "ticks": STATE["ticks"]})
    else:
        await _send_json(send, 404, {"error": "not found"})


async def app(scope, receive, send):
    """The ASGI application."""
    if scope["type"] == "lifespan":
        tasks: list = []
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await _startup(tasks)
                    await send({"type": "lifespan.startup.complete"})
                except Exception as e:  # report, never crash the server loop silently
                    await send({"type": "lifespan.startup.failed", "message": str(e)})
            elif message["type"] == "lifespan.shutdown":
                try:
                    await _shutdown(tasks)
                finally:
                    await send({"type": "lifespan.shutdown.complete"})
                return
    elif scope["type"] == "http":
        await _http(scope, receive, send)
