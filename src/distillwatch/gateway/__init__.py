"""Inline gateway: an OpenAI/Anthropic-compatible proxy that scores and acts per request."""

from __future__ import annotations

from .app import Gateway, create_app
from .config import GatewayConfig
from .server import run_gateway, serve

__all__ = ["Gateway", "GatewayConfig", "create_app", "run_gateway", "serve"]
