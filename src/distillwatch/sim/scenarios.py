"""Named scenarios: which populations, how many, over how many days.

Every scenario is deterministic under ``seed`` and multiplies its account
counts by ``scale``. ``HELD_OUT_SEEDS`` and the ``*_heldout`` variants are for
final evaluation only: never tune detection on them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from distillwatch.sim import infra
from distillwatch.sim.population import Population, make_population
from distillwatch.sim.profiles import PROFILES, Profile, variant

HELD_OUT_SEEDS = (1001, 1002, 1003)
START_MS = 1_772_409_600_000  # 2026-03-02T00:00:00Z, a Monday


@dataclass
class Builder:
    """Collects populations for a scenario; helpers add archetype groups."""

    rng: np.random.Generator
    scale: float
    days: int
    pops: list[Population] = field(default_factory=list)
    n_campaigns: int = 0

    def n(self, base: float) -> int:
        return max(1, round(base * self.scale))

    def add(
        self, profile: Profile | str, n: int, rate_mult: float = 1.0, **kw: object
    ) -> Population:
        prof = PROFILES[profile] if isinstance(profile, str) else profile
        pop = make_population(self.rng, prof, n, START_MS, **kw)  # type: ignore[arg-type]
        pop.rate *= rate_mult
        self.pops.append(pop)
        return pop

    def campaign(self) -> str:
        self.n_campaigns += 1
        return f"camp_{self.n_campaigns:03d}"

    # ---- legitimate background -------------------------------------------------
    def legit(self, k: float = 1.0, heavy: bool = True) -> None:
        """Benign mix. Colleagues share corporate /24s; a lab's eval harness and
        researchers share the developers' range; two enterprise accounts of one
        company run the same template (linking false-positive traps)."""
        corp = infra.subnets(self.rng, max(2, self.n(40 * k)), infra.CORP_OCTETS)
        self.add("casual", self.n(3000 * k), tier=["free", "free", "pay_as_you_go"], verified=0.2)
        self.add("casual_mobile", self.n(1000 * k), tier="free", verified=0.1)
        self.add(
            "developer",
            self.n(600 * k),
            shared_nets=corp,
            verified=0.7,
            email_domains=["acme.io", "globex.com", "initech.dev", "gmail.com"],
        )
        self.add(
            "researcher",
            self.n(40 * k),
            tier="research_program",
            shared_nets=corp[:4],
            verified=1.0,
            email_domains=["cs.stanford.edu", "ethz.ch", "mit.edu"],
        )
        if not heavy:
            return
        vol = min(1.0, k)  # small scenarios also thin out the heaviest senders
        self.add(
            "agent_power",
            max(2, self.n(15 * k)),
            tier="pay_as_you_go",
            verified=0.8,
            created_days_before=(10, 400),
        )
        ent = self.add(
            "enterprise_batch",
            2,
            rate_mult=vol,
            tier="enterprise",
            verified=1.0,
            shared_nets=corp[-1:],
            email_domains=["globex.com"],
        )
        ent.slot[:] = ent.slot[0]  # same company, same templated job
        self.add(
            "eval_harness",
            max(2, self.n(6 * k)),
            rate_mult=vol,
            shared_nets=corp[:4],
            tier=["pay_as_you_go", "research_program"],
            verified=1.0,
        )
        self.add(
            "rag_backend",
            max(2, self.n(3 * k)),
            rate_mult=vol,
            tier=["enterprise", "pay_as_you_go"],
            verified=1.0,
        )
        self.legit_reseller(self.n(300 * k))

    def legit_reseller(self, n_customers: int) -> str:
        res = make_population(
            self.rng,
            PROFILES["rag_backend"],
            1,
            START_MS,
            tier="enterprise",
            verified=1.0,
            reseller=True,
        )
        aid = str(res.account_id[0])
        nets = infra.subnets(self.rng, 3, infra.CLOUD_OCTETS)
        pop = self.add("reseller_customer", n_customers, reseller_of=aid, shared_nets=nets)
        pop.accounts.extend(res.accounts)
        return aid

    # ---- attacks ---------------------------------------------------------------
    def hydra(self, n: int, profile: Profile | str = "hydra", nets: int = 6) -> None:
        """Account farm: burst sign-ups on startup/education tiers, shared payment,
        proxies in a few datacenter /24s, one shared task pool."""
        camp = self.campaign()
        pop = self.add(
            profile,
            n,
            tier=["startup_program", "education"],
            verified=0.05,
            created_burst=True,
            created_days_before=(3, 40),
            payment_pool=max(1, n // 25),
            countries=self.rng.choice(["SG", "HK", "US", "CN"], n),
            shared_nets=infra.subnets(self.rng, nets, infra.CLOUD_OCTETS),
            campaign_id=camp,
        )
        pop.slot[:] = pop.slot[0]

    def bulk(self, n: int = 2, rate_mult: float = 1.0) -> None:
        self.add(
            "bulk_harvester",
            n,
            rate_mult=rate_mult,
            verified=1.0,
            campaign_id=self.campaign(),
            countries=np.array(["SG"] * n),
        )

    def cot_rubric(self, n_cot: int, n_rubric: int) -> None:
        self.hydra(n_cot, "cot_coercion", nets=4)
        self.hydra(n_rubric, "rubric", nets=3)

    def sweep(self, n: int) -> None:
        self.hydra(n, "sweep", nets=3)

    def datagen(self, n: int) -> None:
        """A synthetic-data generation farm (distilabel generation templates)."""
        self.hydra(n, "datagen", nets=3)

    def reseller_mixed(self, n_customers: int, n_attackers: int) -> None:
        aid = self.legit_reseller(n_customers)
        res_nets = self.pops[-1].shared_nets
        self.add(
            "reseller_attacker",
            n_attackers,
            reseller_of=aid,
            shared_nets=res_nets,
            campaign_id=self.campaign(),
        )

    def evasive(self, n: int, rotation: float = 1.0, paraphrase: float = 0.6) -> None:
        """Aged accounts woken mid-window, rotating residential IPs, random timing,
        paraphrased prompts, moving to a newly released model within a day."""
        prof = variant(
            "evasive",
            paraphrase_rate=paraphrase,
            ip_mode="rotating" if rotation >= 0.5 else "residential",
        )
        self.add(
            prof,
            n,
            tier=["pay_as_you_go", "free"],
            verified=0.4,
            created_days_before=(120, 400),
            campaign_id=self.campaign(),
            start_day=(self.days // 4, self.days // 2),
        )


@dataclass(frozen=True)
class Scenario:
    description: str
    days: int
    build: Callable[[Builder], None]
    release_day: float = 0.6  # share of the window after which a new model is released


def _mixed(b: Builder) -> None:
    b.legit()
    b.bulk()
    b.hydra(b.n(400))
    b.cot_rubric(b.n(150), b.n(100))
    b.sweep(b.n(60))
    b.reseller_mixed(b.n(200), b.n(15))
    b.evasive(b.n(120))


def _public(b: Builder) -> None:
    """Rates set so scale=1 gives ~650k attack requests/day (28.8M over 44 days)."""
    b.legit(k=1.0)
    b.bulk(3)
    hyd = variant("hydra", rate=(17.0, 0.5, 5, 100))
    for share in (0.45, 0.3, 0.05):
        b.hydra(b.n(25_000 * share), hyd)
    b.hydra(b.n(2_500), variant("cot_coercion", rate=(30.0, 0.5, 5, 100)), nets=4)
    b.hydra(b.n(1_500), variant("rubric", rate=(30.0, 0.5, 5, 100)), nets=3)
    b.hydra(b.n(800), variant("sweep", rate=(40.0, 0.5, 10, 200)), nets=3)
    b.reseller_mixed(b.n(300), b.n(150))
    b.evasive(b.n(1_000))


def _demo(b: Builder) -> None:
    b.legit(0.08)
    b.bulk(1, 0.1)
    b.hydra(b.n(60))
    b.cot_rubric(b.n(20), b.n(20))
    b.reseller_mixed(b.n(40), b.n(4))
    b.evasive(b.n(20))


def _only(k: float, *attacks: Callable[[Builder], None]) -> Callable[[Builder], None]:
    """Benign background at ``k`` plus the given attack steps."""

    def build(b: Builder) -> None:
        b.legit(k)
        for step in attacks:
            step(b)

    return build


SCENARIOS: dict[str, Scenario] = {
    "demo": Scenario("Small mix of everything (~50k events, 3 days).", 3, _demo),
    "hydra": Scenario(
        "Benign background plus two hydra account farms.",
        7,
        _only(0.3, lambda b: b.hydra(b.n(500)), lambda b: b.hydra(b.n(200))),
    ),
    "cot_rubric": Scenario(
        "CoT-coercion and rubric-grading campaigns.",
        7,
        _only(0.3, lambda b: b.cot_rubric(b.n(200), b.n(150))),
    ),
    "datagen": Scenario(
        "A synthetic-data generation farm (self-instruct, APIGen, embedding-data templates).",
        7,
        _only(0.3, lambda b: b.datagen(b.n(150))),
    ),
    "bulk": Scenario(
        "A bulk harvester on two accounts among heavy legitimate users.",
        7,
        _only(0.3, lambda b: b.bulk(2)),
    ),
    "reseller_mixed": Scenario(
        "Attacker end users inside a legitimate reseller.",
        7,
        _only(0.3, lambda b: b.reseller_mixed(b.n(400), b.n(25))),
    ),
    "evasive": Scenario(
        "Evasive farm: paraphrase, rotating IPs, random timing, aged accounts, new model.",
        10,
        _only(0.3, lambda b: b.evasive(b.n(300))),
    ),
    "evasive_heldout": Scenario(
        "HELD OUT: evasive with lower rotation and heavier paraphrase. Never tune on it.",
        10,
        _only(0.3, lambda b: b.evasive(b.n(300), rotation=0.3, paraphrase=0.9)),
    ),
    "sweep": Scenario(
        "Capability sweep on agentic coding, tools and reasoning.",
        7,
        _only(0.3, lambda b: b.sweep(b.n(150))),
    ),
    "benign_only": Scenario(
        "Heavy legitimate users only: must produce zero attacks.", 7, _only(0.5)
    ),
    "mixed": Scenario("Everything at once over two weeks.", 14, _mixed),
    "public_case": Scenario(
        "~25k attack accounts, ~28.8M attack requests over 44 days in benign background.",
        44,
        _public,
    ),
}
