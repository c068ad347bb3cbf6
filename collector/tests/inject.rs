//! `mcptap-collector inject`: sidecar added to each workload kind, idempotent, order kept,
//! opt-out annotation, other kinds untouched, options reflected in the container.

use std::io::Write;
use std::process::{Command, Stdio};
use yaml_rust2::{Yaml, YamlLoader};

fn inject(input: &str, args: &[&str]) -> (String, String) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mcptap-collector"))
        .arg("inject")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    c.stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write");
    let o = c.wait_with_output().expect("wait");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    (
        String::from_utf8(o.stdout).expect("utf8"),
        String::from_utf8(o.stderr).expect("utf8"),
    )
}

/// Every `mcptap-collector` container (containers and initContainers) of every pod template
/// in the YAML stream `out`.
fn sidecars(out: &str) -> Vec<Yaml> {
    fn walk(y: &Yaml, acc: &mut Vec<Yaml>) {
        match y {
            Yaml::Hash(h) => {
                if h.get(&Yaml::from_str("name")).and_then(Yaml::as_str) == Some("mcptap-collector")
                    && h.contains_key(&Yaml::from_str("image"))
                {
                    acc.push(y.clone());
                }
                h.values().for_each(|v| walk(v, acc));
            }
            Yaml::Array(a) => a.iter().for_each(|v| walk(v, acc)),
            _ => {}
        }
    }
    let mut acc = Vec::new();
    for d in YamlLoader::load_from_str(out).expect("inject output is YAML") {
        walk(&d, &mut acc);
    }
    acc
}

/// The sidecar's value of environment variable `name`.
fn env_of(c: &Yaml, name: &str) -> Option<String> {
    c["env"]
        .as_vec()?
        .iter()
        .find(|e| e["name"].as_str() == Some(name))
        .and_then(|e| e["value"].as_str().map(str::to_owned))
}

/// The documented default: UID 65532, `NET_RAW` from the file capability (so privilege
/// escalation allowed), every other capability dropped, read-only root, RuntimeDefault.
fn assert_nonroot_net_raw_only(c: &Yaml) {
    let sc = &c["securityContext"];
    assert_eq!(sc["runAsNonRoot"].as_bool(), Some(true), "{sc:?}");
    assert_eq!(sc["runAsUser"].as_i64(), Some(65532));
    assert_eq!(sc["runAsGroup"].as_i64(), Some(65532));
    assert_eq!(sc["allowPrivilegeEscalation"].as_bool(), Some(true));
    assert_eq!(sc["readOnlyRootFilesystem"].as_bool(), Some(true));
    assert_eq!(
        sc["seccompProfile"]["type"].as_str(),
        Some("RuntimeDefault")
    );
    assert_eq!(
        sc["capabilities"]["drop"],
        Yaml::Array(vec![Yaml::from_str("ALL")])
    );
    assert_eq!(
        sc["capabilities"]["add"],
        Yaml::Array(vec![Yaml::from_str("NET_RAW")])
    );
}

const MANIFESTS: &str = r#"# a comment
apiVersion: apps/v1
kind: Deployment
metadata:
  name: shop
spec:
  selector: {matchLabels: {app: shop}}
  template:
    metadata:
      labels: {app: shop}
    spec:
      containers:
      - name: server
        image: shop:1
        ports: [{containerPort: 8000}, {containerPort: 9000, protocol: UDP}]
      volumes:
      - name: cfg
        configMap: {name: cfg, defaultMode: 0644}
---
apiVersion: v1
kind: Service
metadata: {name: shop}
spec: {ports: [{port: 80}]}
---
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Pod
  metadata: {name: p1, labels: {app.kubernetes.io/name: pone}}
  spec: {containers: [{name: s, image: x, ports: [{containerPort: 3000}]}]}
- apiVersion: batch/v1
  kind: CronJob
  metadata: {name: cj}
  spec:
    schedule: "* * * * *"
    jobTemplate:
      spec:
        template:
          metadata:
            annotations: {mcptap.io/inject: disabled}
          spec: {restartPolicy: Never, containers: [{name: j, image: x}]}
"#;

#[test]
fn injects_each_kind_and_is_idempotent() {
    let (once, notes) = inject(MANIFESTS, &["--clickhouse-secret", "ch"]);
    let (twice, _) = inject(&once, &["--clickhouse-secret", "ch"]);
    assert_eq!(once, twice, "inject is not idempotent");
    assert_eq!(
        once.matches("\n---\n").count() + 1,
        3,
        "three documents: {once}"
    );
    // Deployment: sidecar after the server, TCP port only, octal mode kept as its value.
    let server = once.find("- name: server").expect("server");
    let sidecar = once.find("- name: mcptap-collector").expect("sidecar");
    assert!(server < sidecar);
    assert!(once.contains("value: tcp port 8000\n"), "{once}");
    assert!(once.contains("defaultMode: 420"));
    assert!(once.contains("mcptap.io/injected: "));
    assert!(once.contains("OTEL_SERVICE_NAME\n              value: shop"));
    assert!(once.contains("secretKeyRef:\n                  name: ch\n                  key: url"));
    // The Service is untouched and reported.
    assert!(
        once.contains("kind: Service\nmetadata:\n  name: shop\nspec:\n  ports:\n    - port: 80\n")
    );
    assert!(
        notes.contains("(Service shop): kind not injectable"),
        "{notes}"
    );
    // List: the Pod gets it (port 3000, service from app.kubernetes.io/name), the CronJob opted out.
    assert!(once.contains("value: tcp port 3000"));
    assert!(once.contains("value: pone"));
    assert!(notes.contains("mcptap.io/inject: disabled"), "{notes}");
    assert_eq!(once.matches("- name: mcptap-collector").count(), 2);
    // CAP_NET_RAW is the only capability added, in both sidecars, non-root.
    let scs = sidecars(&once);
    assert_eq!(scs.len(), 2);
    for c in &scs {
        assert_nonroot_net_raw_only(c);
    }
    assert!(!once.contains("NET_ADMIN"), "{once}");
    for needle in [
        "- ALL",
        "readOnlyRootFilesystem: true",
        "runAsNonRoot: true",
        "path: /readyz",
        "path: /healthz",
        "fieldPath: spec.nodeName",
        "fieldPath: metadata.namespace",
        "name: MCPTAP_INSTANCE_ID",
        "sizeLimit: 512Mi",
        "mountPath: /var/spool/mcptap",
    ] {
        assert!(once.contains(needle), "missing {needle}");
    }
}

#[test]
fn options_and_reinjection_update_in_place() {
    let (a, _) = inject(MANIFESTS, &[]);
    let (b, _) = inject(
        &a,
        &[
            "--port",
            "8080",
            "--image",
            "reg/mc:2",
            "--security",
            "root",
            "--clickhouse-url",
            "http://ch:8123",
            "--native-sidecar",
            "--scrape-annotations",
            "--cpu-limit",
            "1",
        ],
    );
    assert!(b.contains("value: tcp port 8080"));
    assert!(!b.contains("tcp port 8000"));
    assert!(b.contains("image: \"reg/mc:2\"") || b.contains("image: reg/mc:2"));
    for c in sidecars(&b) {
        let sc = &c["securityContext"];
        assert_eq!(sc["runAsUser"].as_i64(), Some(0), "{sc:?}");
        assert_eq!(sc["runAsNonRoot"].as_bool(), Some(false));
        assert_eq!(sc["allowPrivilegeEscalation"].as_bool(), Some(false));
        assert_eq!(sc["readOnlyRootFilesystem"].as_bool(), Some(true));
        assert_eq!(
            sc["seccompProfile"]["type"].as_str(),
            Some("RuntimeDefault")
        );
        assert_eq!(
            sc["capabilities"]["add"],
            Yaml::Array(vec![Yaml::from_str("NET_RAW")])
        );
        assert_eq!(
            sc["capabilities"]["drop"],
            Yaml::Array(vec![Yaml::from_str("ALL")])
        );
    }
    assert!(b.contains("value: \"http://ch:8123\""));
    assert!(b.contains("initContainers:") && b.contains("restartPolicy: Always"));
    assert!(b.contains("prometheus.io/scrape: \"true\""));
    // moved, not duplicated
    assert_eq!(b.matches("- name: mcptap-collector").count(), 2);
    assert_eq!(b.matches("name: mcptap-spool\n").count(), 4, "{b}");
}

#[test]
fn invalid_yaml_is_an_error() {
    let o = Command::new(env!("CARGO_BIN_EXE_mcptap-collector"))
        .args(["inject", "/nonexistent.yaml"])
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent.yaml"));
}

/// One Deployment per mesh layout, each with the MCP server on 8000.
const MESHED: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: istio}
spec:
  template:
    metadata: {annotations: {sidecar.istio.io/inject: "true"}}
    spec:
      containers:
      - {name: server, image: s, ports: [{containerPort: 8000}]}
      - {name: istio-proxy, image: p, ports: [{containerPort: 15090, name: http-envoy-prom}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: linkerd}
spec:
  template:
    metadata: {annotations: {linkerd.io/inject: enabled}}
    spec:
      containers: [{name: server, image: s, ports: [{containerPort: 8000}]}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: linkerd-port}
spec:
  template:
    metadata: {annotations: {linkerd.io/inject: enabled, config.linkerd.io/inbound-port: "4200"}}
    spec:
      containers: [{name: server, image: s, ports: [{containerPort: 8000}]}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: linkerd-injected}
spec:
  template:
    spec:
      containers:
      - {name: server, image: s, ports: [{containerPort: 8000}]}
      - name: linkerd-proxy
        image: l
        ports: [{containerPort: 4143, name: linkerd-proxy}, {containerPort: 4191, name: linkerd-admin}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: tls-proxy}
spec:
  template:
    spec:
      containers:
      - {name: nginx, image: n, ports: [{containerPort: 8443}]}
      - {name: server, image: s, ports: [{containerPort: 8000}]}
"#;

/// `(interface, filter)` of each injected sidecar, in document order.
fn captures(out: &str) -> Vec<(String, String)> {
    sidecars(out)
        .iter()
        .map(|c| {
            (
                env_of(c, "MCPTAP_INTERFACE").expect("MCPTAP_INTERFACE"),
                env_of(c, "MCPTAP_FILTER").expect("MCPTAP_FILTER"),
            )
        })
        .collect()
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

#[test]
fn mesh_mode_captures_any_with_the_app_and_tls_ports() {
    let (mesh, _) = inject(MESHED, &["--mesh"]);
    assert_eq!(
        captures(&mesh),
        pairs(&[
            // Istio: mTLS arrives on the app port itself; Envoy's own ports are not the app's.
            ("any", "tcp port 8000"),
            // Linkerd: meshed clients connect to the inbound proxy port on eth0.
            ("any", "tcp port 8000 or tcp port 4143"),
            ("any", "tcp port 8000 or tcp port 4200"),
            ("any", "tcp port 8000 or tcp port 4143"),
            // A plain TLS-terminating proxy: its port (TLS) and the app's (plaintext, loopback).
            ("any", "tcp port 8443 or tcp port 8000"),
        ])
    );
    // Same privileges as without a mesh: -i any needs nothing but NET_RAW.
    for c in sidecars(&mesh) {
        assert_nonroot_net_raw_only(&c);
    }
    let (again, _) = inject(&mesh, &["--mesh"]);
    assert_eq!(again, mesh, "mesh mode is idempotent");
    // Explicit TLS ports replace the Linkerd default.
    let (tls, _) = inject(MESHED, &["--mesh", "--tls-port", "15006", "--port", "9000"]);
    assert!(
        captures(&tls).iter().all(|c| *c
            == (
                "any".to_owned(),
                "tcp port 9000 or tcp port 15006".to_owned()
            )),
        "{:?}",
        captures(&tls)
    );
    // Without --mesh: eth0, app ports only (mesh proxies' ports still not the app's), and
    // re-injecting a mesh-mode manifest without --mesh switches it back.
    let (plain, _) = inject(&mesh, &[]);
    assert_eq!(
        captures(&plain),
        pairs(&[
            ("eth0", "tcp port 8000"),
            ("eth0", "tcp port 8000"),
            ("eth0", "tcp port 8000"),
            ("eth0", "tcp port 8000"),
            ("eth0", "tcp port 8443 or tcp port 8000"),
        ])
    );
}

#[test]
fn mesh_options_are_checked() {
    // A Linkerd inbound-port annotation that is no port fails instead of guessing.
    let bad = MESHED.replace("inbound-port: \"4200\"", "inbound-port: \"42x\"");
    let mut c = Command::new(env!("CARGO_BIN_EXE_mcptap-collector"))
        .args(["inject", "--mesh"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn");
    c.stdin
        .take()
        .expect("stdin")
        .write_all(bad.as_bytes())
        .expect("write");
    let o = c.wait_with_output().expect("wait");
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("Deployment linkerd-port") && err.contains("\"42x\" is not a port"),
        "{err}"
    );
    for (args, msg) in [
        (&["--tls-port", "4143"][..], "--mesh"),
        (
            &["--mesh", "--interface", "eth1"][..],
            "cannot be used with",
        ),
    ] {
        let o = Command::new(env!("CARGO_BIN_EXE_mcptap-collector"))
            .arg("inject")
            .args(args)
            .arg("/dev/null")
            .output()
            .expect("run");
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(msg), "{args:?}: {err}");
    }
}
