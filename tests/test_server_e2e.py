"""End to end: `whatsapp-tickets serve` in its own process, the fake Graph API on loopback.

These tests start real uvicorn servers on 127.0.0.1 ports, kill them, start them
again on the same SQLite file, and watch what the fake Graph API receives.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from adapters.cli import packaged_flows
from adapters.fake_graph import FakeGraphAPI, GraphError
from tests.whatsapp import APP_SECRET, SAMPLES, encode, messages_body, sample, signed_headers, text

TOKEN = "e2e-token"
ADMIN_TOKEN = "e2e-admin"
PHONE = "593990000001"
COUNTER_FLOWS = str(Path(__file__).parent / "bots" / "counter")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(condition: Callable[[], bool], timeout: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def command() -> list[str]:
    script = Path(sys.executable).parent / "whatsapp-tickets"
    return [str(script)] if script.exists() else [sys.executable, "-m", "adapters.cli"]


@pytest.fixture
def fake_graph() -> Iterator[tuple[FakeGraphAPI, str]]:
    """The fake Graph API served by uvicorn in a thread; yields it and its base URL."""
    fake = FakeGraphAPI(access_token=TOKEN)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(fake.app, host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, what="the fake Graph API to start")
    yield fake, f"http://127.0.0.1:{port}/v23.0"
    server.should_exit = True
    thread.join(timeout=10)


class Served:
    """One `whatsapp-tickets serve` process."""

    def __init__(self, tmp_path: Path, api_url: str, flows: str, workers: int = 1) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = tmp_path / f"serve-{self.port}.log"
        environment = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("WHATSAPP_", "ADMIN_"))
        }
        environment.update(
            WHATSAPP_APP_SECRET=APP_SECRET,
            WHATSAPP_VERIFY_TOKEN="verify-me",
            WHATSAPP_ACCESS_TOKEN=TOKEN,
            WHATSAPP_API_URL=api_url,
            WHATSAPP_TICKETS_DB=str(tmp_path / "e2e.db"),
            ADMIN_TOKEN=ADMIN_TOKEN,
        )
        arguments = ["serve", "--port", str(self.port), "--flows", flows, "--workers", str(workers)]
        with self.log.open("w") as log:
            self.process = subprocess.Popen(
                [*command(), *arguments], env=environment, stdout=log, stderr=subprocess.STDOUT
            )
        wait_for(self.healthy, timeout=30, what=f"the server to start (log: {self.log})")

    def healthy(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(
                f"the server exited with {self.process.returncode}: {self.log.read_text()}"
            )
        try:
            return httpx.get(f"{self.base}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def post(self, raw: bytes) -> httpx.Response:
        return httpx.post(
            f"{self.base}/webhook", content=raw, headers=signed_headers(raw), timeout=10
        )

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=20)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Served]]:
    started: list[Served] = []

    def start(api_url: str, flows: str = packaged_flows(), workers: int = 1) -> Served:
        served = Served(tmp_path, api_url, flows, workers)
        started.append(served)
        return served

    yield start
    for served in started:
        if served.process.poll() is None:
            served.kill()


def test_serve_refuses_without_secrets(tmp_path: Path) -> None:
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith("WHATSAPP_")
    }
    environment["WHATSAPP_VERIFY_TOKEN"] = "x"
    result = subprocess.run(
        [*command(), "serve", "--db", str(tmp_path / "x.db")],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert (
        "missing environment variable(s): WHATSAPP_APP_SECRET, WHATSAPP_ACCESS_TOKEN"
        in result.stderr
    )
    assert "--dev" in result.stderr
    assert "Traceback" not in result.stderr


def test_signed_text_gets_welcome_once_and_survives_restart(
    fake_graph: tuple[FakeGraphAPI, str], serve: Callable[..., Served]
) -> None:
    fake, api_url = fake_graph
    server = serve(api_url)
    raw = sample("text.json")
    assert server.post(raw).status_code == 200
    wait_for(lambda: len(fake.texts_to(PHONE)) == 2, what="the welcome menu")
    assert fake.texts_to(PHONE)[0].startswith("¡Hola! 👋")
    assert fake.messages[0].phone_number_id == "106540352242922"

    assert server.post(raw).status_code == 200
    time.sleep(1.5)
    assert len(fake.texts_to(PHONE)) == 2

    server.stop()
    server = serve(api_url)
    assert server.post(encode(messages_body(text(PHONE, "comprar")))).status_code == 200
    # The privacy notice, then the first question of the registration.
    wait_for(lambda: len(fake.texts_to(PHONE)) == 4, what="the registration question")
    assert "Protección de Datos Personales" in fake.texts_to(PHONE)[2]
    assert "¿Cuál es tu número de cédula?" in fake.texts_to(PHONE)[3]


def test_every_sample_returns_200_and_server_keeps_answering(
    fake_graph: tuple[FakeGraphAPI, str], serve: Callable[..., Served]
) -> None:
    fake, api_url = fake_graph
    server = serve(api_url)
    for path in sorted(SAMPLES.glob("*.json")):
        assert server.post(path.read_bytes()).status_code == 200, path.name
    assert httpx.get(f"{server.base}/healthz", timeout=5).json()["status"] == "ok"
    wait_for(lambda: len(fake.texts_to(PHONE)) >= 2, what="replies to the samples")


def test_crash_after_commit_delivers_reply_exactly_once(
    fake_graph: tuple[FakeGraphAPI, str], serve: Callable[..., Served]
) -> None:
    fake, api_url = fake_graph
    fake.fail_next(GraphError(status=503), times=10**6)
    server = serve(api_url)
    assert server.post(sample("text.json")).status_code == 200
    wait_for(lambda: len(fake.rejected) >= 1, what="a failed delivery attempt")
    server.kill()
    assert fake.texts_to(PHONE) == []

    fake.clear_failures()
    serve(api_url)
    wait_for(lambda: len(fake.texts_to(PHONE)) == 2, what="delivery after the restart")
    time.sleep(1.5)
    assert len(fake.texts_to(PHONE)) == 2


def test_two_workers_process_one_customer_in_order(
    fake_graph: tuple[FakeGraphAPI, str], serve: Callable[..., Served], tmp_path: Path
) -> None:
    fake, api_url = fake_graph
    server = serve(api_url, flows=COUNTER_FLOWS, workers=2)
    assert server.post(encode(messages_body(text(PHONE, "start")))).status_code == 200
    words = [f"m{index:02d}" for index in range(20)]

    async def send_all() -> list[int]:
        async with httpx.AsyncClient(base_url=server.base, timeout=20) as client:
            raws = [encode(messages_body(text(PHONE, word))) for word in words]
            responses = await asyncio.gather(
                *(client.post("/webhook", content=raw, headers=signed_headers(raw)) for raw in raws)
            )
        return [response.status_code for response in responses]

    assert asyncio.run(send_all()) == [200] * 20
    with sqlite3.connect(tmp_path / "e2e.db") as connection:
        slots = json.loads(
            connection.execute("SELECT slots FROM sessions WHERE phone = ?", (PHONE,)).fetchone()[0]
        )
    log = slots["log"]
    assert sorted(log) == words
    wait_for(lambda: len(fake.texts_to(PHONE)) == 21, what="all 21 replies")
    assert fake.texts_to(PHONE)[1:] == [
        f"#{number} {word}" for number, word in enumerate(log, start=1)
    ]


def test_purchase_paid_by_registered_transfer(
    fake_graph: tuple[FakeGraphAPI, str], serve: Callable[..., Served]
) -> None:
    fake, api_url = fake_graph
    server = serve(api_url)
    admin = {"authorization": f"Bearer {ADMIN_TOKEN}"}
    steps = [
        "hola", "comprar", "1710034065", "María José Pérez", "17/05/2000", "maria@example.com",
        "Quito, Av. Amazonas N34-120 y Naciones Unidas", "si", "2", "si", "transferencia", "Comprobante 000-555-123",
    ]  # fmt: skip
    for step in steps:
        assert server.post(encode(messages_body(text(PHONE, step)))).status_code == 200, step
    wait_for(
        lambda: any("Estoy verificando tu pago" in t for t in fake.texts_to(PHONE)),
        what="verification",
    )

    registered = httpx.post(
        f"{server.base}/admin/transfers",
        json={"reference": "555123", "amount": "4.00", "date": "2026-12-04"},
        headers=admin,
        timeout=10,
    )
    assert registered.status_code == 201
    assert registered.json()["result"] == "paid"

    def ticket_images() -> list[str]:
        return [
            received.body["image"]["caption"]
            for received in fake.messages
            if received.to == PHONE and received.body["type"] == "image"
        ]

    wait_for(lambda: len(ticket_images()) == 2, what="two ticket images")
    codes = [caption.split("Código: ")[1].split("\n")[0] for caption in ticket_images()]
    assert len(set(codes)) == 2
    assert len(fake.uploads) == 2
    for code in codes:
        found = httpx.get(f"{server.base}/admin/tickets/{code}", headers=admin, timeout=10)
        assert found.status_code == 200
        assert found.json()["status"] == "valid"
    stats = httpx.get(f"{server.base}/admin/stats", headers=admin, timeout=10).json()
    assert stats["paid"] == 1
    assert stats["revenue"] == "4.00"
    assert stats["revenue_cents"] == 400
    assert httpx.get(f"{server.base}/admin/stats", timeout=10).status_code == 401
