# syntax=docker/dockerfile:1
# The knative-rollout controller image: `docker build -t knative-rollout:0.1.0 .` (see docs/install.md).
#
# Two stages: the first installs the package and its dependencies into a virtualenv, the second copies only
# that virtualenv onto a clean slim Python. tests/chart/test_image.py keeps this file consistent with the
# package (Python version, console script) and with the chart (user id, entrypoint flags).
#
# The base image is named by tag here. To pin it by digest (what docs/install.md recommends for production),
# resolve the tag once where a registry is reachable and append the digest to both FROM lines:
#   docker buildx imagetools inspect python:3.11-slim-bookworm --format '{{json .Manifest.Digest}}'
#   FROM python:${PYTHON_VERSION}-slim-bookworm@sha256:<digest>
# and refresh it the same way to take the base image's security updates.

ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
WORKDIR /src
# dependencies first, so that a code change does not re-download them: exactly the locked versions, each
# file checked against its sha256 (requirements/runtime.lock, made by scripts/lock)
COPY requirements/runtime.lock ./requirements/
RUN /opt/venv/bin/pip install --require-hashes -r requirements/runtime.lock
COPY pyproject.toml README.md ./
COPY rollout ./rollout
RUN /opt/venv/bin/pip install --no-deps . \
    && /opt/venv/bin/rollout --version

FROM python:${PYTHON_VERSION}-slim-bookworm
# A fixed numeric user, the same as the chart's podSecurityContext.runAsUser, so that runAsNonRoot can be
# verified by the kubelet.
RUN groupadd --system --gid 65532 rollout \
    && useradd --system --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin rollout
COPY --from=build /opt/venv /opt/venv
# Bytecode was compiled at install time; the root filesystem is read-only in the cluster.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["rollout", "controller"]
