"""The local durable broker of `shop up`: Knative's MT broker semantics on asyncio and SQLite (WAL).

    shop broker --manifests manifests --port 8080 --state-dir .shop [--endpoints FILE]

See docs/broker.md for the HTTP endpoints, the journal and the durability guarantees.
"""
