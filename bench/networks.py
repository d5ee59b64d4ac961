"""Profiles of the simulated network between the clusters and the broker, as
`broadcast simulate` options (`broadcast loadtest --network NAME`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Network:
    args: tuple[str, ...]
    lossy: bool  # answers get lost or links drop: a bare-MQTT floor would never complete
    online_share: float  # of the fleet, online at once before a run starts

    def describe(self) -> str:
        return " ".join(self.args) or "no added delay or loss"


NETWORKS: dict[str, Network] = {
    "lan": Network((), lossy=False, online_share=1.0),
    # A good 4G link: each answer up to 300 ms late (so also out of order).
    "4g": Network(("--latency", "0.3"), lossy=False, online_share=1.0),
    # A weak one at the edge of a commune: answers up to 1.5 s late, 5 % of them lost,
    # a tenth of the links dropping every few seconds.
    "weak-4g": Network(
        ("--latency", "1.5", "--ack-loss", "0.05", "--flapping", "0.1"),
        lossy=True,
        online_share=0.9,
    ),
}
