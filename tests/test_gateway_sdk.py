"""The official openai and anthropic SDKs, unchanged, against the gateway (mock upstream at the edge)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest

from distillwatch.gateway import create_app
from distillwatch.gateway.local import ServerThread
from distillwatch.gateway.mockup import REASONING, create_mock_upstream
from distillwatch.ingest.normalize import normalize_event
from test_gateway_helpers import KEYS, classifier, config, read_events, write_verdicts

VERDICTS = [
    {"account_id": "acct_b", "action": "review", "risk": 0.6},
    {"account_id": "acct_c", "action": "challenge", "risk": 0.8},
    {"account_id": "acct_d", "action": "degrade", "risk": 0.92},
    {"account_id": "acct_e", "action": "block", "risk": 0.99},
    {"account_id": "acct_a", "end_user_id": "bad-user", "action": "block", "risk": 0.99},
]
MSG = [{"role": "user", "content": "hello there"}]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("gw")
    write_verdicts(tmp / "accounts.jsonl", VERDICTS)
    up_app = create_mock_upstream()
    with ServerThread(up_app) as up:
        cfg = config(tmp, up.url, max_body_bytes=20_000)
        with ServerThread(create_app(cfg, clf=classifier())) as gw:
            yield {"tmp": tmp, "up": up_app, "url": gw.url}


def oai(env: dict[str, Any], key: str = "sk-a") -> openai.OpenAI:
    return openai.OpenAI(base_url=env["url"] + "/v1", api_key=key, max_retries=0)


def ant(env: dict[str, Any], key: str = "sk-a") -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=env["url"], api_key=key, max_retries=0)


def last_seen(env: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = env["up"].state.seen[-1]["body"]
    return body


def test_openai_allow_non_streaming(env: dict[str, Any]) -> None:
    raw = oai(env).chat.completions.with_raw_response.create(model="m1", messages=MSG)  # type: ignore[arg-type]
    action = raw.headers["x-distillwatch-decision"].split("; ")
    assert action[0].startswith("dw_") and action[1] == "action=allow"
    c = raw.parse()
    assert c.choices[0].message.content == "echo: hello there"
    assert getattr(c.choices[0].message, "reasoning_content", None) == REASONING


def test_openai_allow_streaming_keeps_reasoning(env: dict[str, Any]) -> None:
    stream = oai(env).chat.completions.create(model="m1", messages=MSG, stream=True)  # type: ignore[arg-type]
    chunks = list(stream)
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    reasoning = "".join(
        getattr(ch.choices[0].delta, "reasoning_content", None) or "" for ch in chunks if ch.choices
    )
    assert text == "echo: hello there" and reasoning == REASONING
    assert len(chunks) >= 5  # relayed chunk by chunk, not merged


def test_openai_review_served_unchanged(env: dict[str, Any]) -> None:
    raw = oai(env, "sk-b").chat.completions.with_raw_response.create(
        model="m1", messages=MSG, logprobs=True
    )  # type: ignore[arg-type]
    assert raw.headers["x-distillwatch-decision"].endswith("action=review")
    c = raw.parse()
    assert c.choices[0].logprobs is not None and last_seen(env).get("logprobs") is True


def test_openai_degrade_non_streaming(env: dict[str, Any]) -> None:
    raw = oai(env, "sk-d").chat.completions.with_raw_response.create(
        model="m1",
        messages=MSG,
        logprobs=True,
        top_logprobs=5,
        n=3,
        logit_bias={"50256": -100},
        max_tokens=50_000,  # type: ignore[arg-type]
    )
    assert raw.headers["x-distillwatch-decision"].endswith("action=degrade")
    sent = last_seen(env)
    assert "logprobs" not in sent and "top_logprobs" not in sent and "logit_bias" not in sent
    assert sent["n"] == 1 and sent["max_tokens"] == 1024
    c = raw.parse()
    assert len(c.choices) == 1 and c.choices[0].logprobs is None
    assert c.choices[0].message.content == "echo: hello there"
    assert getattr(c.choices[0].message, "reasoning_content", None) is None


def test_openai_degrade_streaming_strips_reasoning(env: dict[str, Any]) -> None:
    chunks = list(
        oai(env, "sk-d").chat.completions.create(
            model="m1", messages=MSG, stream=True, logprobs=True
        )
    )  # type: ignore[arg-type]
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert text == "echo: hello there"
    for ch in chunks:
        for choice in ch.choices:
            assert getattr(choice.delta, "reasoning_content", None) is None
            assert choice.logprobs is None


@pytest.mark.parametrize(
    ("key", "status", "etype"),
    [("sk-c", 403, "verification_required"), ("sk-e", 403, "permission_error")],
)
def test_openai_challenge_and_block(env: dict[str, Any], key: str, status: int, etype: str) -> None:
    n_seen = len(env["up"].state.seen)
    with pytest.raises(openai.PermissionDeniedError) as ei:
        oai(env, key).chat.completions.create(model="m1", messages=MSG)  # type: ignore[arg-type]
    assert ei.value.status_code == status
    body: Any = ei.value.body
    assert body["type"] == etype and body["message"]
    assert ei.value.response.headers["x-distillwatch-decision"].endswith(
        "action=" + ("challenge" if key == "sk-c" else "block")
    )
    assert len(env["up"].state.seen) == n_seen  # never reached upstream


def test_end_user_verdict_applies(env: dict[str, Any]) -> None:
    with pytest.raises(openai.PermissionDeniedError):
        oai(env).chat.completions.create(model="m1", messages=MSG, user="bad-user")  # type: ignore[arg-type]
    ok = oai(env).chat.completions.create(model="m1", messages=MSG, user="good-user")  # type: ignore[arg-type]
    assert ok.choices[0].message.content


def test_openai_tool_calls_pass_through(env: dict[str, Any]) -> None:
    tools = [
        {
            "type": "function",
            "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}},
        }
    ]
    c = oai(env).chat.completions.create(model="m1", messages=MSG, tools=tools)  # type: ignore[arg-type]
    call = c.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert call.function.name == "lookup" and c.choices[0].finish_reason == "tool_calls"  # type: ignore[union-attr]


def test_upstream_errors_pass_through_unchanged(env: dict[str, Any]) -> None:
    with pytest.raises(openai.RateLimitError) as ei:
        oai(env).chat.completions.create(model="rate-limited", messages=MSG)  # type: ignore[arg-type]
    assert ei.value.body == {
        "message": "slow down",
        "type": "rate_limit_error",
        "code": "rate_limited",
    }
    with pytest.raises(anthropic.RateLimitError) as ea:
        ant(env).messages.create(model="rate-limited", max_tokens=10, messages=MSG)  # type: ignore[arg-type]
    assert ea.value.body == {
        "type": "error",
        "error": {"type": "rate_limit_error", "message": "slow down"},
    }


def test_models_list(env: dict[str, Any]) -> None:
    assert [m.id for m in oai(env).models.list()] == ["mock-1"]


def test_anthropic_allow_and_degrade(env: dict[str, Any]) -> None:
    m = ant(env).messages.create(model="c1", max_tokens=100, messages=MSG)  # type: ignore[arg-type]
    assert [b.type for b in m.content] == ["thinking", "redacted_thinking", "text"]
    raw = ant(env, "sk-d").messages.with_raw_response.create(
        model="c1", max_tokens=100, messages=MSG
    )  # type: ignore[arg-type]
    assert raw.headers["x-distillwatch-decision"].endswith("action=degrade")
    assert [b.type for b in raw.parse().content] == ["text"]


def test_anthropic_streaming_allow_and_degrade(env: dict[str, Any]) -> None:
    with ant(env).messages.stream(model="c1", max_tokens=100, messages=MSG) as s:  # type: ignore[arg-type]
        final = s.get_final_message()
    assert [b.type for b in final.content] == ["thinking", "text"]
    with ant(env, "sk-d").messages.stream(model="c1", max_tokens=100, messages=MSG) as s:  # type: ignore[arg-type]
        events = [e.type for e in s]
        final = s.get_final_message()
    assert [b.type for b in final.content] == ["text"] and final.content[
        0
    ].text == "echo: hello there"  # type: ignore[union-attr]
    assert "thinking" not in events


def test_anthropic_tools_and_refusals(env: dict[str, Any]) -> None:
    tools = [
        {"name": "lookup", "description": "d", "input_schema": {"type": "object", "properties": {}}}
    ]
    m = ant(env).messages.create(model="c1", max_tokens=100, messages=MSG, tools=tools)  # type: ignore[arg-type]
    assert m.stop_reason == "tool_use" and m.content[-1].type == "tool_use"
    for key, etype in (("sk-c", "verification_required"), ("sk-e", "permission_error")):
        with pytest.raises(anthropic.PermissionDeniedError) as ei:
            ant(env, key).messages.create(model="c1", max_tokens=10, messages=MSG)  # type: ignore[arg-type]
        assert ei.value.body == {
            "type": "error",
            "error": {"type": etype, "message": ei.value.body["error"]["message"]},
        }  # type: ignore[index]


def test_bad_requests_get_status_and_api_shaped_body(env: dict[str, Any]) -> None:
    url = env["url"]
    with pytest.raises(openai.AuthenticationError) as e1:
        oai(env, "sk-unknown").chat.completions.create(model="m1", messages=MSG)  # type: ignore[arg-type]
    assert e1.value.status_code == 401 and e1.value.body["type"] == "invalid_request_error"  # type: ignore[index]
    with pytest.raises(anthropic.AuthenticationError) as e2:
        ant(env, "sk-unknown").messages.create(model="c1", max_tokens=10, messages=MSG)  # type: ignore[arg-type]
    assert e2.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
    r = httpx.post(
        url + "/v1/chat/completions", content=b"{not json", headers={"authorization": "Bearer sk-a"}
    )
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
    r = httpx.post(url + "/v1/messages", content=b"[1]", headers={"x-api-key": "sk-a"})
    assert r.status_code == 400 and r.json()["type"] == "error"
    r = httpx.post(url + "/v1/chat/completions", json={"model": "m", "messages": MSG})
    assert r.status_code == 401 and "API key" in r.json()["error"]["message"]
    big = [{"role": "user", "content": "x" * 30_000}]
    with pytest.raises(openai.APIStatusError) as e3:
        oai(env).chat.completions.create(model="m1", messages=big)  # type: ignore[arg-type]
    assert e3.value.status_code == 413
    r = httpx.post(
        url + "/v1/messages",
        json={"model": "c", "max_tokens": 1, "messages": big},
        headers={"x-api-key": "sk-a"},
    )
    assert r.status_code == 413 and r.json()["error"]["type"] == "request_too_large"


def test_verdict_file_reread_on_change(env: dict[str, Any]) -> None:
    key = "sk-a"
    oai(env, key).chat.completions.create(model="m1", messages=MSG)  # type: ignore[arg-type]
    write_verdicts(
        env["tmp"] / "accounts.jsonl", [*VERDICTS, {"account_id": KEYS[key], "action": "block"}]
    )
    time.sleep(0.7)
    try:
        with pytest.raises(openai.PermissionDeniedError):
            oai(env, key).chat.completions.create(model="m1", messages=MSG)  # type: ignore[arg-type]
    finally:
        write_verdicts(env["tmp"] / "accounts.jsonl", VERDICTS)
        time.sleep(0.7)
    oai(env, key).chat.completions.create(model="m1", messages=MSG)  # type: ignore[arg-type]


def test_events_are_contract_events(env: dict[str, Any]) -> None:
    oai(env).chat.completions.create(model="m1", messages=MSG, user="u-42")  # type: ignore[arg-type]
    time.sleep(1.2)  # background flush every 0.5 s
    events = read_events(env["tmp"])
    assert events
    for ev in events:
        _row, reason = normalize_event(ev)
        assert reason is None, (reason, ev)
        assert "sk-" not in str(ev.get("api_key_id"))
    mine = [e for e in events if e.get("end_user_id") == "u-42"]
    assert mine and mine[-1]["response"]["text"] == "echo: hello there"
    assert (
        mine[-1]["response"]["reasoning"] == REASONING and mine[-1]["usage"]["output_tokens"] == 7
    )


def test_openai_responses_api_allow_and_degrade(env: dict[str, Any]) -> None:
    raw = oai(env).responses.with_raw_response.create(model="m1", input="hello there")
    assert raw.headers["x-distillwatch-decision"].endswith("action=allow")
    types = [item.type for item in raw.parse().output]
    assert types == ["reasoning", "message"]
    raw = oai(env, "sk-d").responses.with_raw_response.create(model="m1", input="hello there")
    assert raw.headers["x-distillwatch-decision"].endswith("action=degrade")
    resp = raw.parse()
    assert [item.type for item in resp.output] == ["message"]  # reasoning item removed
    assert resp.output_text == "echo"


def test_openai_responses_api_block(env: dict[str, Any]) -> None:
    with pytest.raises(openai.PermissionDeniedError) as e:
        oai(env, "sk-e").responses.create(model="m1", input="hello")
    assert e.value.status_code == 403
