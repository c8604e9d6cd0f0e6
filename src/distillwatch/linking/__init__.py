"""Campaign linking: account graph, communities, campaign-level risk (see :mod:`.linker`)."""

from distillwatch.linking.aggregate import aggregate_state
from distillwatch.linking.graph import GraphParams
from distillwatch.linking.linker import CampaignLinker, LinkParams

__all__ = ["CampaignLinker", "GraphParams", "LinkParams", "aggregate_state"]
