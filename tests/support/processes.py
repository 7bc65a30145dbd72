"""Running real ``leadrelay serve`` processes for crash and multi-process tests."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.support.backends import Backend
from tests.support.helpers import (
    API_TOKEN,
    CORP_ID,
    OA_AES_KEY,
    OA_APP_ID,
    OA_TOKEN,
    SECRET_KEY,
    WECOM_AES_KEY,
    WECOM_TOKEN,
)

ROOT = Path(__file__).resolve().parents[2]


def write_config(path: Path, backend: Backend, port: int, *, workers: int = 4) -> Path:
    path.write_text(f"""
[server]
port = {port}
secret_key = "{SECRET_KEY}"
[database]
url = {json.dumps(backend.database_url)}
[redis]
url = {json.dumps(backend.redis_url)}
key_prefix = {json.dumps(backend.redis_prefix)}
[wechat]
app_id = "{OA_APP_ID}"
token = "{OA_TOKEN}"
encoding_aes_key = "{OA_AES_KEY}"
[wecom]
corp_id = "{CORP_ID}"
token = "{WECOM_TOKEN}"
encoding_aes_key = "{WECOM_AES_KEY}"
[inbox]
workers = {workers}
sweep_interval_s = 0.5
sweep_grace_s = 1.0
[api]
tokens = ["{API_TOKEN}"]
""", encoding="utf-8")
    return path


class ServerProcess:
    def __init__(self, config: Path, port: int, log: Path) -> None:
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self._log = log.open("ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "bot.cli", "serve", "--config", str(config)],
                                     cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT)
        self._wait_healthy()

    def _wait_healthy(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}; see {self._log.name}")
            try:
                with urllib.request.urlopen(f"{self.base}/healthz", timeout=1) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("server did not become healthy")

    def kill(self) -> None:
        self.proc.kill()  # SIGKILL: no cleanup, no flush, nothing graceful
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
