"""python -m simulator: one simulator process (used by `broadcast simulate --processes`)."""

from __future__ import annotations

import argparse
import logging

from simulator.runner import SimulateOptions, run


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m simulator")
    parser.add_argument("--api", required=True)
    parser.add_argument("--broker-host", default="127.0.0.1")
    parser.add_argument("--broker-port", type=int, default=1883)
    parser.add_argument("--clusters", type=int)
    parser.add_argument("--area")
    parser.add_argument("--shard", default="0/1")
    parser.add_argument("--offline", type=float, default=0.0)
    parser.add_argument("--ack-loss", type=float, default=0.0)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--churn", type=float, default=0.0)
    parser.add_argument("--flapping", type=float, default=0.0)
    parser.add_argument("--duplicate-acks", type=float, default=0.0)
    parser.add_argument("--clock-skew", type=float, default=0.0)
    parser.add_argument("--time-compression", type=float, default=1.0)
    parser.add_argument("--heartbeat", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--bind")
    parser.add_argument("--live-report")
    a = parser.parse_args()
    index, count = (int(x) for x in a.shard.split("/"))
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    run(
        SimulateOptions(
            api_url=a.api,
            broker_host=a.broker_host,
            broker_port=a.broker_port,
            clusters=a.clusters,
            area=a.area,
            shard=(index, count),
            offline=a.offline,
            ack_loss=a.ack_loss,
            latency_s=a.latency,
            churn_per_min=a.churn,
            flapping=a.flapping,
            duplicate_acks=a.duplicate_acks,
            clock_skew_s=a.clock_skew,
            time_compression=a.time_compression,
            heartbeat_s=a.heartbeat,
            bind=a.bind,
            live_report=a.live_report,
            seed=a.seed,
        )
    )


if __name__ == "__main__":
    main()
