"""Redis-backed gateway fleet: one account state shared by two gateways; fail open / closed.

Starts its own redis-server on a free port (never touches a system Redis).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import openai
import pytest
import redis

from distillwatch.gateway import create_app
from distillwatch.gateway.local import ServerThread, free_port
from distillwatch.gateway.mockup import create_mock_upstream
from distillwatch.gateway.statestore import RowCodec
from distillwatch.signals.state import EntityState
from test_gateway_helpers import classifier, config

pytestmark = [
    pytest.mark.redis,
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server not installed"),
]
MSG = [{"role": "user", "content": "hello"}]


@pytest.fixture()
def redis_url(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port)
    for _ in range(200):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.02)
    yield f"redis://127.0.0.1:{port}/0"
    if proc.poll() is None:
        proc.terminate()
        proc.wait(10)


def stored_state(url: str, account: str) -> EntityState:
    codec = RowCodec()
    blob = redis.Redis.from_url(url).hget(f"dw:acct:{codec.tag}:{account}", "row")
    st = EntityState(1)
    assert blob is not None
    codec.decode_into(blob, st, 0)
    return st


def client(url: str, key: str = "sk-a") -> openai.OpenAI:
    return openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0)


def test_two_gateways_share_one_account_state(tmp_path: Path, redis_url: str) -> None:
    clf = classifier()
    with ServerThread(create_mock_upstream()) as up:
        cfg = config(tmp_path, up.url, state=redis_url, keys_from_redis=True)
        with (
            ServerThread(create_app(cfg, clf=clf)) as g1,
            ServerThread(create_app(cfg, clf=clf)) as g2,
        ):
            urls = [g1.url, g2.url]

            def call(i: int) -> str:
                raw = client(urls[i % 2]).chat.completions.with_raw_response.create(
                    model="m", messages=MSG
                )  # type: ignore[arg-type]
                return raw.headers["x-distillwatch-decision"]

            with ThreadPoolExecutor(8) as pool:
                decisions = list(pool.map(call, range(60)))
            assert all(d.endswith("action=allow") for d in decisions)
            st = stored_state(redis_url, "acct_a")
            assert st.cols["n"][0] == 60  # no update lost between the two processes
            assert st.cols["gap_n"][0] == 59
            assert np.count_nonzero(st.cols["hll_templates"][0]) >= 1
            # keys published in Redis are honoured by both gateways
            redis.Redis.from_url(redis_url).hset("dw:keys", "sk-redis", "acct_r")
            for u in urls:
                assert (
                    client(u, "sk-redis").chat.completions.create(model="m", messages=MSG).choices
                )  # type: ignore[arg-type]
            assert stored_state(redis_url, "acct_r").cols["n"][0] == 2


def test_fail_open_and_fail_closed_when_redis_stops(tmp_path: Path, redis_url: str) -> None:
    clf = classifier()
    with ServerThread(create_mock_upstream()) as up:
        opened = config(tmp_path, up.url, state=redis_url, on_state_error="open")
        closed = config(tmp_path, up.url, state=redis_url, on_state_error="closed")
        with (
            ServerThread(create_app(opened, clf=clf)) as go,
            ServerThread(create_app(closed, clf=clf)) as gc,
        ):
            for u in (go.url, gc.url):
                assert client(u).chat.completions.create(model="m", messages=MSG).choices  # type: ignore[arg-type]
            redis.Redis.from_url(redis_url).shutdown(nosave=True)
            time.sleep(0.2)
            raw = client(go.url).chat.completions.with_raw_response.create(model="m", messages=MSG)  # type: ignore[arg-type]
            assert (
                raw.status_code == 200 and raw.parse().choices[0].message.content == "echo: hello"
            )
            with pytest.raises(openai.InternalServerError) as ei:
                client(gc.url).chat.completions.create(model="m", messages=MSG)  # type: ignore[arg-type]
            assert ei.value.status_code == 503
            body: Any = ei.value.body
            assert "unavailable" in body["message"]
            assert "state=unavailable" in ei.value.response.headers["x-distillwatch-decision"]
