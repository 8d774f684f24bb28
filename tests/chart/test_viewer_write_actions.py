"""The viewer's write actions in the chart: off unless asked, and a token from a Secret you make."""

from __future__ import annotations

from tests.chart.rendering import container, env_of, helm_template, knative_services, render

TOKEN_DIR = "/var/run/secrets/shop/viewer-write-token"


def viewer_writes(env: dict[str, object]) -> dict[str, object]:
    return {key: value for key, value in env.items() if key.startswith("VIEWER_WRITE")}


def test_the_chart_turns_the_viewers_write_actions_off_and_no_other_service_gets_them(
    helm: str,
) -> None:
    services = knative_services(render(helm))
    assert viewer_writes(env_of(services.pop("viewer"))) == {"VIEWER_WRITE_ACTIONS": "off"}
    for name, ksvc in services.items():
        assert viewer_writes(env_of(ksvc)) == {}, name


def test_writes_on_is_passed_as_it_is(helm4: str) -> None:
    viewer = knative_services(render(helm4, set_values=["viewer.writeActions=on"]))["viewer"]
    assert viewer_writes(env_of(viewer)) == {"VIEWER_WRITE_ACTIONS": "on"}
    assert "volumes" not in viewer["spec"]["template"]["spec"]


def test_token_mode_reads_the_token_from_the_secret_mounted_for_it(helm: str) -> None:
    assignments = [
        "viewer.writeActions=token",
        "viewer.writeToken.existingSecret=viewer-write-token",
        "viewer.writeToken.key=secret-token",
    ]
    viewer = knative_services(render(helm, set_values=assignments))["viewer"]
    assert viewer_writes(env_of(viewer)) == {
        "VIEWER_WRITE_ACTIONS": "token",
        "VIEWER_WRITE_TOKEN_FILE": f"{TOKEN_DIR}/token",
    }
    assert container(viewer)["volumeMounts"] == [
        {"name": "viewer-write-token", "mountPath": TOKEN_DIR, "readOnly": True}
    ]
    assert viewer["spec"]["template"]["spec"]["volumes"] == [
        {
            "name": "viewer-write-token",
            "secret": {
                "secretName": "viewer-write-token",
                "items": [{"key": "secret-token", "path": "token"}],
            },
        }
    ]


def test_token_mode_without_a_secret_is_refused_with_what_to_set(helm4: str) -> None:
    result = helm_template(helm4, set_values=["viewer.writeActions=token"])
    assert result.returncode != 0
    assert "viewer.writeToken.existingSecret" in result.stderr
