#!/usr/bin/env python3
"""Offline validation of deploy/: kustomize builds (kubectl kustomize), Helm lint + render
(helm-python-sdk), kubernetes-validate on every output, the sidecar's security contract
(NET_RAW only, both modes, the Dockerfile's file capability), its capture settings (eth0, or
`any` in mesh mode), and that generated files are in sync (PrometheusRule, chart copies, the
sidecar and sidecar-mesh patches, Helm's sidecar vs `inject`).

usage: check_manifests.py COLLECTOR_BIN
"""
import base64
import json, pathlib, subprocess, sys, tempfile
import yaml
from helm_python import Chart, chart as helm_chart

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = sys.argv[1]
KUBE = "1.33"
fails = []


def check(cond, msg):
    if not cond:
        fails.append(msg)
    return cond


def validate(name, text):
    """kubernetes-validate on a YAML stream; CRDs of the Prometheus Operator have no schema there."""
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(text)
    r = subprocess.run([str(ROOT / ".venv/bin/kubernetes-validate"), "-k", KUBE, "--strict", f.name],
                       capture_output=True, text=True)
    out = r.stdout + r.stderr
    bad = [l for l in out.splitlines() if l.startswith("ERROR")
           or (l.startswith("WARN") and "monitoring.coreos.com" not in l)]
    check(r.returncode == 0 and not bad, f"{name}: kubernetes-validate rc={r.returncode}: {bad or out[-600:]}")
    docs = [d for d in yaml.safe_load_all(text) if d]
    print(f"  {name}: {len(docs)} objects ({', '.join(sorted({d['kind'] for d in docs}))}) valid for {KUBE}")
    return docs


def privileges_ok(where, sc, mode):
    """The documented capture privileges (deploy/README.md): NET_RAW only, every other capability
    dropped, read-only root, RuntimeDefault; nonroot: UID/GID 65532 with privilege escalation
    allowed (file capability); root: UID 0 with no_new_privs."""
    caps = sc.get("capabilities", {})
    check(caps.get("drop") == ["ALL"] and caps.get("add") == ["NET_RAW"], f"{where}: capabilities {caps}")
    check(sc.get("readOnlyRootFilesystem") is True, f"{where}: readOnlyRootFilesystem")
    check(sc.get("seccompProfile") == {"type": "RuntimeDefault"}, f"{where}: seccompProfile {sc.get('seccompProfile')}")
    check("privileged" not in sc, f"{where}: privileged set")
    if mode == "nonroot":
        check(sc.get("runAsNonRoot") is True and sc.get("runAsUser") == 65532 and sc.get("runAsGroup") == 65532
              and sc.get("allowPrivilegeEscalation") is True, f"{where}: nonroot mode {sc}")
    else:
        check(sc.get("runAsNonRoot") is False and sc.get("runAsUser") == 0
              and sc.get("allowPrivilegeEscalation") is False, f"{where}: root mode {sc}")


def sidecar_ok(where, pod_spec, iface="eth0", filt="tcp port 8000"):
    cs = [c for c in pod_spec.get("containers", []) + pod_spec.get("initContainers", [])
          if c["name"] == "mcptap-collector"]
    if not check(len(cs) == 1, f"{where}: {len(cs)} mcptap-collector containers"):
        return
    c = cs[0]
    sc = c.get("securityContext", {})
    caps = sc.get("capabilities", {})
    privileges_ok(where, sc, "nonroot")
    env = {e["name"]: e for e in c.get("env", [])}
    for var, path in [("POD_NAME", "metadata.name"), ("POD_NAMESPACE", "metadata.namespace"),
                      ("NODE_NAME", "spec.nodeName"), ("MCPTAP_INSTANCE_ID", "metadata.name")]:
        check(env.get(var, {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == path, f"{where}: {var}")
    check("CLICKHOUSE_URL" in env, f"{where}: CLICKHOUSE_URL")
    check(env.get("MCPTAP_SPOOL_DIR", {}).get("value") == "/var/spool/mcptap", f"{where}: spool dir")
    check(env.get("MCPTAP_INTERFACE", {}).get("value") == iface, f"{where}: interface {env.get('MCPTAP_INTERFACE')}, want {iface}")
    check(env.get("MCPTAP_FILTER", {}).get("value") == filt, f"{where}: filter {env.get('MCPTAP_FILTER')}, want {filt}")
    check(c.get("readinessProbe", {}).get("httpGet", {}).get("path") == "/readyz", f"{where}: readiness")
    check(c.get("livenessProbe", {}).get("httpGet", {}).get("path") == "/healthz", f"{where}: liveness")
    r = c.get("resources", {})
    check(r.get("requests", {}).get("cpu") and r.get("limits", {}).get("memory"), f"{where}: resources")
    check(any(m["mountPath"] == "/var/spool/mcptap" for m in c.get("volumeMounts", [])), f"{where}: spool mount")
    check(any(v["name"] == "mcptap-spool" and "emptyDir" in v for v in pod_spec.get("volumes", [])), f"{where}: spool emptyDir")


def by_kind(docs, kind):
    return [d for d in docs if d["kind"] == kind]


def analyzer_locked(where, docs, token_secret):
    """The analyzer gets its bearer token from `token_secret` and a NetworkPolicy guards it."""
    an = [d for d in by_kind(docs, "Deployment") if d["metadata"]["name"].endswith("mcptap-analyzer")]
    if not check(an, f"{where}: analyzer Deployment"):
        return
    env = {e["name"]: e for e in an[0]["spec"]["template"]["spec"]["containers"][0].get("env", [])}
    ref = env.get("MCPTAP_ANALYZER_TOKEN", {}).get("valueFrom", {}).get("secretKeyRef", {})
    check(ref.get("name") == token_secret and ref.get("key") == "token" and not ref.get("optional"),
          f"{where}: MCPTAP_ANALYZER_TOKEN from Secret {token_secret} (required): {ref}")
    labels = an[0]["spec"]["template"]["metadata"]["labels"]
    np = [d for d in by_kind(docs, "NetworkPolicy")
          if all(labels.get(k) == v for k, v in d["spec"]["podSelector"]["matchLabels"].items())]
    check(np and "Ingress" in np[0]["spec"]["policyTypes"] and np[0]["spec"]["ingress"][0]["from"],
          f"{where}: NetworkPolicy selecting the analyzer with restricted ingress")


# --- kustomize ----------------------------------------------------------------
for k in ["base", "overlays/example", "overlays/example-mesh"]:
    p = ROOT / "deploy/kubernetes" / k
    r = subprocess.run(["kubectl", "kustomize", str(p)], capture_output=True, text=True)
    if not check(r.returncode == 0, f"kubectl kustomize {k}: {r.stderr}"):
        continue
    docs = validate(f"kustomize {k}", r.stdout)
    job = by_kind(docs, "Job")
    check(job and job[0]["spec"]["template"]["spec"]["containers"][0]["args"] == ["schema"], f"{k}: schema Job")
    check(any(d["metadata"]["name"] == "mcptap-analyzer" for d in by_kind(docs, "Service")), f"{k}: analyzer Service")
    analyzer_locked(f"kustomize {k}", docs, "mcptap-analyzer-token")
    if k == "overlays/example":
        shop = [d for d in by_kind(docs, "Deployment") if d["metadata"]["name"] == "shop-mcp"]
        if check(shop, "example: shop-mcp"):
            spec = shop[0]["spec"]["template"]["spec"]
            sidecar_ok("kustomize example shop-mcp", spec)
            check(sorted(c["name"] for c in spec["containers"]) == ["mcptap-collector", "server"], "example: containers")
        kinds = {d["kind"] for d in docs}
        check({"ServiceMonitor", "PodMonitor", "PrometheusRule", "Secret"} <= kinds, f"example kinds {kinds}")
        check(all(d["metadata"].get("namespace") == "mcp-demo" for d in docs), "example: namespace")
        check(any(d["metadata"]["name"] == "mcptap-analyzer-token" for d in by_kind(docs, "Secret")),
              "example: analyzer token Secret")
    if k == "overlays/example-mesh":
        # Mesh mode (components/sidecar-mesh): `any`, so the proxy's loopback hop is captured.
        shop = [d for d in by_kind(docs, "Deployment") if d["metadata"]["name"] == "shop-mcp"]
        if check(shop, "example-mesh: shop-mcp"):
            t = shop[0]["spec"]["template"]
            sidecar_ok("kustomize example-mesh shop-mcp", t["spec"], iface="any")
            check(t["metadata"]["annotations"].get("sidecar.istio.io/inject") == "true", "example-mesh: Istio annotation")
            check(sorted(c["name"] for c in t["spec"]["containers"]) == ["mcptap-collector", "server"], "example-mesh: containers")
        check(all(d["metadata"].get("namespace") == "mcp-mesh-demo" for d in docs), "example-mesh: namespace")

# --- Helm ---------------------------------------------------------------------
H = ROOT / "deploy/helm/mcptap"
for vals in [None, {"monitoring": {"serviceMonitor": {"enabled": True}, "podMonitor": {"enabled": True},
                                   "prometheusRule": {"enabled": True}},
                    "grafana": {"dashboards": {"enabled": True}}, "exampleServer": {"enabled": True},
                    "clickhouse": {"existingSecret": "ch"}, "schemaJob": {"ttlDays": 30},
                    "analyzer": {"auth": {"existingSecret": "tok"}}},
             {"exampleServer": {"enabled": True}, "collector": {"securityMode": "root"}},
             {"exampleServer": {"enabled": True}, "collector": {"mesh": {"enabled": True, "tlsPorts": [4143]}}}]:
    rep = helm_chart.lint(H, vals, strict=True, kube_version="v1.33.0")
    msgs = [m for m in rep.get("messages", []) if m.get("severity", 0) >= 2]
    check(not msgs and not rep.get("errors"), f"helm lint {vals}: {msgs} {rep.get('errors')}")
    out = Chart.load(H).render(vals, name="mcptap", namespace="mcp-demo")
    text = "\n---\n".join(v for k, v in sorted(out.items()) if k.endswith(".yaml") and v.strip())
    docs = validate(f"helm render values={json.dumps(vals)[:60]}", text)
    ex = [d for d in by_kind(docs, "Deployment") if d["metadata"]["name"].endswith("example-mcp")]
    tok = (vals or {}).get("analyzer", {}).get("auth", {}).get("existingSecret") or "mcptap-analyzer-token"
    analyzer_locked("helm render", docs, tok)
    if tok == "mcptap-analyzer-token":
        sec = [d for d in by_kind(docs, "Secret") if d["metadata"]["name"] == tok]
        check(sec and len(base64.b64decode(sec[0]["data"]["token"])) >= 32, "helm: generated analyzer token")
    if vals and vals.get("exampleServer"):
        if check(ex, "helm: example server"):
            spec = ex[0]["spec"]["template"]["spec"]
            if vals.get("collector", {}).get("mesh"):
                sidecar_ok("helm example-mcp mesh", spec, iface="any", filt="tcp port 8000 or tcp port 4143")
            elif vals.get("collector", {}).get("securityMode") == "root":
                privileges_ok("helm root mode", spec["containers"][1]["securityContext"], "root")
            else:
                sidecar_ok("helm example-mcp", spec)
        if vals.get("monitoring"):
            pr = by_kind(docs, "PrometheusRule")
            rules = yaml.safe_load((ROOT / "deploy/prometheus/mcptap-rules.yml").read_text())
            check(pr and pr[0]["spec"] == rules, "helm PrometheusRule != deploy/prometheus/mcptap-rules.yml")
            cm = by_kind(docs, "ConfigMap")
            check(cm and json.loads(cm[0]["data"]["mcptap-cutover.json"]) == json.loads((ROOT / "dashboards/mcptap-cutover.json").read_text()),
                  "helm dashboard ConfigMap != dashboards/mcptap-cutover.json")
            secret_refs = {e["valueFrom"]["secretKeyRef"]["name"] for d in by_kind(docs, "Deployment")
                           for c in d["spec"]["template"]["spec"]["containers"] for e in c.get("env", [])
                           if "secretKeyRef" in e.get("valueFrom", {})}
            check(secret_refs == {"ch", "tok"} and not by_kind(docs, "Secret"), f"helm existingSecret {secret_refs}")
    else:
        check(not ex and len(by_kind(docs, "Job")) == 1 and by_kind(docs, "Secret"), "helm defaults")

# --- image: NET_RAW only, as a file capability, no setuid/setgid file left ---------------
df = (ROOT / "deploy/docker/collector.Dockerfile").read_text()
setcaps = [l.strip() for l in df.splitlines() if "setcap " in l and not l.lstrip().startswith("#")]
check(setcaps == ["RUN setcap cap_net_raw+ep /usr/local/bin/mcptap-collector \\"], f"Dockerfile setcap: {setcaps}")
check("find / -xdev -type f -perm /6000 -exec chmod ug-s {} +" in df, "Dockerfile: setuid/setgid bits not stripped")
check("USER 65532:65532" in df and "net_admin" not in df.lower(), "Dockerfile: user or NET_ADMIN")
# Helm refuses an unknown securityMode (fail closed) instead of rendering something else.
try:
    Chart.load(H).render({"exampleServer": {"enabled": True}, "collector": {"securityMode": "privileged"}},
                         name="mcptap", namespace="x")
    check(False, "helm: securityMode=privileged rendered")
except Exception as e:  # HelmRenderError
    check("securityMode must be nonroot or root" in str(e), f"helm bad securityMode: {e}")

# --- generated files in sync --------------------------------------------------
rules = yaml.safe_load((ROOT / "deploy/prometheus/mcptap-rules.yml").read_text())
pr = yaml.safe_load((ROOT / "deploy/kubernetes/components/monitoring/prometheusrule.yaml").read_text())
check(pr["spec"] == rules, "kustomize prometheusrule.yaml is stale")
check((H / "files/mcptap-rules.yml").read_text() == (ROOT / "deploy/prometheus/mcptap-rules.yml").read_text(), "chart rules copy stale")
check((H / "files/mcptap-cutover.json").read_text() == (ROOT / "dashboards/mcptap-cutover.json").read_text(), "chart dashboard copy stale")
skeleton = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: mcptap-sidecar}\nspec:\n  template:\n    spec:\n      containers: []\n"
r = subprocess.run([BIN, "inject", "--port", "8000", "--image", "mcptap-collector", "--clickhouse-secret",
                    "mcptap-clickhouse", "--scrape-annotations"], input=skeleton, capture_output=True, text=True)
check(r.returncode == 0 and r.stdout == (ROOT / "deploy/kubernetes/components/sidecar/sidecar-patch.yaml").read_text(),
      "sidecar-patch.yaml is stale (see components/sidecar/README.md)")
r_mesh = subprocess.run([BIN, "inject", "--mesh", "--port", "8000", "--image", "mcptap-collector", "--clickhouse-secret",
                         "mcptap-clickhouse", "--scrape-annotations"], input=skeleton, capture_output=True, text=True)
check(r_mesh.returncode == 0 and r_mesh.stdout == (ROOT / "deploy/kubernetes/components/sidecar-mesh/sidecar-patch.yaml").read_text(),
      "components/sidecar-mesh/sidecar-patch.yaml is stale (see its README.md)")
# The two patches differ in the capture interface only.
plain_c = yaml.safe_load(r.stdout)["spec"]["template"]["spec"]["containers"][0]
mesh_c = yaml.safe_load(r_mesh.stdout)["spec"]["template"]["spec"]["containers"][0]
diff = [(a, b) for a, b in zip(plain_c["env"], mesh_c["env"]) if a != b]
check(diff == [({"name": "MCPTAP_INTERFACE", "value": "eth0"}, {"name": "MCPTAP_INTERFACE", "value": "any"})]
      and {k: v for k, v in plain_c.items() if k != "env"} == {k: v for k, v in mesh_c.items() if k != "env"},
      f"mesh patch differs from the plain one by more than the interface: {diff}")
# Helm refuses tlsPorts without mesh mode.
try:
    Chart.load(H).render({"exampleServer": {"enabled": True}, "collector": {"mesh": {"tlsPorts": [4143]}}},
                         name="mcptap", namespace="x")
    check(False, "helm: mesh.tlsPorts without mesh.enabled rendered")
except Exception as e:
    check("collector.mesh.tlsPorts needs collector.mesh.enabled" in str(e), f"helm tlsPorts: {e}")
# Helm mesh mode and `inject --mesh --tls-port 4143` give the same container and capture.
r_l5d = subprocess.run([BIN, "inject", "--mesh", "--port", "8000", "--tls-port", "4143"], input=skeleton,
                       capture_output=True, text=True)
out = Chart.load(H).render({"exampleServer": {"enabled": True}, "collector": {"mesh": {"enabled": True, "tlsPorts": [4143]}}},
                           name="mcptap", namespace="x")
helm_m = [c for d in yaml.safe_load_all(out["mcptap/templates/example-server.yaml"]) if d
          for c in d["spec"]["template"]["spec"]["containers"] if c["name"] == "mcptap-collector"][0]
inj_m = yaml.safe_load(r_l5d.stdout)["spec"]["template"]["spec"]["containers"][0]
cap = lambda c: {e["name"]: e.get("value") for e in c["env"] if e["name"] in ("MCPTAP_INTERFACE", "MCPTAP_FILTER")}
check(cap(helm_m) == cap(inj_m) == {"MCPTAP_INTERFACE": "any", "MCPTAP_FILTER": "tcp port 8000 or tcp port 4143"},
      f"helm mesh capture {cap(helm_m)} vs inject --mesh {cap(inj_m)}")
# The Helm sidecar template and `inject` produce the same container.
out = Chart.load(H).render({"exampleServer": {"enabled": True}}, name="mcptap", namespace="x")
helm_c = [c for d in yaml.safe_load_all(out["mcptap/templates/example-server.yaml"]) if d
          for c in d["spec"]["template"]["spec"]["containers"] if c["name"] == "mcptap-collector"][0]
inj = yaml.safe_load(r.stdout)["spec"]["template"]["spec"]["containers"][0]
norm = lambda c: {k: v for k, v in c.items() if k not in ("image", "env")}
check(norm(helm_c) == norm(inj), f"helm sidecar differs from inject: {norm(helm_c)} vs {norm(inj)}")
he = {e["name"] for e in helm_c["env"]}
ie = {e["name"] for e in inj["env"]}
check(ie <= he, f"helm sidecar env lacks {ie - he}")

if fails:
    print("FAIL:\n  " + "\n  ".join(fails))
    sys.exit(1)
print("manifests: all checks passed")
