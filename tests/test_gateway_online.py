"""Online decisions (no verdict file), shadow mode, and LiteLLM's Generic Guardrail API."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from distillwatch.gateway import create_app
from distillwatch.gateway.local import ServerThread
from distillwatch.gateway.mockup import create_mock_upstream
from distillwatch.scoring.config import Settings
from test_gateway_helpers import classifier, config, write_verdicts

HARVEST = "Explain step by step your full reasoning for task {i}. Show your reasoning."


def harvest_call(c: openai.OpenAI, i: int) -> Any:
    return c.chat.completions.with_raw_response.create(
        model="m1",
        messages=[{"role": "user", "content": HARVEST.format(i=i)}],
        max_tokens=8000,
        reasoning_effort="high",
        logprobs=True,
        top_logprobs=5,
        temperature=0.0,
    )


def benign_call(c: openai.OpenAI, i: int) -> Any:
    msgs = [
        {"role": "user", "content": "hi, how are you"},
        {"role": "assistant", "content": "fine"},
        {"role": "user", "content": f"what do cats eat {i % 3}"},
    ]
    return c.chat.completions.with_raw_response.create(model="m1", messages=msgs, max_tokens=300)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    with ServerThread(create_mock_upstream()) as up:
        yield up.url


def test_online_state_escalates_a_harvester_not_a_benign_user(
    tmp_path: Path, upstream: str
) -> None:
    with ServerThread(create_app(config(tmp_path, upstream), clf=classifier())) as gw:
        harvester = openai.OpenAI(base_url=gw.url + "/v1", api_key="sk-a", max_retries=0)
        benign = openai.OpenAI(base_url=gw.url + "/v1", api_key="sk-b", max_retries=0)
        enforced_at = None
        actions = []
        for i in range(80):
            assert (
                benign_call(benign, i).headers["x-distillwatch-decision"].endswith("action=allow")
            )
            try:
                raw = harvest_call(harvester, i)
                actions.append(raw.headers["x-distillwatch-decision"].rsplit("=", 1)[1])
            except openai.PermissionDeniedError as e:  # challenge or block
                enforced_at = i
                assert e.body["type"] in ("verification_required", "permission_error")  # type: ignore[index]
                break
            if actions[-1] == "degrade":  # served without reasoning or logprobs
                enforced_at = i
                assert raw.parse().choices[0].logprobs is None
                break
        assert enforced_at is not None, actions
        # no enforcement on thin evidence: the request that triggers it is the floor-th or later
        assert enforced_at + 1 >= Settings.load().min_requests_enforce
        assert "review" in actions  # graduated: review before anything stronger


def test_shadow_mode_decides_but_never_acts(tmp_path: Path, upstream: str) -> None:
    write_verdicts(tmp_path / "accounts.jsonl", [{"account_id": "acct_e", "action": "block"}])
    with ServerThread(
        create_app(config(tmp_path, upstream, mode="shadow"), clf=classifier())
    ) as gw:
        c = openai.OpenAI(base_url=gw.url + "/v1", api_key="sk-e", max_retries=0)
        raw = c.chat.completions.with_raw_response.create(
            model="m", messages=[{"role": "user", "content": "x"}], logprobs=True
        )  # type: ignore[arg-type]
        assert raw.status_code == 200
        assert raw.headers["x-distillwatch-decision"].endswith("action=block; mode=shadow")
        assert raw.parse().choices[0].logprobs is not None


def litellm_payload(
    org: str, text: str, input_type: str = "request", end_user: str | None = None
) -> dict[str, Any]:
    """The body LiteLLM's generic_guardrail_api hook posts (GenericGuardrailAPIRequest)."""
    return {
        "input_type": input_type,
        "litellm_call_id": str(uuid.uuid4()),
        "litellm_trace_id": str(uuid.uuid4()),
        "structured_messages": [{"role": "user", "content": text}]
        if input_type == "request"
        else None,
        "images": None,
        "tools": None,
        "texts": [text],
        "request_data": {
            "user_api_key_hash": "hash-" + org,
            "user_api_key_alias": None,
            "user_api_key_user_id": None,
            "user_api_key_team_id": None,
            "user_api_key_org_id": org,
            "user_api_key_end_user_id": end_user,
        },
        "additional_provider_specific_params": {},
    }


def test_litellm_generic_guardrail_api(tmp_path: Path, upstream: str) -> None:
    write_verdicts(
        tmp_path / "accounts.jsonl",
        [
            {"account_id": "org_blocked", "action": "block"},
            {"account_id": "org_degraded", "action": "degrade"},
            {"account_id": "org_ok", "end_user_id": "eu_bad", "action": "challenge"},
        ],
    )
    with ServerThread(create_app(config(tmp_path, upstream), clf=classifier())) as gw:
        url = gw.url + "/beta/litellm_basic_guardrail_api"
        hdr = {"x-api-key": "sk-a"}  # LiteLLM sends the configured api_key as x-api-key

        def call(payload: dict[str, Any], headers: dict[str, str] = hdr) -> httpx.Response:
            return httpx.post(url, json=payload, headers=headers)

        assert call(litellm_payload("org_ok", "hello"), {}).status_code == 401
        r = call(litellm_payload("org_ok", "hello"))
        assert (
            r.status_code == 200 and r.json()["action"] == "NONE" and r.json()["texts"] == ["hello"]
        )
        r = call(litellm_payload("org_blocked", "hello"))
        assert r.json()["action"] == "BLOCKED" and "blocked" in r.json()["blocked_reason"]
        assert (
            call(litellm_payload("org_blocked", "answer", "response")).json()["action"] == "BLOCKED"
        )
        assert (
            call(litellm_payload("org_degraded", "hello")).json()["action"]
            == "GUARDRAIL_INTERVENED"
        )
        assert (
            call(litellm_payload("org_ok", "hello", end_user="eu_bad")).json()["action"]
            == "BLOCKED"
        )
        # online: a harvesting org scored by the same pipeline is acted on without any verdict
        seen = []
        for i in range(80):
            act = call(
                litellm_payload("org_new", HARVEST.format(i=i) + " Grade it with a rubric.")
            ).json()["action"]
            seen.append(act)
            if act != "NONE":
                break
        floor = Settings.load().min_requests_enforce
        assert seen[-1] in ("GUARDRAIL_INTERVENED", "BLOCKED") and len(seen) >= floor, seen
        assert call(litellm_payload("org_ok", "bad", "response")).json()["action"] == "NONE"


def test_a_trusted_customer_hold_from_the_last_run_holds_online(
    tmp_path: Path, upstream: str
) -> None:
    # the last detect run held acct_a at review as a trusted customer
    held = {"signal": "trusted_customer", "value": 0.86, "detail": "held at review"}
    write_verdicts(
        tmp_path / "accounts.jsonl",
        [{"account_id": "acct_a", "action": "review", "reasons": [held]}],
    )
    with ServerThread(create_app(config(tmp_path, upstream), clf=classifier())) as gw:
        c = openai.OpenAI(base_url=gw.url + "/v1", api_key="sk-a", max_retries=0)
        actions = [
            harvest_call(c, i).headers["x-distillwatch-decision"].rsplit("=", 1)[1]
            for i in range(60)
        ]
        assert set(actions) == {"review"}, actions  # the verdict floor, never past it
        # the same traffic from an account without the hold is enforced
        write_verdicts(tmp_path / "accounts.jsonl", [{"account_id": "acct_a", "action": "review"}])
        time.sleep(0.6)  # VerdictStore re-checks the file every 0.5 s
        later = []
        for i in range(60, 120):
            try:
                later.append(harvest_call(c, i).headers["x-distillwatch-decision"])
            except openai.PermissionDeniedError as e:  # challenge or block
                later.append(e.response.headers["x-distillwatch-decision"])
                break
        assert not later[-1].endswith(("allow", "review")), later
