"""`deskbot rasa-actions` as an operator runs it: a child process that migrates, then serves."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.fakes.rasa_core import action_call
from tests.fakes.rasa_nlu import free_port

REPO = Path(__file__).resolve().parents[2]


def test_the_command_migrates_serves_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DESKBOT_")}
    env |= {
        "DESKBOT_STORAGE__URL": f"sqlite+aiosqlite:///{tmp_path / 'deskbot.db'}",
        "DESKBOT_CLASSIFIER__MODEL_PATH": str(tmp_path / "never-trained.npz"),
    }
    command = [sys.executable, "-m", "bot.cli.main", "--config", str(REPO / "config.yaml"), "rasa-actions", "--port", str(port)]
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log_path.read_text(errors="replace")
            assert time.monotonic() < deadline, log_path.read_text(errors="replace")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1, trust_env=False).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        call = action_call("action_deskbot_escalate_complaint", "cli-user", text="the zip broke on day one")
        answer = httpx.post(f"http://127.0.0.1:{port}/webhook", json=call, timeout=10, trust_env=False).json()
        assert "I've opened complaint T-1001" in answer["responses"][0]["text"]
    finally:
        process.terminate()
        # uvicorn shuts down gracefully, then re-raises the signal it caught (exit by SIGTERM).
        assert process.wait(timeout=15) in (0, -15), log_path.read_text(errors="replace")
    assert not (tmp_path / "never-trained.npz").exists()
    log = log_path.read_text(errors="replace")
    assert "Application shutdown complete" in log
    assert "rasa action handled" in log and "the zip broke" not in log  # message text is never logged
