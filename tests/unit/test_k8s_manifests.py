"""The Kubernetes manifests (k8s/) and the platform image (Dockerfile), checked without a cluster.

Every YAML file parses; the base and both overlays render with a real kustomize (`kustomize build`
or `kubectl kustomize`, whichever is on this machine; scripts/bootstrap.sh provides one); every
core object of the renders validates against the Kubernetes schema (kubernetes-validate, strict:
unknown fields fail); the custom resources (KEDA, Strimzi, CloudNativePG, KubeRay) carry the
fields their operators require; and the manifests agree with the code: commands, ports, settings
names, the lag metric, the topics, and the autoscalers' bounds against the partition count.
"""

from __future__ import annotations

import fnmatch
import functools
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from dockerfile_parse import DockerfileParser

from gridtwin.settings import ROOT, Settings

K8S = ROOT / "k8s"
RENDERS = ("base", "overlays/dev", "overlays/prod")
OVERLAYS = ("overlays/dev", "overlays/prod")
# The oldest Kubernetes the manifests support (gRPC probes, endPort, autoscaling/v2 are GA there)
# and the newest schema kubernetes-validate ships.
K8S_VERSIONS = ("1.29.0", kubernetes_validate.utils.latest_version())
CORE_GROUPS = {"v1", "apps", "batch", "policy", "autoscaling", "networking.k8s.io", "rbac.authorization.k8s.io"}
# Deployment name → `gridtwin` arguments and the settings group with its port (None: no server port).
SERVICES = {
    "gateway": (["gateway"], "gateway"),
    "ingest": (["ingest"], "ingest"),
    "api": (["api"], "api"),
    "assets": (["assets", "serve"], "assets"),
    "twins": (["twins", "serve"], "twins"),
    "analytics": (["analytics", "serve"], "analytics"),
    "weather": (["weather", "serve"], "weather"),
    "control": (["control", "serve"], "control"),
    "vpp": (["vpp", "serve"], "vpp"),
    "http": (["http", "serve"], "http"),
}
LAG_METRIC = "gridtwin_ingest_consumer_lag"

Doc = dict[str, Any]


# ------------------------------------------------------------------ rendering


def kustomize_command() -> list[str]:
    """A real kustomize: the standalone binary, or the one built into kubectl."""
    if exe := shutil.which("kustomize"):
        return [exe, "build"]
    for kubectl in (shutil.which("kubectl"), str(ROOT / ".venv" / "bin" / "kubectl")):
        if kubectl and Path(kubectl).is_file():
            return [kubectl, "kustomize"]
    pytest.fail("neither kustomize nor kubectl found: run scripts/bootstrap.sh")


@functools.cache
def render(target: str) -> tuple[Doc, ...]:
    out = subprocess.run([*kustomize_command(), str(K8S / target)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, f"kustomize {target} failed:\n{out.stderr}"
    return tuple(d for d in yaml.safe_load_all(out.stdout) if d)


def by_kind(docs: tuple[Doc, ...], kind: str) -> list[Doc]:
    return [d for d in docs if d["kind"] == kind]


def one(docs: tuple[Doc, ...], kind: str, name: str) -> Doc:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def settings_map(docs: tuple[Doc, ...]) -> dict[str, str]:
    [config] = [d for d in by_kind(docs, "ConfigMap") if d["metadata"]["name"].startswith("gridtwin-settings")]
    return dict(config["data"])


def container(deployment: Doc) -> Doc:
    [c] = deployment["spec"]["template"]["spec"]["containers"]
    return c  # type: ignore[no-any-return]


def selects(selector: Doc, labels: dict[str, str]) -> bool:
    """Whether a label selector (matchLabels / matchExpressions) matches `labels`."""
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for e in selector.get("matchExpressions", []):
        value = labels.get(e["key"])
        if e["operator"] == "In" and value not in e["values"]:
            return False
        if e["operator"] == "NotIn" and value in e["values"]:
            return False
        if e["operator"] == "Exists" and value is None:
            return False
        if e["operator"] == "DoesNotExist" and value is not None:
            return False
    return True


def pod_labels(deployment: Doc) -> dict[str, str]:
    return dict(deployment["spec"]["template"]["metadata"]["labels"])


# ------------------------------------------------------------------ every file parses, every render works


def yaml_files() -> list[Path]:
    return sorted(K8S.rglob("*.yaml"))


@pytest.mark.parametrize("path", yaml_files(), ids=lambda p: str(p.relative_to(K8S)))
def test_every_manifest_parses(path: Path) -> None:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    assert docs, f"{path} is empty"
    for doc in docs:
        assert isinstance(doc, dict)
        if path.name.endswith("-values.yaml"):      # Helm values for a chart, not an object
            continue
        assert doc.get("apiVersion") and doc.get("kind"), f"{path}: object without apiVersion/kind"
        if doc["kind"] not in ("Kustomization", "Component"):
            assert doc.get("metadata", {}).get("name"), f"{path}: {doc['kind']} without a name"


def test_every_file_is_used() -> None:
    """No manifest lies around unrendered: each is listed by a kustomization or component."""
    listed: set[Path] = set()
    for k in [*K8S.rglob("kustomization.yaml")]:
        spec = yaml.safe_load(k.read_text())
        for entry in spec.get("resources", []):
            listed.add((k.parent / entry).resolve())
        for entry in spec.get("configMapGenerator", []) + spec.get("secretGenerator", []):
            listed.update((k.parent / e).resolve() for e in entry.get("envs", []) + entry.get("files", []))
    for path in yaml_files():
        if path.name == "kustomization.yaml" or path.name.endswith("-values.yaml"):
            continue
        assert path.resolve() in listed, f"{path.relative_to(K8S)} is in no kustomization"


@pytest.mark.parametrize("target", RENDERS)
def test_renders(target: str) -> None:
    docs = render(target)
    kinds = {d["kind"] for d in docs}
    assert {"Deployment", "Service", "PodDisruptionBudget", "NetworkPolicy", "ConfigMap", "Job", "Kafka",
            "KafkaNodePool", "KafkaTopic", "Cluster", "RayCluster"} <= kinds
    assert {d["metadata"]["name"] for d in by_kind(docs, "Deployment")} == set(SERVICES)
    names = [(d["kind"], d["metadata"]["name"]) for d in docs]
    assert len(names) == len(set(names)), "duplicate objects"
    if target in OVERLAYS:
        namespaces = {d["metadata"].get("namespace") for d in docs if d["kind"] != "Namespace"}
        assert len(namespaces) == 1 and None not in namespaces
        assert by_kind(docs, "ScaledObject") or by_kind(docs, "HorizontalPodAutoscaler")


@pytest.mark.parametrize("target", RENDERS)
@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_core_objects_validate_against_the_kubernetes_schema(target: str, version: str) -> None:
    core = [d for d in render(target) if d["apiVersion"].rsplit("/", 1)[0] in CORE_GROUPS]
    assert len(core) > 30
    for doc in core:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{doc['kind']}/{doc['metadata']['name']} ({version}): {'.'.join(map(str, exc.path))}: "
                        f"{exc.message}")


# ------------------------------------------------------------------ the services against the code


@pytest.mark.parametrize("target", RENDERS)
def test_services_run_real_commands_on_the_ports_the_settings_define(target: str) -> None:
    import typer.main

    from gridtwin.app.cli import app

    cli = typer.main.get_command(app)
    defaults = Settings()
    docs = render(target)
    images = set()
    for name, (args, group) in SERVICES.items():
        deployment = one(docs, "Deployment", name)
        c = container(deployment)
        images.add(c["image"])
        assert c["args"] == args
        command = cli
        for word in args:                         # the command exists in `gridtwin`
            command = command.commands[word]      # type: ignore[attr-defined]
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        group_settings = getattr(defaults, group)
        assert ports["metrics"] == group_settings.metrics_port
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(c["resources"][kind]), f"{name}: {kind}"
        assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
        if "grpc" in ports:
            assert ports["grpc"] == group_settings.port
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                assert c[probe]["grpc"]["port"] == group_settings.port, f"{name}: {probe}"
            service = one(docs, "Service", name)
            assert service["spec"]["ports"][0]["port"] == group_settings.port
        elif name == "gateway":
            assert ports["ws"] == defaults.gateway.port
            assert c["readinessProbe"]["tcpSocket"]["port"] == "ws"
            assert c["livenessProbe"]["httpGet"]["port"] == "metrics"
            env = {e["name"]: e for e in c["env"]}
            assert env["GRIDTWIN_GATEWAY__GATEWAY_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
        else:
            assert c["livenessProbe"]["httpGet"]["port"] == "metrics"
        # a PodDisruptionBudget covers every service
        assert any(selects(p["spec"]["selector"], pod_labels(deployment)) for p in by_kind(docs, "PodDisruptionBudget"))
    assert len(images) == 1                       # one platform image


@pytest.mark.parametrize("target", RENDERS)
def test_every_setting_in_the_config_map_exists(target: str) -> None:
    config = settings_map(render(target))
    for key in config:
        if not key.startswith("GRIDTWIN_"):
            assert key in {"RAY_AUTH_MODE", "MPLCONFIGDIR"}, key
            continue
        model: Any = Settings
        for part in key.removeprefix("GRIDTWIN_").lower().split("__"):
            assert part in model.model_fields, f"{key}: no setting {part!r}"
            model = model.model_fields[part].annotation
    assert "GRIDTWIN_KAFKA__TELEMETRY_PARTITIONS" not in config     # declared once, by the KafkaTopic


@pytest.mark.parametrize("target", RENDERS)
def test_every_service_reads_its_settings_and_the_database_secret(target: str) -> None:
    docs = render(target)
    config_name = next(d["metadata"]["name"] for d in by_kind(docs, "ConfigMap")
                       if d["metadata"]["name"].startswith("gridtwin-settings"))
    cluster = by_kind(docs, "Cluster")[0]["metadata"]["name"]
    for d in [*by_kind(docs, "Deployment"), *by_kind(docs, "Job")]:
        c = d["spec"]["template"]["spec"]["containers"][0]
        assert {"configMapRef": {"name": config_name}} in c["envFrom"]
        env = {e["name"]: e for e in c["env"]}
        assert env["GRIDTWIN_POSTGRES__URL"]["valueFrom"]["secretKeyRef"] == {"name": f"{cluster}-app", "key": "uri"}
    secrets = [d["metadata"]["name"] for d in by_kind(docs, "Secret")]
    for d in by_kind(docs, "Deployment"):
        refs = [e["secretRef"] for e in container(d)["envFrom"] if "secretRef" in e]
        assert refs and all(r["name"] in secrets or r.get("optional") for r in refs)


# ------------------------------------------------------------------ autoscaling on lag


def telemetry_partitions(docs: tuple[Doc, ...]) -> int:
    topic = settings_map(docs)["GRIDTWIN_KAFKA__TELEMETRY_TOPIC"]
    [kafka_topic] = [t for t in by_kind(docs, "KafkaTopic") if t["spec"].get("topicName") == topic]
    return int(kafka_topic["spec"]["partitions"])


@pytest.mark.parametrize("target", RENDERS)
def test_ingest_never_scales_beyond_the_telemetry_partitions(target: str) -> None:
    docs = render(target)
    partitions = telemetry_partitions(docs)
    bounds = [int(one(docs, "Deployment", "ingest")["spec"].get("replicas", 1))]
    ingest_scalers = [d for d in by_kind(docs, "ScaledObject") + by_kind(docs, "HorizontalPodAutoscaler")
                      if d["spec"]["scaleTargetRef"]["name"] == "ingest"]   # (the HTTP API scales on CPU)
    for scaled in (d for d in ingest_scalers if d["kind"] == "ScaledObject"):
        bounds.append(int(scaled["spec"]["maxReplicaCount"]))
        assert 1 <= int(scaled["spec"]["minReplicaCount"]) <= int(scaled["spec"]["maxReplicaCount"])
    for hpa in (d for d in ingest_scalers if d["kind"] == "HorizontalPodAutoscaler"):
        bounds.append(int(hpa["spec"]["maxReplicas"]))
        assert 1 <= int(hpa["spec"]["minReplicas"]) <= int(hpa["spec"]["maxReplicas"])
    assert max(bounds) <= partitions, f"{target}: up to {max(bounds)} ingest members for {partitions} partitions"
    if target in OVERLAYS:
        autoscalers = ingest_scalers
        assert len(autoscalers) == 1          # one owner of the replica count
        assert "replicas" not in one(docs, "Deployment", "ingest")["spec"]


@pytest.mark.parametrize("target", OVERLAYS)
def test_the_keda_scaled_object_watches_the_ingest_group(target: str) -> None:
    docs = render(target)
    config = settings_map(docs)
    for scaled in by_kind(docs, "ScaledObject"):
        assert scaled["apiVersion"] == "keda.sh/v1alpha1"
        assert scaled["spec"]["scaleTargetRef"]["name"] == "ingest"
        [trigger] = scaled["spec"]["triggers"]
        assert trigger["type"] == "kafka"
        meta = trigger["metadata"]
        assert meta["bootstrapServers"] == config["GRIDTWIN_KAFKA__BOOTSTRAP_SERVERS"]
        assert meta["consumerGroup"] == config["GRIDTWIN_INGEST__GROUP_ID"]
        assert meta["topic"] == config["GRIDTWIN_KAFKA__TELEMETRY_TOPIC"]
        assert int(meta["lagThreshold"]) > 0
        assert meta["allowIdleConsumers"] == "false"      # KEDA itself caps at the partition count


def test_the_hpa_alternative_reads_the_metric_ingest_exports() -> None:
    from services.telemetry.ingest import LAG

    [exported] = list(LAG.describe())
    assert exported.name == LAG_METRIC
    assert set(LAG._labelnames) == {"topic", "partition"}
    component = K8S / "components" / "autoscale-hpa"
    [hpa] = [d for d in yaml.safe_load_all((component / "hpa.yaml").read_text()) if d]
    metric = hpa["spec"]["metrics"][0]["external"]["metric"]
    assert metric["name"] == LAG_METRIC
    assert metric["selector"]["matchLabels"] == {"topic": Settings().kafka.telemetry_topic}
    values = yaml.safe_load((component / "prometheus-adapter-values.yaml").read_text())
    [rule] = values["rules"]["external"]
    assert LAG_METRIC in rule["seriesQuery"]
    assert rule["name"]["as"] == LAG_METRIC
    assert rule["resources"]["overrides"]["namespace"] == {"resource": "namespace"}
    # the group's lag: every partition once, summed per topic
    assert "sum by (topic)" in rule["metricsQuery"] and "max by (namespace, topic, partition)" in rule["metricsQuery"]
    assert "<<.Series>>{<<.LabelMatchers>>}" in rule["metricsQuery"]


# ------------------------------------------------------------------ the operators' resources


@pytest.mark.parametrize("target", RENDERS)
def test_strimzi_kafka_in_kraft_mode_with_the_projects_topics(target: str) -> None:
    docs = render(target)
    config = settings_map(docs)
    [kafka] = by_kind(docs, "Kafka")
    name = kafka["metadata"]["name"]
    assert kafka["apiVersion"] == "kafka.strimzi.io/v1beta2"
    assert kafka["metadata"]["annotations"] == {"strimzi.io/node-pools": "enabled", "strimzi.io/kraft": "enabled"}
    assert "zookeeper" not in kafka["spec"]
    listeners = kafka["spec"]["kafka"]["listeners"]
    for listener in listeners:
        assert {"name", "port", "type", "tls"} <= set(listener)
    plain = [f"{name}-kafka-bootstrap:{x['port']}" for x in listeners if x["type"] == "internal" and not x["tls"]]
    assert config["GRIDTWIN_KAFKA__BOOTSTRAP_SERVERS"] in plain
    assert "topicOperator" in kafka["spec"]["entityOperator"]
    pools = by_kind(docs, "KafkaNodePool")
    roles: dict[str, int] = {}
    for pool in pools:
        assert pool["metadata"]["labels"]["strimzi.io/cluster"] == name
        assert set(pool["spec"]["roles"]) <= {"controller", "broker"} and pool["spec"]["roles"]
        assert pool["spec"]["replicas"] >= 1 and pool["spec"]["storage"]["type"]
        for role in pool["spec"]["roles"]:
            roles[role] = roles.get(role, 0) + pool["spec"]["replicas"]
    assert roles.get("controller", 0) % 2 == 1            # a quorum: an odd number of controllers
    brokers = roles["broker"]
    replication = int(kafka["spec"]["kafka"]["config"]["default.replication.factor"])
    assert replication <= brokers
    topics = {t["spec"]["topicName"]: t for t in by_kind(docs, "KafkaTopic")}
    wanted = {config[f"GRIDTWIN_KAFKA__{k}_TOPIC"] for k in ("TELEMETRY", "DEVICE_EVENTS", "ALERTS", "COMMANDS")}
    assert wanted <= set(topics)
    for topic in topics.values():
        assert topic["metadata"]["labels"]["strimzi.io/cluster"] == name
        assert topic["spec"]["partitions"] >= 1
        assert 1 <= topic["spec"]["replicas"] <= brokers
        assert int(topic["spec"]["config"]["min.insync.replicas"]) <= topic["spec"]["replicas"]


@pytest.mark.parametrize("target", RENDERS)
def test_cloudnativepg_cluster_with_postgis_and_ltree(target: str) -> None:
    docs = render(target)
    [cluster] = by_kind(docs, "Cluster")
    assert cluster["apiVersion"] == "postgresql.cnpg.io/v1"
    spec = cluster["spec"]
    assert spec["instances"] >= 1 and spec["storage"]["size"]
    assert "postgis" in spec["imageName"]
    initdb = spec["bootstrap"]["initdb"]
    assert initdb["database"] == "gridtwin" and initdb["owner"] == "gridtwin"
    sql = " ".join(initdb["postInitApplicationSQL"]).lower()
    assert "create extension if not exists postgis" in sql and "create extension if not exists ltree" in sql


@pytest.mark.parametrize("target", RENDERS)
def test_kuberay_cluster_for_the_twin_runtime(target: str) -> None:
    docs = render(target)
    config = settings_map(docs)
    [ray] = by_kind(docs, "RayCluster")
    assert ray["apiVersion"] == "ray.io/v1"
    spec = ray["spec"]
    head = spec["headGroupSpec"]
    assert isinstance(head["rayStartParams"], dict) and head["template"]["spec"]["containers"]
    assert spec["workerGroupSpecs"]
    for group in spec["workerGroupSpecs"]:
        assert group["groupName"] and isinstance(group["rayStartParams"], dict)
        assert group["template"]["spec"]["containers"]
        assert group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]
    # the twins and ingest processes join it as Ray clients through the head Service KubeRay creates
    assert config["GRIDTWIN_TWINS__RAY_ADDRESS"] == f"ray://{ray['metadata']['name']}-head-svc:10001"
    assert config["GRIDTWIN_TWINS__MANAGE_LOCAL_RAY"] == "false"
    image = container(one(docs, "Deployment", "twins"))["image"]
    pods = [head["template"], *(g["template"] for g in spec["workerGroupSpecs"])]
    for pod in pods:
        c = pod["spec"]["containers"][0]
        assert c["image"] == image                              # the actors run the project's code
        assert {"name": "RAY_AUTH_MODE", "value": config["RAY_AUTH_MODE"]} in c["env"]   # as the clients


# ------------------------------------------------------------------ network policies


@pytest.mark.parametrize("target", RENDERS)
def test_devices_reach_only_the_gateway(target: str) -> None:
    docs = render(target)
    policies = by_kind(docs, "NetworkPolicy")
    deny = [p for p in policies if p["spec"]["podSelector"] == {} and p["spec"]["policyTypes"] == ["Ingress"]
            and not p["spec"].get("ingress")]
    assert deny, "no default deny of ingress"
    gateway = pod_labels(one(docs, "Deployment", "gateway"))
    others = [pod_labels(d) for d in by_kind(docs, "Deployment") if d["metadata"]["name"] != "gateway"]
    for policy in policies:
        for rule in policy["spec"].get("ingress", []):
            if any("ipBlock" in peer for peer in rule.get("from", [])) or not rule.get("from"):
                # traffic from outside the cluster: only to the gateway's websocket port
                assert selects(policy["spec"]["podSelector"], gateway), policy["metadata"]["name"]
                assert not any(selects(policy["spec"]["podSelector"], o) for o in others), policy["metadata"]["name"]
                assert rule["ports"] == [{"protocol": "TCP", "port": Settings().gateway.port}]
    exposed = [s for s in by_kind(docs, "Service") if s["spec"].get("type") in ("LoadBalancer", "NodePort")]
    assert [s["metadata"]["name"] for s in exposed] == ["gateway"]


@pytest.mark.parametrize("target", RENDERS)
def test_services_egress_is_limited_to_postgres_kafka_ray_and_each_other(target: str) -> None:
    docs = render(target)
    egress = [p for p in by_kind(docs, "NetworkPolicy") if "Egress" in p["spec"]["policyTypes"]]
    for d in by_kind(docs, "Deployment"):
        labels = pod_labels(d)
        mine = [p for p in egress if selects(p["spec"]["podSelector"], labels)]
        assert mine, f"{d['metadata']['name']}: egress not restricted"
        ports = {port["port"] for p in mine for rule in p["spec"]["egress"] for port in rule.get("ports", [])}
        assert {53, 5432, 9092} <= ports
        if d["metadata"]["name"] in ("twins", "ingest"):
            assert 10001 in ports                       # the Ray client port
    ray_ingress = one(docs, "NetworkPolicy", "ray-access")
    drivers = [peer for rule in ray_ingress["spec"]["ingress"] for peer in rule.get("from", [])
               if "podSelector" in peer and any(rule_port["port"] == 10001 for rule_port in rule.get("ports", []))]
    assert any(selects(peer["podSelector"], pod_labels(one(docs, "Deployment", "twins"))) for peer in drivers)


# ------------------------------------------------------------------ the image


def test_dockerfile_is_multi_stage_non_root_and_runs_gridtwin() -> None:
    parser = DockerfileParser(str(ROOT / "Dockerfile"))
    assert parser.is_multistage
    stages: list[list[dict[str, Any]]] = []
    for instruction in parser.structure:
        if instruction["instruction"] == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(instruction)
    assert len(stages) >= 2
    final = stages[-1]
    [user] = [i["value"] for i in final if i["instruction"] == "USER"]
    assert user.split(":")[0] not in ("root", "0")
    assert any(i["instruction"] == "COPY" and i["value"].startswith("--from=") for i in final)
    assert [i["value"] for i in final if i["instruction"] == "ENTRYPOINT"] == ['["gridtwin"]']
    # the runtime stage installs no build tools
    assert not any(i["instruction"] == "RUN" and ("pip install" in i["value"] or "gcc" in i["value"]) for i in final)
    # the service Deployments run as the image's user
    uid = int(user.split(":")[0])
    for d in by_kind(render("base"), "Deployment"):
        assert d["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == uid


def test_dockerfile_holds_no_secrets() -> None:
    parser = DockerfileParser(str(ROOT / "Dockerfile"))
    for instruction in parser.structure:
        if instruction["instruction"] in ("ENV", "ARG", "LABEL"):
            for word in ("PASSWORD", "SECRET", "TOKEN", "CREDENTIAL", "PRIVATE"):
                assert word not in instruction["value"].upper(), instruction["content"]
        if instruction["instruction"] in ("COPY", "ADD"):
            assert not any(bad in instruction["value"] for bad in (".env", "id_rsa", ".pem", "var/", ".git"))


def test_dockerignore_keeps_local_state_out_of_the_build_context() -> None:
    patterns = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]

    def ignored(path: str) -> bool:
        result = False
        for pattern in patterns:
            negate = pattern.startswith("!")
            pattern = pattern.removeprefix("!")
            if fnmatch.fnmatch(path, pattern) or path.startswith(pattern.rstrip("/") + "/"):
                result = not negate
        return result

    for path in (".venv/bin/python", "var/log/gateway.log", ".git/config", "tests/conftest.py", "bench/twins.py",
                 "gridtwin/__pycache__/cli.cpython-311.pyc", "gridtwin.egg-info/PKG-INFO"):
        assert ignored(path), path
    for path in ("pyproject.toml", "README.md", "gridtwin/app/cli/__init__.py", "gridtwin/migrations/env.py",
                 "services/telemetry/ingest.py", "actors/runtime/actor.py", "simulator/fleet.py"):
        assert not ignored(path), path
