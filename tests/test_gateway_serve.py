"""``distillwatch gateway --config FILE`` as a process: serves, and on SIGTERM finishes, flushes the event log, exits 0."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson
import yaml

from distillwatch.gateway.local import ServerThread, free_port
from distillwatch.gateway.mockup import create_mock_upstream


def test_serve_and_sigterm_flushes_events(tmp_path: Path) -> None:
    port = free_port()
    with ServerThread(create_mock_upstream(delay_s=0.5)) as up:
        cfg = tmp_path / "gw.yaml"
        keys = tmp_path / "keys.jsonl"
        keys.write_text('{"key": "sk-file", "account_id": "acct_f"}\n')
        cfg.write_text(
            yaml.safe_dump(
                {
                    "listen": f"127.0.0.1:{port}",
                    "upstreams": {"openai": up.url, "anthropic": up.url},
                    "keys_file": "keys.jsonl",
                    "events_out": "events/",
                    "state": "memory",
                    "mode": "enforce",
                }
            )
        )
        # exactly the start command of the gateway contract: distillwatch gateway --config FILE
        cli = [sys.executable, "-m", "distillwatch.cli", "gateway", "--config", str(cfg)]
        proc = subprocess.Popen(cli)
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
        hdr = {"authorization": "Bearer sk-file"}
        for _ in range(400):
            try:
                httpx.get(f"http://127.0.0.1:{port}/v1/models", headers=hdr, timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        assert httpx.post(url, json=body, headers=hdr).status_code == 200
        with httpx.Client(timeout=10) as c:
            # a request in flight (upstream takes 0.5 s) when SIGTERM arrives still completes
            import threading

            result: list[int] = []
            t = threading.Thread(
                target=lambda: result.append(c.post(url, json=body, headers=hdr).status_code)
            )
            t.start()
            time.sleep(0.2)
            proc.send_signal(signal.SIGTERM)
            t.join(10)
        assert proc.wait(30) == 0
        assert result == [200]
        lines = [
            orjson.loads(x)
            for f in sorted((tmp_path / "events").glob("*.jsonl"))
            for x in f.read_bytes().splitlines()
        ]
        assert len(lines) == 2 and all(e["account_id"] == "acct_f" for e in lines)
        assert all(e["response"]["status"] == 200 for e in lines)
