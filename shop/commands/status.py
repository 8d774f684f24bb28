"""`shop status`: is everything ready, and how many dead letters are there?

In a cluster (`--context`, `--kubeconfig`, or no endpoints.json of a `shop up`): the Broker's
address and readiness, each Knative Service and Trigger with its Ready condition and the reason
when it is not ready, the EventTypes, and the dead letters. Locally: the same for `shop up`; an
endpoints.json left from a run that ended says `no shop up` (shop.inspect.endpoints.local_shop
says how it tells).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from shop.inspect import DEFAULT_STATE_DIR

DEFAULT_NAMESPACE = "shop"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `shop status` to the CLI."""
    parser = subparsers.add_parser(
        "status",
        help="readiness of the broker, services, triggers, EventTypes, and dead-letter counts",
        description=(
            "Ask a cluster (with --context or --kubeconfig, or when `shop up` is not running) "
            "or the running `shop up` whether everything is ready. Exits 1 when something is "
            "not ready, 2 when there is nothing to ask."
        ),
    )
    parser.add_argument("--context", help="kubeconfig context (default: the current one)")
    parser.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, ~/.kube)")
    parser.add_argument("--namespace", "-n", default=DEFAULT_NAMESPACE, help="(default shop)")
    parser.add_argument(
        "--deadletter-url", metavar="URL", help="cluster: ask this deadletter service directly"
    )
    parser.add_argument("--local", action="store_true", help="ask `shop up`, not a cluster")
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR, help="of `shop up`")
    parser.add_argument(
        "--manifests",
        type=Path,
        default=Path("manifests"),
        help="local: the manifests `shop up` runs (for EventTypes)",
    )
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    # The kubernetes client takes a while to import: only `shop status` pays for it.
    from shop.inspect.cluster import ClusterTarget, ClusterUnavailable, cluster_status
    from shop.inspect.endpoints import local_shop
    from shop.inspect.local import LocalTarget, local_status
    from shop.inspect.status import render

    in_cluster = bool(args.context or args.kubeconfig or args.deadletter_url)
    running = (args.state_dir / "run" / "endpoints.json").exists()
    try:
        if args.local or (running and not in_cluster):
            shop = local_shop(args.state_dir, option="--context NAME for a cluster")
            report = local_status(LocalTarget(shop, args.manifests))
        else:
            report = cluster_status(
                ClusterTarget(args.namespace, args.context, args.kubeconfig, args.deadletter_url)
            )
    except ClusterUnavailable as error:
        print(f"shop status: {error}", file=sys.stderr)
        return 2
    sys.stdout.write(render(report))
    return 0 if report.all_ready else 1
