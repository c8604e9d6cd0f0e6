"""Client infrastructure: IP addresses, user agents, countries and time zones.

IPs are drawn the way real traffic looks:

* ``corp``: colleagues of one organisation share a corporate /24 (NAT egress);
  several *unrelated* legitimate accounts may sit in one office building or
  share a cloud egress range (a false-positive trap for infrastructure linking).
* ``residential``: one address per principal, re-leased now and then (DHCP).
* ``mobile``: carrier-grade NAT, many unrelated users behind few /24s.
* ``vpn``: a handful of commercial VPN exit /24s shared by many unrelated users.
* ``datacenter``: cloud ranges; a campaign's proxies concentrate in a few /24s.
* ``rotating``: rotating residential proxies, a fresh address per request
  (no shared /24): the evasive variant.

Addresses are uint32 arrays formatted to dotted quads with Arrow kernels.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# First octets of allocated public blocks, grouped by typical use.
RESIDENTIAL_OCTETS = np.array(
    [
        24,
        67,
        68,
        71,
        73,
        76,
        81,
        82,
        86,
        90,
        92,
        98,
        109,
        176,
        178,
        188,
        2,
        5,
        49,
        58,
        61,
        112,
        114,
        121,
        187,
        189,
        201,
    ]
)
MOBILE_OCTETS = np.array([172, 174, 166, 100, 39, 223])
CLOUD_OCTETS = np.array(
    [3, 13, 18, 34, 35, 44, 52, 54, 104, 137, 143, 146, 157, 159, 164, 167, 178, 185, 188, 195]
)
CORP_OCTETS = np.array(
    [
        12,
        15,
        17,
        32,
        38,
        63,
        64,
        65,
        128,
        129,
        130,
        131,
        136,
        138,
        140,
        144,
        147,
        152,
        155,
        192,
        193,
        194,
        198,
        199,
        204,
        206,
        208,
        209,
        216,
    ]
)
VPN_SUBNETS = np.array(
    [
        (185 << 24) | (159 << 16) | (157 << 8),
        (193 << 24) | (32 << 16) | (127 << 8),
        (45 << 24) | (87 << 16) | (214 << 8),
        (89 << 24) | (187 << 16) | (160 << 8),
        (146 << 24) | (70 << 16) | (105 << 8),
        (138 << 24) | (199 << 16) | (7 << 8),
        (37 << 24) | (19 << 16) | (200 << 8),
        (169 << 24) | (150 << 16) | (203 << 8),
    ],
    dtype=np.uint32,
)

COUNTRY_TZ: dict[str, float] = {
    "US": -6.0,
    "CA": -5.0,
    "BR": -3.0,
    "GB": 0.0,
    "DE": 1.0,
    "FR": 1.0,
    "NL": 1.0,
    "PL": 1.0,
    "IN": 5.5,
    "SG": 8.0,
    "CN": 8.0,
    "HK": 8.0,
    "JP": 9.0,
    "KR": 9.0,
    "AU": 10.0,
    "IL": 2.0,
}
BENIGN_COUNTRIES = np.array(
    [
        "US",
        "US",
        "US",
        "GB",
        "DE",
        "FR",
        "IN",
        "IN",
        "BR",
        "CA",
        "JP",
        "KR",
        "NL",
        "PL",
        "AU",
        "SG",
        "IL",
    ]
)

UA = {
    "browser": [
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
        "okhttp/4.12.0",
    ],
    "sdk": [
        "OpenAI/Python 1.51.2",
        "OpenAI/Python 1.40.6",
        "AsyncOpenAI/Python 1.51.2",
        "OpenAI/NodeJS 4.67.1",
        "Anthropic/Python 0.34.2",
        "Anthropic/TypeScript 0.27.3",
        "python-httpx/0.27.2",
        "python-requests/2.32.3",
    ],
    "agent": [
        "claude-cli/1.0.33 (external, cli)",
        "OpenAI/NodeJS 4.67.1",
        "aider/0.62.1 OpenAI/Python 1.51.2",
        "Cline/3.2.0",
    ],
    "batch": [
        "python-requests/2.32.3",
        "Go-http-client/2.0",
        "Java-http-client/17.0.11",
        "aiohttp/3.9.5",
    ],
    "eval": ["OpenAI/Python 1.40.6", "AsyncOpenAI/Python 1.51.2", "python-httpx/0.27.2"],
    "scraper": [
        "python-requests/2.31.0",
        "python-httpx/0.27.0",
        "OpenAI/Python 1.35.3",
        "aiohttp/3.9.5",
        "curl/8.5.0",
    ],
}


def format_ipv4(addr: np.ndarray) -> pa.StringArray:
    """Format uint32 addresses as dotted quads (vectorised)."""
    a = addr.astype(np.uint32)
    parts = [pa.array(((a >> s) & 0xFF).astype(np.int64)).cast(pa.string()) for s in (24, 16, 8, 0)]
    return pc.binary_join_element_wise(*parts, ".")


def subnets(rng: np.random.Generator, n: int, octets: np.ndarray) -> np.ndarray:
    """``n`` random /24 network addresses whose first octet is drawn from ``octets``."""
    first = rng.choice(octets, size=n).astype(np.uint32)
    mid = rng.integers(0, 1 << 16, size=n, dtype=np.uint32)
    return (first << 24) | (mid << 8)


def hosts(rng: np.random.Generator, nets: np.ndarray) -> np.ndarray:
    """One host address inside each /24 of ``nets``."""
    return nets.astype(np.uint32) | rng.integers(2, 254, size=len(nets), dtype=np.uint32)


def base_ips(
    rng: np.random.Generator, mode: str, n: int, shared: np.ndarray | None = None
) -> np.ndarray:
    """Per-principal home address for an IP ``mode`` (see module doc)."""
    if mode == "corp" or mode == "datacenter":
        assert shared is not None and len(shared) > 0, "corp/datacenter need shared /24s"
        return hosts(rng, rng.choice(shared, size=n))
    if mode == "vpn":
        return hosts(rng, rng.choice(VPN_SUBNETS, size=n))
    if mode == "mobile":
        carrier = subnets(np.random.default_rng(99), 40, MOBILE_OCTETS)  # carrier NATs are few
        return hosts(rng, rng.choice(carrier, size=n))
    return hosts(rng, subnets(rng, n, RESIDENTIAL_OCTETS))


def request_ips(
    rng: np.random.Generator, mode: str, base: np.ndarray, shared: np.ndarray | None = None
) -> np.ndarray:
    """Per-request addresses given each request's principal home address ``base``."""
    n = len(base)
    if mode == "rotating":
        return hosts(rng, subnets(rng, n, RESIDENTIAL_OCTETS))
    if mode == "datacenter" and shared is not None:
        # proxies: a request leaves from any host of the campaign's /24s
        return hosts(rng, rng.choice(shared, size=n))
    if mode in ("corp", "vpn", "mobile"):
        # NAT egress: same /24, host part varies
        return hosts(rng, base & np.uint32(0xFFFFFF00))
    # residential: DHCP re-lease on ~3% of requests
    moved = rng.random(n) < 0.03
    out = base.copy()
    out[moved] = hosts(rng, subnets(rng, int(moved.sum()), RESIDENTIAL_OCTETS))
    return out


def tz_of(countries: np.ndarray) -> np.ndarray:
    """UTC offset (hours) for ISO country codes."""
    return np.array([COUNTRY_TZ.get(str(c), 0.0) for c in countries], dtype=np.float64)
