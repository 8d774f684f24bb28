"""`shop up`: run a folder of Knative manifests as local processes, with the local broker.

    shop up [--manifests manifests] [--port 8080] [--state-dir .shop] [--env SERVICE:KEY=VALUE]

`plan` turns each Knative Service into a process (command, args, environment, local profile),
`supervisor` runs and restarts processes, `up` ties it together; docs/running-locally.md is the
user's side. Nothing heavy is imported here: `python -m shop.runner.watchdog` loads this package.
"""
