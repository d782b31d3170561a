# syntax=docker/dockerfile:1
# The gridtwin platform image: every service (`gridtwin gateway`, `gridtwin ingest`, …, see
# k8s/base/services) and the Ray nodes of the twin runtime (k8s/base/infra/raycluster.yaml), whose
# actors run the project's code. Built in two stages: the first installs the project and its
# dependencies into a virtual environment, the second copies only that onto a slim Python.
#   docker build -t gridtwin:dev .

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
COPY gridtwin ./gridtwin
COPY services ./services
COPY actors ./actors
COPY simulator ./simulator
COPY edge ./edge
# ray[default] adds what a Ray *node* runs besides the core (dashboard, agents, health endpoints);
# resolved together with the project, so it is the same Ray version.
RUN pip install --upgrade pip \
 && pip install . "ray[default]" \
 && gridtwin --help >/dev/null

FROM ${PYTHON_IMAGE} AS runtime
# wget: KubeRay's default probes of Ray pods call it.
RUN apt-get update \
 && apt-get install -y --no-install-recommends wget \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 gridtwin \
 && useradd --system --uid 10001 --gid gridtwin --home-dir /home/gridtwin --create-home --shell /usr/sbin/nologin gridtwin
COPY --from=build /opt/venv /opt/venv
# On PATH for login shells too: KubeRay starts Ray nodes with `bash -lc`, which resets PATH.
RUN ln -s /opt/venv/bin/gridtwin /opt/venv/bin/ray /usr/local/bin/
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    GRIDTWIN_VAR_DIR=/tmp/gridtwin \
    MPLCONFIGDIR=/tmp/matplotlib
USER 10001:10001
WORKDIR /home/gridtwin
# gateway websocket, gRPC APIs, metrics
EXPOSE 8765 50051 50052 50053 50054 50055 50056 9101-9109
ENTRYPOINT ["gridtwin"]
CMD ["--help"]
