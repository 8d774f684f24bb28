# syntax=docker/dockerfile:1
# One image per service, picked by the target:
#   docker build --target order -t shop-order .
# Targets: customer, order, inventory, payment, notification, deadletter, viewer. Each runs
#   gunicorn -c python:kit.gunicorn_conf "services.<name>.app:create_app()"
# as user 10001 and works with a read-only root file system (gunicorn's heartbeat goes to
# /dev/shm). The chart sets the same command and args explicitly.
#
# Build arguments:
#   BASE_IMAGE  a Debian-based image with Python 3.11+ (and venv); the default is pinned by digest.
#   WHEELS      where the Python dependencies come from: "pypi" (downloaded and built in the
#               builder stage) or "local" (wheels made beforehand on the host with
#               `pip wheel -w build/wheels -r <requirements>`, for builders without PyPI access;
#               see tests/image/test_image.py).
ARG BASE_IMAGE=python:3.12-slim@sha256:78387bc3881b8273120a12ebe6c1ab22b018ccc2c9adf565ae1ac9b536e184ea
ARG WHEELS=pypi

FROM ${BASE_IMAGE} AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The project's dependencies as a requirements file. Only pyproject.toml is copied, so this
# stage and the wheels stay cached until the dependencies change.
FROM base AS requirements
WORKDIR /build
COPY pyproject.toml ./
RUN python3 -c 'import tomllib; deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]; open("requirements.txt", "w").write("\n".join(deps) + "\n")'

FROM requirements AS wheels-pypi
RUN python3 -m pip wheel --wheel-dir /build/wheels -r requirements.txt

FROM requirements AS wheels-local
COPY build/wheels/ /build/wheels/

FROM wheels-${WHEELS} AS wheels

# A virtual environment with the dependencies (from wheels only: no compiler is needed), then the
# source of the libraries (wire, kit, catalog) and the services, compiled.
FROM base AS builder
COPY --from=wheels /build /build
RUN python3 -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-index --find-links /build/wheels -r /build/requirements.txt \
 && /opt/venv/bin/pip uninstall --yes pip
COPY wire /app/wire
COPY kit /app/kit
COPY catalog /app/catalog
COPY services /app/services
RUN python3 -m compileall -q /app

FROM ${BASE_IMAGE} AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PORT=8080
COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /app /app
WORKDIR /app
USER 10001:10001
EXPOSE 8080
# Exec form: gunicorn is PID 1 and gets SIGTERM.
ENTRYPOINT ["gunicorn", "-c", "python:kit.gunicorn_conf"]

FROM runtime AS customer
LABEL org.opencontainers.image.title="shop-customer"
CMD ["services.customer.app:create_app()"]

FROM runtime AS order
LABEL org.opencontainers.image.title="shop-order"
CMD ["services.order.app:create_app()"]

FROM runtime AS inventory
LABEL org.opencontainers.image.title="shop-inventory"
CMD ["services.inventory.app:create_app()"]

FROM runtime AS payment
LABEL org.opencontainers.image.title="shop-payment"
CMD ["services.payment.app:create_app()"]

FROM runtime AS notification
LABEL org.opencontainers.image.title="shop-notification"
CMD ["services.notification.app:create_app()"]

FROM runtime AS deadletter
LABEL org.opencontainers.image.title="shop-deadletter"
CMD ["services.deadletter.app:create_app()"]

FROM runtime AS viewer
LABEL org.opencontainers.image.title="shop-viewer"
CMD ["services.viewer.app:create_app()"]
