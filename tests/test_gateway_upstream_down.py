"""An upstream that is down or too slow: 502 / 504 in the caller's API shape, logged."""

from __future__ import annotations

from pathlib import Path

import anthropic
import openai
import pytest

from distillwatch.gateway import create_app
from distillwatch.gateway.local import ServerThread, free_port
from distillwatch.gateway.mockup import create_mock_upstream
from test_gateway_helpers import classifier, config, read_events

MSG = [{"role": "user", "content": "hello"}]


def test_unreachable_upstream_is_a_502_in_each_api_shape(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with ServerThread(create_app(config(tmp_path, dead), clf=classifier())) as gw:
        oa = openai.OpenAI(base_url=gw.url + "/v1", api_key="sk-a", max_retries=0)
        with pytest.raises(openai.APIStatusError) as e:
            oa.chat.completions.create(model="m", messages=MSG)  # type: ignore[arg-type]
        assert e.value.status_code == 502
        assert "upstream model API could not be reached" in e.value.message
        assert e.value.response.headers["x-distillwatch-decision"].endswith("action=allow")
        assert dead not in e.value.response.text  # the upstream's address stays private
        with pytest.raises(openai.APIStatusError) as e:
            oa.models.list()
        assert e.value.status_code == 502
        an = anthropic.Anthropic(base_url=gw.url, api_key="sk-b", max_retries=0)
        with pytest.raises(anthropic.APIStatusError) as ea:
            an.messages.create(model="m", max_tokens=16, messages=MSG)  # type: ignore[arg-type]
        assert ea.value.status_code == 502
        assert ea.value.body["error"]["type"] == "api_error"  # type: ignore[index]
    events = read_events(tmp_path)
    assert [e["response"]["status"] for e in events] == [502, 502]  # models calls are not events


def test_upstream_slower_than_the_timeout_is_a_504(tmp_path: Path) -> None:
    with ServerThread(create_mock_upstream(delay_s=2.0)) as slow:
        cfg = config(tmp_path, slow.url, upstream_timeout_s=0.3)
        with ServerThread(create_app(cfg, clf=classifier())) as gw:
            oa = openai.OpenAI(base_url=gw.url + "/v1", api_key="sk-a", max_retries=0)
            with pytest.raises(openai.APIStatusError) as e:
                oa.chat.completions.create(model="m", messages=MSG)  # type: ignore[arg-type]
            assert e.value.status_code == 504
            assert "did not answer in time" in e.value.message
