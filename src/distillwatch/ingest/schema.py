"""The normalised event table: the one shape everything downstream of ingest sees.

Readers turn contract events (../shared/spec/events.md section 1) of any file
format into Arrow record batches of :data:`EVENT_SCHEMA`. Features, signals,
linking, the gateway and the Spark engine read only these columns.

Text columns keep what detection needs and nothing more: the system prompt,
the last user turn (``prompt``) and counts. Response text is reduced to
lengths; raw answers are never carried past ingest.
"""

from __future__ import annotations

import pyarrow as pa

TS_TYPE = pa.timestamp("ms", tz="UTC")

EVENT_SCHEMA = pa.schema(
    [
        pa.field("ts", TS_TYPE, nullable=False),
        pa.field("account_id", pa.string(), nullable=False),
        pa.field("id", pa.string()),
        pa.field("api_key_id", pa.string()),
        pa.field("end_user_id", pa.string()),
        pa.field("ip", pa.string()),
        pa.field("user_agent", pa.string()),
        pa.field("endpoint", pa.string()),
        pa.field("model", pa.string()),
        # text: system prompt (request.system or system-role messages, joined)
        pa.field("system", pa.string()),
        # text: the last user turn's text parts, joined with "\n"
        pa.field("prompt", pa.string()),
        pa.field("n_messages", pa.int32()),
        pa.field("n_user_turns", pa.int32()),
        pa.field("n_assistant_turns", pa.int32()),
        pa.field("n_tool_messages", pa.int32()),
        pa.field("prompt_chars", pa.int32()),
        # request.params
        pa.field("temperature", pa.float32()),
        pa.field("top_p", pa.float32()),
        pa.field("max_tokens", pa.int32()),
        pa.field("n", pa.int32()),
        pa.field("logprobs", pa.bool_()),
        pa.field("top_logprobs", pa.int32()),
        pa.field("stream", pa.bool_()),
        pa.field("reasoning_effort", pa.string()),
        pa.field("tools", pa.int32()),
        pa.field("seed", pa.int64()),
        # response / usage
        pa.field("status", pa.int32()),
        pa.field("finish_reason", pa.string()),
        pa.field("response_chars", pa.int32()),
        pa.field("reasoning_chars", pa.int32()),
        pa.field("input_tokens", pa.int32()),
        pa.field("output_tokens", pa.int32()),
        pa.field("reasoning_tokens", pa.int32()),
    ]
)

ACCOUNT_SCHEMA = pa.schema(
    [
        pa.field("account_id", pa.string(), nullable=False),
        pa.field("created_at", TS_TYPE),
        pa.field("tier", pa.string()),
        pa.field("verified", pa.bool_()),
        pa.field("payment_fingerprint", pa.string()),
        pa.field("email_domain", pa.string()),
        pa.field("country", pa.string()),
        pa.field("reseller", pa.bool_()),
    ]
)

REJECT_SCHEMA = pa.schema(
    [
        pa.field("source", pa.string()),
        pa.field("line", pa.int64()),
        pa.field("reason", pa.string()),
        pa.field("raw", pa.string()),
    ]
)

TIERS = ("free", "pay_as_you_go", "startup_program", "education", "research_program", "enterprise")
