"""The local profile: a YAML file of local replacements, placeholders, and what is inherited."""

from __future__ import annotations

from pathlib import Path

import pytest

from shop.runner.plan import LocalContext, service_environment
from shop.runner.profile import (
    DEFAULT_PROFILE,
    LocalProfile,
    ProfileError,
    fill,
    load_profile,
)
from tests.unit.runner.conftest import LoadTopology, addresses_for

SERVICE_WITH_CLUSTER_VALUES = """
    apiVersion: serving.knative.dev/v1
    kind: Service
    metadata: {name: notification, namespace: shop}
    spec:
      template:
        spec:
          containers:
            - command: [gunicorn]
              env:
                - {name: DATABASE_URL, value: "postgresql://shop:pw@postgresql.shop.svc:5432/n"}
                - {name: SMTP_HOST, value: mailpit.shop.svc.cluster.local}
                - {name: SMTP_PORT, value: "1025"}
                - {name: SMTP_TLS, value: starttls}
                - {name: MAIL_FROM, value: shop@example.com}
    ---
    apiVersion: serving.knative.dev/v1
    kind: Service
    metadata: {name: viewer, namespace: shop}
    spec:
      template:
        spec:
          containers:
            - command: [gunicorn]
              env:
                - {name: LOG_LEVEL, value: INFO}
"""


def _env(
    topology_of: LoadTopology,
    context: LocalContext,
    profile: LocalProfile,
    name: str,
    environ: dict[str, str] | None = None,
) -> dict[str, str]:
    topology = topology_of(SERVICE_WITH_CLUSTER_VALUES)
    service = topology.service("shop", name)
    assert service is not None
    return service_environment(
        service,
        topology,
        port=41000,
        addresses=addresses_for(topology),
        profile=profile,
        context=context,
        environ=environ or {"PATH": "/usr/bin"},
        venv_bin=Path("/venv/bin"),
    )


def test_the_shipped_profile_replaces_cluster_database_and_mail_settings_with_local_ones(
    topology_of: LoadTopology, context: LocalContext
) -> None:
    env = _env(topology_of, context, load_profile(DEFAULT_PROFILE), "notification")

    assert env["DATABASE_URL"] == f"sqlite:///{context.state_dir}/data/notification.db"
    assert env["SMTP_HOST"] == "127.0.0.1"
    assert env["SMTP_PORT"] == "2525"
    assert env["SMTP_TLS"] == "none"
    assert env["MAIL_FROM"] == "shop@example.com"  # not in the profile: the manifest's value


def test_the_profile_applies_only_to_variables_the_service_defines(
    topology_of: LoadTopology, context: LocalContext
) -> None:
    env = _env(topology_of, context, load_profile(DEFAULT_PROFILE), "viewer")

    for name in ("DATABASE_URL", "SMTP_HOST", "SMTP_PORT", "SMTP_TLS", "SMTP_USERNAME"):
        assert name not in env
    assert env["LOG_LEVEL"] == "INFO"


def test_defaults_go_to_every_process_unless_its_manifest_sets_them(
    topology_of: LoadTopology, context: LocalContext
) -> None:
    profile = LocalProfile(defaults={"LOG_LEVEL": "DEBUG", "EXTRA": "{service}"})

    viewer = _env(topology_of, context, profile, "viewer")
    notification = _env(topology_of, context, profile, "notification")

    assert viewer["LOG_LEVEL"] == "INFO"  # the manifest's
    assert notification["LOG_LEVEL"] == "DEBUG"
    assert notification["EXTRA"] == "notification"


def test_only_inherited_variables_of_the_shell_reach_a_process(
    topology_of: LoadTopology, context: LocalContext
) -> None:
    profile = LocalProfile(inherit=("HOME", "LC_*"))
    environ = {"HOME": "/home/dev", "LC_ALL": "C", "AWS_SECRET_ACCESS_KEY": "x", "PATH": "/bin"}

    env = _env(topology_of, context, profile, "viewer", environ)

    assert env["HOME"] == "/home/dev"
    assert env["LC_ALL"] == "C"
    assert "AWS_SECRET_ACCESS_KEY" not in env


def test_a_profile_file_given_with_profile_replaces_the_shipped_one(
    tmp_path: Path, topology_of: LoadTopology, context: LocalContext
) -> None:
    custom = tmp_path / "profile.yaml"
    custom.write_text("replace:\n  DATABASE_URL: 'postgresql://localhost/{namespace}_{service}'\n")

    env = _env(topology_of, context, load_profile(custom), "notification")

    assert env["DATABASE_URL"] == "postgresql://localhost/shop_notification"
    assert env["SMTP_HOST"] == "mailpit.shop.svc.cluster.local"  # this profile leaves it


def test_every_placeholder_is_filled_and_doubled_braces_are_literal() -> None:
    values = {"service": "order", "port": "41000", "smtp_url": "smtp://127.0.0.1:2525"}

    assert fill("{service}:{port} {smtp_url} {{literal}}", values) == (
        "order:41000 smtp://127.0.0.1:2525 {literal}"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "replace:\n  DATABASE_URL: 'sqlite:///{statedir}/x.db'\n",
            "unknown placeholder {statedir}",
        ),
        ("replace:\n  SMTP_PORT: 1025\n", "replace.SMTP_PORT: expected a string, not 1025"),
        ("replace:\n  X: 'a { b'\n", "replace.X: a lone '{'"),
        ("overrides:\n  X: y\n", "unknown section 'overrides'"),
        ("inherit: HOME\n", "inherit: expected a list"),
        ("- a\n", "expected a mapping"),
    ],
)
def test_a_bad_profile_is_refused_naming_the_file_and_key(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "bad-profile.yaml"
    path.write_text(text)

    with pytest.raises(ProfileError) as raised:
        load_profile(path)

    assert str(raised.value).startswith(str(path))
    assert message in str(raised.value)


def test_the_shipped_profile_is_valid_and_has_the_documented_replacements() -> None:
    profile = load_profile(DEFAULT_PROFILE)

    assert set(profile.replace) >= {
        "DATABASE_URL",
        "SMTP_HOST",
        "SMTP_PORT",
        "SMTP_TLS",
        "SMTP_USERNAME",
        "SMTP_PASSWORD",
    }
    assert "PATH" in profile.inherit
