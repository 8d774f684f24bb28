"""A Service's environment as the kubelet builds it: envFrom, then env, with `$(VAR)` references."""

from __future__ import annotations

from collections.abc import Mapping

from shop.manifests.core import ConfigMap, Secret
from shop.manifests.serving import EnvFrom, EnvVar, Service

ObjectsByName = Mapping[tuple[str, str], ConfigMap | Secret]


def expand_references(text: str, env: Mapping[str, str]) -> str:
    """Replace `$(NAME)` by NAME's value where NAME is defined, and `$$` by `$`.

    Kubernetes applies this to env values (against the variables defined before them), and to
    command and args (against the whole environment); an undefined `$(NAME)` stays as written
    (k8s.io/kubernetes third_party/forked/golang/expansion).
    """
    out: list[str] = []
    cursor = 0
    while cursor < len(text):
        char = text[cursor]
        if char != "$" or cursor + 1 == len(text):
            out.append(char)
            cursor += 1
            continue
        after = text[cursor + 1]
        if after == "$":
            out.append("$")
            cursor += 2
        elif after == "(" and (close := text.find(")", cursor + 2)) >= 0:
            name = text[cursor + 2 : close]
            out.append(env.get(name, f"$({name})"))
            cursor = close + 1
        else:
            out.append("$" + after)
            cursor += 2
    return "".join(out)


def resolve_env(
    service: Service,
    config_maps: Mapping[tuple[str, str], ConfigMap],
    secrets: Mapping[tuple[str, str], Secret],
) -> dict[str, str]:
    """The variables a Service's manifest defines, ConfigMap and Secret references resolved.

    `envFrom` sources come first, in order, then `env` entries override them. A missing
    ConfigMap, Secret or key is an error naming the Service and the variable unless the
    reference is `optional`, in which case the variable (or source) is left out.
    The runner adds PORT, K_SERVICE, K_SINK and the local profile on top.
    """
    env: dict[str, str] = {}
    for source in service.env_from:
        for key, value in _source_values(service, source, config_maps, secrets).items():
            env[source.prefix + key] = value
    for variable in service.env:
        resolved = _variable_value(service, variable, env, config_maps, secrets)
        if resolved is not None:
            env[variable.name] = resolved
    return env


def _source_values(
    service: Service,
    source: EnvFrom,
    config_maps: Mapping[tuple[str, str], ConfigMap],
    secrets: Mapping[tuple[str, str], Secret],
) -> dict[str, str]:
    found = _find(service, source.source, source.name, config_maps, secrets)
    if found is None:
        if source.optional:
            return {}
        raise service.error(
            source.path,
            f"{source.source} {service.namespace}/{source.name} not found "
            "(mark it optional: true if it may be absent)",
        )
    return {key: _text(service, source.path, key, value) for key, value in found.data.items()}


def _variable_value(
    service: Service,
    variable: EnvVar,
    env: Mapping[str, str],
    config_maps: Mapping[tuple[str, str], ConfigMap],
    secrets: Mapping[tuple[str, str], Secret],
) -> str | None:
    if variable.config_map_key is not None:
        kind, ref, field = "ConfigMap", variable.config_map_key, "configMapKeyRef"
    elif variable.secret_key is not None:
        kind, ref, field = "Secret", variable.secret_key, "secretKeyRef"
    else:
        return expand_references(variable.value or "", env)
    path = f"{variable.path}.valueFrom.{field}"
    found = _find(service, kind, ref.name, config_maps, secrets)
    if found is not None and ref.key in found.data:
        return _text(service, path, ref.key, found.data[ref.key])
    if ref.optional:
        return None
    what = f"{kind} {service.namespace}/{ref.name}"
    problem = f"{what} not found" if found is None else f"{what} has no key {ref.key!r}"
    raise service.error(
        path, f"env {variable.name}: {problem} (mark it optional: true if it may be absent)"
    )


def _find(
    service: Service,
    kind: str,
    name: str,
    config_maps: Mapping[tuple[str, str], ConfigMap],
    secrets: Mapping[tuple[str, str], Secret],
) -> ConfigMap | Secret | None:
    objects: ObjectsByName = config_maps if kind == "ConfigMap" else secrets
    return objects.get((service.namespace, name))


def _text(service: Service, path: str, key: str, value: str | bytes) -> str:
    if isinstance(value, str):
        return value
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise service.error(
            path, f"Secret key {key!r} is not UTF-8 text, so it cannot be an environment variable"
        ) from None
