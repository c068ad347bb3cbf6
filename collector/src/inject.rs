//! `mcptap-collector inject`: adds the mcptap-collector sidecar to Kubernetes
//! workload manifests, like `linkerd inject`.
//!
//! Input: YAML on stdin or from a file, one or more documents (`---`), each a
//! Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob or a `List`
//! of them. Output: the same documents on stdout, each pod template with
//! - a `mcptap-collector` container (or a native sidecar in `initContainers`
//!   with `--native-sidecar`): live capture on the pod's interface, the
//!   downward-API variables `POD_NAME`, `POD_NAMESPACE`, `NODE_NAME` and the
//!   instance id `MCPTAP_INSTANCE_ID`, ClickHouse from a URL or a Secret,
//!   `/readyz` and `/healthz` probes on the admin port, resources, and a
//!   locked-down security context (every capability dropped but `NET_RAW`,
//!   read-only root filesystem, seccomp `RuntimeDefault`); the capture filter
//!   covers the MCP server's ports (`--port`, else the pod's TCP
//!   `containerPort`s, a mesh proxy's own excepted);
//! - with `--mesh` (a pod whose inbound traffic a TLS-terminating proxy takes:
//!   Istio or Linkerd sidecar, or a plain proxy container), capture on `any`, so
//!   the proxy's plaintext hop to the application over the loopback is decoded
//!   and the TLS connections on eth0 are recognised and counted, not decoded;
//!   the filter adds `--tls-port`s (default: Linkerd's inbound port when the pod
//!   is Linkerd-injected). Where the plaintext leg is, per mesh: deploy/README.md,
//!   "Meshes and TLS-terminating proxies in the pod";
//! - an `emptyDir` volume `mcptap-spool` for the export spool;
//! - the annotation `mcptap.io/injected: <version>` (and, with
//!   `--scrape-annotations`, `prometheus.io/scrape|port|path`).
//!
//! Idempotent: an existing `mcptap-collector` container and `mcptap-spool`
//! volume are replaced in place, so injecting twice gives the same output as
//! injecting once (and re-injecting with new options updates the sidecar).
//! Pod templates annotated `mcptap.io/inject: disabled` are left alone; other
//! kinds pass through unchanged. Key order of the input is kept; comments and
//! anchors are not (YAML has no lossless round trip in this library). Plain
//! scalars are read as Kubernetes reads them where it matters: `0644` is the
//! YAML 1.1 octal 420 (written back as `420`).
//!
//! Security trade-off (see deploy/README.md): capture needs `CAP_NET_RAW` only
//! (the packet socket; the BPF filter and the TPACKET_V3 ring need nothing
//! more). The default `--security nonroot` runs as UID 65532 and gets
//! `NET_RAW` from the file capability the image sets on the binary
//! (`setcap cap_net_raw+ep`). Linux documents that `no_new_privs` (which
//! `allowPrivilegeEscalation: false` sets) stops file capabilities from being
//! granted at exec, so this mode keeps `allowPrivilegeEscalation: true`; the
//! bounding set holds only `NET_RAW` and the image has no setuid or setgid
//! file, so there is nothing else to escalate to. `--security root` runs as
//! UID 0 with `NET_RAW` only and `allowPrivilegeEscalation: false`: no exec can
//! gain anything, but code running in it is UID 0 (root-owned files on
//! volumes, host root after a container escape without user namespaces).
//! `collector/tests/live_privileges.rs` captures under exactly both.

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser, Tag};
use yaml_rust2::scanner::{Marker, ScanError, TScalarStyle};
use yaml_rust2::yaml::Hash;
use yaml_rust2::{Yaml, YamlEmitter};

/// Name of the injected container.
pub const CONTAINER_NAME: &str = "mcptap-collector";
/// Name of the injected spool volume.
pub const SPOOL_VOLUME: &str = "mcptap-spool";
/// Where the spool volume is mounted in the sidecar.
pub const SPOOL_PATH: &str = "/var/spool/mcptap";
/// Annotation set on injected pod templates; value: the collector version.
pub const INJECTED_ANNOTATION: &str = "mcptap.io/injected";
/// Annotation that opts a pod template out (`disabled`).
pub const INJECT_ANNOTATION: &str = "mcptap.io/inject";
/// Name of the sidecar's admin port (`/metrics`, `/healthz`, `/readyz`).
pub const ADMIN_PORT_NAME: &str = "mcptap-admin";

/// How the sidecar gets its capture privileges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SecurityMode {
    /// UID 65532, `runAsNonRoot`; `NET_RAW` from the binary's file capability,
    /// so `allowPrivilegeEscalation: true` (bounding set: `NET_RAW` only).
    Nonroot,
    /// UID 0 with `NET_RAW` only, `allowPrivilegeEscalation: false`.
    Root,
}

/// Options of `mcptap-collector inject`.
#[derive(Debug, Args, Clone)]
pub struct InjectArgs {
    /// Manifest file (YAML, one or more documents); `-` or absent: stdin.
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Sidecar image.
    #[arg(long, env = "MCPTAP_INJECT_IMAGE", default_value = concat!("ghcr.io/mcptap/mcptap-collector:", env!("CARGO_PKG_VERSION")), value_name = "IMAGE")]
    pub image: String,
    /// Image pull policy of the sidecar.
    #[arg(long, default_value = "IfNotPresent", value_parser = ["Always", "IfNotPresent", "Never"])]
    pub image_pull_policy: String,
    /// MCP server port to capture (repeatable). Default: every TCP
    /// `containerPort` of the pod's other containers; with none, all TCP.
    #[arg(long = "port", value_name = "PORT")]
    pub ports: Vec<u16>,
    /// Interface the sidecar captures on (the pod's network namespace).
    #[arg(
        long,
        default_value = "eth0",
        value_name = "IFACE",
        conflicts_with = "mesh"
    )]
    pub interface: String,
    /// Mesh mode, for a pod with a TLS-terminating proxy (Istio or Linkerd sidecar, or a
    /// plain proxy container): capture on `any`, so the proxy's plaintext hop to the
    /// application on the loopback is decoded and the TLS connections on eth0 are counted
    /// (not decoded); the filter covers the application ports plus `--tls-port`.
    #[arg(long)]
    pub mesh: bool,
    /// With `--mesh`: a port where only TLS arrives on eth0 (counted, not decoded), added to
    /// the filter (repeatable). Default: Linkerd's inbound port (4143, or
    /// `config.linkerd.io/inbound-port`) when the pod template is annotated
    /// `linkerd.io/inject: enabled` or has a `linkerd-proxy` container; none otherwise
    /// (Istio's mTLS arrives on the application port itself).
    #[arg(long = "tls-port", value_name = "PORT", requires = "mesh")]
    pub tls_ports: Vec<u16>,
    /// Port of the admin server (`/metrics`, `/healthz`, `/readyz`).
    #[arg(long, default_value_t = 9464, value_name = "PORT")]
    pub admin_port: u16,
    /// `OTEL_SERVICE_NAME` of the spans. Default: the pod template's
    /// `app.kubernetes.io/name` or `app` label, else the workload's name.
    #[arg(long, value_name = "NAME")]
    pub service_name: Option<String>,
    /// Downward-API field giving `MCPTAP_INSTANCE_ID` (`service.instance.id`).
    #[arg(long, default_value = "metadata.name", value_parser = ["metadata.name", "metadata.uid"], value_name = "FIELD")]
    pub instance_id_field: String,
    /// ClickHouse HTTP URL written into the pod spec.
    #[arg(long, value_name = "URL", conflicts_with = "clickhouse_secret")]
    pub clickhouse_url: Option<String>,
    /// Secret with keys `url` and optionally `user` and `password` for ClickHouse.
    #[arg(long, value_name = "SECRET")]
    pub clickhouse_secret: Option<String>,
    /// CPU request of the sidecar.
    #[arg(long, default_value = "50m")]
    pub cpu_request: String,
    /// CPU limit of the sidecar.
    #[arg(long, default_value = "500m")]
    pub cpu_limit: String,
    /// Memory request of the sidecar.
    #[arg(long, default_value = "64Mi")]
    pub memory_request: String,
    /// Memory limit of the sidecar.
    #[arg(long, default_value = "256Mi")]
    pub memory_limit: String,
    /// `sizeLimit` of the spool emptyDir.
    #[arg(long, default_value = "512Mi")]
    pub spool_size_limit: String,
    /// `MCPTAP_SPOOL_MAX_BYTES` of the sidecar (keep it below the emptyDir size limit).
    #[arg(long, default_value_t = 256 * 1024 * 1024, value_name = "BYTES")]
    pub spool_max_bytes: u64,
    /// Capture privileges (see the module docs and deploy/README.md).
    #[arg(long, value_enum, default_value_t = SecurityMode::Nonroot)]
    pub security: SecurityMode,
    /// Add the sidecar as a native sidecar (an `initContainers` entry with
    /// `restartPolicy: Always`, Kubernetes 1.29+): it starts before and stops
    /// after the MCP server, so the first and last requests are captured.
    #[arg(long)]
    pub native_sidecar: bool,
    /// Also set `prometheus.io/scrape`, `prometheus.io/port`, `prometheus.io/path`
    /// on the pod template (overwrites the application's own).
    #[arg(long)]
    pub scrape_annotations: bool,
}

/// Runs `mcptap-collector inject`: reads the manifest, writes the injected one
/// to stdout, and a line per skipped document to stderr.
pub fn run(args: &InjectArgs) -> Result<ExitCode> {
    let mut input = String::new();
    match args.file.as_deref() {
        None => std::io::stdin().read_to_string(&mut input)?,
        Some(p) if p.as_os_str() == "-" => std::io::stdin().read_to_string(&mut input)?,
        Some(p) => {
            input = std::fs::read_to_string(p)
                .with_context(|| format!("inject: cannot read {}", p.display()))?;
            input.len()
        }
    };
    let mut notes = Vec::new();
    let out = inject_str(&input, args, &mut notes)?;
    for n in notes {
        eprintln!("mcptap-collector inject: {n}");
    }
    std::io::stdout().write_all(out.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

/// Injects the sidecar into every pod template of the YAML stream `input` and
/// returns the resulting stream (documents separated by `---`). `notes` gets
/// one line per document left unchanged and why. Errors: unparsable YAML.
pub fn inject_str(input: &str, args: &InjectArgs, notes: &mut Vec<String>) -> Result<String> {
    let docs = load(input).context("inject: input is not valid YAML")?;
    let mut out = String::new();
    for (i, mut doc) in docs.into_iter().enumerate() {
        if matches!(doc, Yaml::BadValue | Yaml::Null) {
            continue;
        }
        inject_doc(&mut doc, args, &format!("document {}", i + 1), notes)?;
        let mut s = String::new();
        let mut em = YamlEmitter::new(&mut s);
        em.multiline_strings(true);
        em.dump(&doc)
            .map_err(|e| anyhow::anyhow!("inject: cannot write YAML: {e}"))?;
        out.push_str(&s);
        out.push('\n');
    }
    Ok(out)
}

fn key(s: &str) -> Yaml {
    Yaml::String(s.to_owned())
}

fn get<'a>(h: &'a Hash, k: &str) -> Option<&'a Yaml> {
    h.get(&key(k))
}

fn get_mut<'a>(h: &'a mut Hash, k: &str) -> Option<&'a mut Yaml> {
    h.get_mut(&key(k))
}

fn str_of<'a>(h: &'a Hash, k: &str) -> Option<&'a str> {
    get(h, k).and_then(Yaml::as_str)
}

/// The mapping at `h[k]`, created (appended) when absent or null.
fn hash_at<'a>(h: &'a mut Hash, k: &str) -> Result<&'a mut Hash> {
    let e = h.entry(key(k)).or_insert(Yaml::Hash(Hash::new()));
    if matches!(e, Yaml::Null) {
        *e = Yaml::Hash(Hash::new());
    }
    match e {
        Yaml::Hash(m) => Ok(m),
        _ => bail!("`{k}` is not a mapping"),
    }
}

/// The sequence at `h[k]`, created (appended) when absent or null.
fn array_at<'a>(h: &'a mut Hash, k: &str) -> Result<&'a mut Vec<Yaml>> {
    let e = h.entry(key(k)).or_insert(Yaml::Array(Vec::new()));
    if matches!(e, Yaml::Null) {
        *e = Yaml::Array(Vec::new());
    }
    match e {
        Yaml::Array(a) => Ok(a),
        _ => bail!("`{k}` is not a sequence"),
    }
}

fn inject_doc(
    doc: &mut Yaml,
    args: &InjectArgs,
    what: &str,
    notes: &mut Vec<String>,
) -> Result<()> {
    let Yaml::Hash(h) = doc else {
        notes.push(format!("{what}: not a mapping, left unchanged"));
        return Ok(());
    };
    let kind = str_of(h, "kind").unwrap_or("").to_owned();
    let name = get(h, "metadata")
        .and_then(Yaml::as_hash)
        .and_then(|m| str_of(m, "name"))
        .unwrap_or("")
        .to_owned();
    let what = format!("{what} ({kind} {name})");
    let res = match kind.as_str() {
        "List" | "PodList" | "DeploymentList" => {
            if let Some(Yaml::Array(items)) = get_mut(h, "items") {
                for (i, item) in items.iter_mut().enumerate() {
                    inject_doc(item, args, &format!("{what} item {}", i + 1), notes)?;
                }
            }
            return Ok(());
        }
        "Pod" => inject_template(h, &name, args, &what, notes),
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" => {
            match get_mut(h, "spec").and_then(|s| match s {
                Yaml::Hash(s) => get_mut(s, "template"),
                _ => None,
            }) {
                Some(Yaml::Hash(t)) => inject_template(t, &name, args, &what, notes),
                _ => bail!("{what}: no spec.template"),
            }
        }
        "CronJob" => {
            let t = get_mut(h, "spec")
                .and_then(|s| match s {
                    Yaml::Hash(s) => get_mut(s, "jobTemplate"),
                    _ => None,
                })
                .and_then(|j| match j {
                    Yaml::Hash(j) => get_mut(j, "spec"),
                    _ => None,
                })
                .and_then(|s| match s {
                    Yaml::Hash(s) => get_mut(s, "template"),
                    _ => None,
                });
            match t {
                Some(Yaml::Hash(t)) => inject_template(t, &name, args, &what, notes),
                _ => bail!("{what}: no spec.jobTemplate.spec.template"),
            }
        }
        _ => {
            notes.push(format!("{what}: kind not injectable, left unchanged"));
            Ok(())
        }
    };
    res.with_context(|| format!("inject: {what}"))
}

/// Injects into a pod (`metadata` + `spec`): a Pod document or a pod template.
fn inject_template(
    t: &mut Hash,
    workload: &str,
    args: &InjectArgs,
    what: &str,
    notes: &mut Vec<String>,
) -> Result<()> {
    let meta = hash_at(t, "metadata")?;
    let disabled = get(meta, "annotations")
        .and_then(Yaml::as_hash)
        .and_then(|a| str_of(a, INJECT_ANNOTATION))
        == Some("disabled");
    if disabled {
        notes.push(format!(
            "{what}: annotated {INJECT_ANNOTATION}: disabled, left unchanged"
        ));
        return Ok(());
    }
    let labels = get(meta, "labels").and_then(Yaml::as_hash);
    let service = args
        .service_name
        .clone()
        .or_else(|| {
            labels
                .and_then(|l| str_of(l, "app.kubernetes.io/name"))
                .map(str::to_owned)
        })
        .or_else(|| labels.and_then(|l| str_of(l, "app")).map(str::to_owned))
        .unwrap_or_else(|| {
            if workload.is_empty() {
                "mcp-server".to_owned()
            } else {
                workload.to_owned()
            }
        });
    let ann = hash_at(meta, "annotations")?;
    let linkerd_annotated = linkerd_inbound_port(ann)?;
    ann.insert(key(INJECTED_ANNOTATION), key(env!("CARGO_PKG_VERSION")));
    if args.scrape_annotations {
        ann.insert(key("prometheus.io/scrape"), key("true"));
        ann.insert(key("prometheus.io/port"), key(&args.admin_port.to_string()));
        ann.insert(key("prometheus.io/path"), key("/metrics"));
    }

    let spec = hash_at(t, "spec")?;
    let mut tls = args.tls_ports.clone();
    if args.mesh && tls.is_empty() {
        tls.extend(linkerd_annotated.or_else(|| linkerd_proxy_port(spec)));
    }
    let filter = capture_filter(&app_ports(spec, args, what, notes), &tls);
    let container = sidecar(args, &service, &filter);
    place_container(spec, container, args.native_sidecar)?;
    place_volume(spec, &args.spool_size_limit)
}

/// Containers a mesh injects next to the application: their ports are the proxy's own
/// (admin, metrics, inbound), never the MCP server's.
const MESH_PROXIES: [&str; 2] = ["istio-proxy", "linkerd-proxy"];
/// Linkerd's default inbound proxy port: meshed clients connect to it (mTLS) on eth0.
pub const LINKERD_INBOUND_PORT: u16 = 4143;

/// Linkerd's inbound port when the pod template asks for Linkerd injection
/// (`linkerd.io/inject: enabled`; `config.linkerd.io/inbound-port` overrides the port).
/// Errors: an inbound-port annotation that is not a port number.
fn linkerd_inbound_port(ann: &Hash) -> Result<Option<u16>> {
    if str_of(ann, "linkerd.io/inject") != Some("enabled") {
        return Ok(None);
    }
    let custom = match get(ann, "config.linkerd.io/inbound-port") {
        None => None,
        Some(Yaml::String(s)) => s.parse().ok().filter(|p| *p != 0),
        Some(Yaml::Integer(n)) => u16::try_from(*n).ok().filter(|p| *p != 0),
        Some(_) => None,
    };
    match (get(ann, "config.linkerd.io/inbound-port"), custom) {
        (Some(v), None) => {
            let shown = match v {
                Yaml::String(s) => s.clone(),
                Yaml::Integer(n) => n.to_string(),
                other => format!("{other:?}"),
            };
            bail!("config.linkerd.io/inbound-port {shown:?} is not a port")
        }
        _ => Ok(Some(custom.unwrap_or(LINKERD_INBOUND_PORT))),
    }
}

/// The inbound port of an already injected `linkerd-proxy` container (its port named
/// `linkerd-proxy`, else the default).
fn linkerd_proxy_port(spec: &Hash) -> Option<u16> {
    let proxy = ["containers", "initContainers"]
        .iter()
        .filter_map(|l| get(spec, l).and_then(Yaml::as_vec))
        .flatten()
        .filter_map(Yaml::as_hash)
        .find(|c| str_of(c, "name") == Some("linkerd-proxy"))?;
    let named = get(proxy, "ports")
        .and_then(Yaml::as_vec)
        .into_iter()
        .flatten()
        .filter_map(Yaml::as_hash)
        .find(|p| str_of(p, "name") == Some("linkerd-proxy"))
        .and_then(|p| get(p, "containerPort").and_then(Yaml::as_i64))
        .and_then(|n| u16::try_from(n).ok());
    Some(named.unwrap_or(LINKERD_INBOUND_PORT))
}

/// The MCP server ports to capture: `--port`, else every TCP `containerPort` of the pod's
/// containers but ours and a mesh's proxy (native sidecars included, init containers not).
fn app_ports(spec: &Hash, args: &InjectArgs, what: &str, notes: &mut Vec<String>) -> Vec<u16> {
    let mut ports = args.ports.clone();
    if !ports.is_empty() {
        return ports;
    }
    for list in ["containers", "initContainers"] {
        let Some(Yaml::Array(cs)) = get(spec, list) else {
            continue;
        };
        for c in cs.iter().filter_map(Yaml::as_hash) {
            let name = str_of(c, "name").unwrap_or("");
            if name == CONTAINER_NAME || MESH_PROXIES.contains(&name) {
                continue;
            }
            if list == "initContainers" && str_of(c, "restartPolicy") != Some("Always") {
                continue;
            }
            let Some(Yaml::Array(ps)) = get(c, "ports") else {
                continue;
            };
            for p in ps.iter().filter_map(Yaml::as_hash) {
                let tcp = str_of(p, "protocol").is_none_or(|x| x == "TCP");
                if let Some(n) = get(p, "containerPort").and_then(Yaml::as_i64)
                    && tcp
                    && let Ok(n) = u16::try_from(n)
                    && !ports.contains(&n)
                {
                    ports.push(n);
                }
            }
        }
    }
    if ports.is_empty() {
        notes.push(format!(
            "{what}: no containerPort and no --port: capturing all TCP traffic"
        ));
    }
    ports
}

/// The BPF filter for the application ports `app` plus the TLS-only ports `tls` (mesh
/// mode): `tcp port A or tcp port B …`, on whatever interface is captured (with `-i any`,
/// the loopback leg and eth0 alike); all TCP when no application port is known.
pub fn capture_filter(app: &[u16], tls: &[u16]) -> String {
    if app.is_empty() {
        return "tcp".to_owned();
    }
    let mut ports: Vec<u16> = app.to_vec();
    for p in tls {
        if !ports.contains(p) {
            ports.push(*p);
        }
    }
    ports
        .iter()
        .map(|p| format!("tcp port {p}"))
        .collect::<Vec<_>>()
        .join(" or ")
}

/// Puts the sidecar in `containers` (or `initContainers` for a native sidecar): replaced
/// where it is, else appended; removed from the other list.
fn place_container(spec: &mut Hash, container: Yaml, native: bool) -> Result<()> {
    let (target, other) = if native {
        ("initContainers", "containers")
    } else {
        ("containers", "initContainers")
    };
    if let Some(Yaml::Array(o)) = get_mut(spec, other) {
        o.retain(|c| c.as_hash().and_then(|c| str_of(c, "name")) != Some(CONTAINER_NAME));
    }
    if matches!(get(spec, other), Some(Yaml::Array(a)) if a.is_empty()) && other == "initContainers"
    {
        spec.remove(&key(other));
    }
    let list = array_at(spec, target)?;
    match list
        .iter()
        .position(|c| c.as_hash().and_then(|c| str_of(c, "name")) == Some(CONTAINER_NAME))
    {
        Some(i) => list[i] = container,
        None => list.push(container),
    }
    Ok(())
}

/// Puts the spool `emptyDir` volume in `volumes`: replaced where it is, else appended.
fn place_volume(spec: &mut Hash, size_limit: &str) -> Result<()> {
    let volumes = array_at(spec, "volumes")?;
    let vol = map(vec![
        ("name", key(SPOOL_VOLUME)),
        ("emptyDir", map(vec![("sizeLimit", key(size_limit))])),
    ]);
    match volumes
        .iter()
        .position(|v| v.as_hash().and_then(|v| str_of(v, "name")) == Some(SPOOL_VOLUME))
    {
        Some(i) => volumes[i] = vol,
        None => volumes.push(vol),
    }
    Ok(())
}

fn map(items: Vec<(&str, Yaml)>) -> Yaml {
    let mut h = Hash::new();
    for (k, v) in items {
        h.insert(key(k), v);
    }
    Yaml::Hash(h)
}

fn env_value(name: &str, value: &str) -> Yaml {
    map(vec![("name", key(name)), ("value", key(value))])
}

fn env_field(name: &str, path: &str) -> Yaml {
    map(vec![
        ("name", key(name)),
        (
            "valueFrom",
            map(vec![("fieldRef", map(vec![("fieldPath", key(path))]))]),
        ),
    ])
}

fn env_secret(name: &str, secret: &str, k: &str, optional: bool) -> Yaml {
    let mut r = vec![("name", key(secret)), ("key", key(k))];
    if optional {
        r.push(("optional", Yaml::Boolean(true)));
    }
    map(vec![
        ("name", key(name)),
        ("valueFrom", map(vec![("secretKeyRef", map(r))])),
    ])
}

fn probe(path: &str, period: i64, failures: i64) -> Yaml {
    map(vec![
        (
            "httpGet",
            map(vec![("path", key(path)), ("port", key(ADMIN_PORT_NAME))]),
        ),
        ("periodSeconds", Yaml::Integer(period)),
        ("failureThreshold", Yaml::Integer(failures)),
    ])
}

/// The sidecar's security context in mode `mode`: `NET_RAW` the only capability, read-only
/// root filesystem, seccomp `RuntimeDefault` (deploy/README.md, "Capture privileges").
fn security_context(mode: SecurityMode) -> Yaml {
    let caps = map(vec![
        ("drop", Yaml::Array(vec![key("ALL")])),
        ("add", Yaml::Array(vec![key("NET_RAW")])),
    ]);
    match mode {
        SecurityMode::Nonroot => map(vec![
            ("runAsNonRoot", Yaml::Boolean(true)),
            ("runAsUser", Yaml::Integer(65532)),
            ("runAsGroup", Yaml::Integer(65532)),
            // File capabilities need exec without no_new_privs (deploy/README.md).
            ("allowPrivilegeEscalation", Yaml::Boolean(true)),
            ("readOnlyRootFilesystem", Yaml::Boolean(true)),
            ("capabilities", caps),
            ("seccompProfile", map(vec![("type", key("RuntimeDefault"))])),
        ]),
        SecurityMode::Root => map(vec![
            ("runAsNonRoot", Yaml::Boolean(false)),
            ("runAsUser", Yaml::Integer(0)),
            ("allowPrivilegeEscalation", Yaml::Boolean(false)),
            ("readOnlyRootFilesystem", Yaml::Boolean(true)),
            ("capabilities", caps),
            ("seccompProfile", map(vec![("type", key("RuntimeDefault"))])),
        ]),
    }
}

/// The sidecar container for service `service` capturing with BPF `filter`.
fn sidecar(args: &InjectArgs, service: &str, filter: &str) -> Yaml {
    let mut env = vec![
        env_field("POD_NAME", "metadata.name"),
        env_field("POD_NAMESPACE", "metadata.namespace"),
        env_field("NODE_NAME", "spec.nodeName"),
        env_field("MCPTAP_INSTANCE_ID", &args.instance_id_field),
        env_value("OTEL_SERVICE_NAME", service),
        env_value(
            "MCPTAP_INTERFACE",
            if args.mesh { "any" } else { &args.interface },
        ),
        env_value("MCPTAP_FILTER", filter),
        env_value("MCPTAP_ADMIN_ADDR", &format!("0.0.0.0:{}", args.admin_port)),
        env_value("MCPTAP_SPOOL_DIR", SPOOL_PATH),
        env_value("MCPTAP_SPOOL_MAX_BYTES", &args.spool_max_bytes.to_string()),
        env_value("MCPTAP_LOG_FORMAT", "json"),
    ];
    if let Some(u) = &args.clickhouse_url {
        env.push(env_value("CLICKHOUSE_URL", u));
    }
    if let Some(s) = &args.clickhouse_secret {
        env.push(env_secret("CLICKHOUSE_URL", s, "url", false));
        env.push(env_secret("CLICKHOUSE_USER", s, "user", true));
        env.push(env_secret("CLICKHOUSE_PASSWORD", s, "password", true));
    }
    let sc = security_context(args.security);
    let mut items = vec![
        ("name", key(CONTAINER_NAME)),
        ("image", key(&args.image)),
        ("imagePullPolicy", key(&args.image_pull_policy)),
    ];
    if args.native_sidecar {
        items.push(("restartPolicy", key("Always")));
    }
    items.extend([
        ("env", Yaml::Array(env)),
        (
            "ports",
            Yaml::Array(vec![map(vec![
                ("name", key(ADMIN_PORT_NAME)),
                ("containerPort", Yaml::Integer(i64::from(args.admin_port))),
                ("protocol", key("TCP")),
            ])]),
        ),
        (
            "resources",
            map(vec![
                (
                    "requests",
                    map(vec![
                        ("cpu", key(&args.cpu_request)),
                        ("memory", key(&args.memory_request)),
                    ]),
                ),
                (
                    "limits",
                    map(vec![
                        ("cpu", key(&args.cpu_limit)),
                        ("memory", key(&args.memory_limit)),
                    ]),
                ),
            ]),
        ),
        ("readinessProbe", probe("/readyz", 5, 3)),
        ("livenessProbe", probe("/healthz", 10, 3)),
        ("securityContext", sc),
        (
            "volumeMounts",
            Yaml::Array(vec![map(vec![
                ("name", key(SPOOL_VOLUME)),
                ("mountPath", key(SPOOL_PATH)),
            ])]),
        ),
    ]);
    map(items)
}

/// Loads a YAML stream like `YamlLoader`, but reads plain scalars the way
/// Kubernetes (YAML 1.1) does where the Core schema differs in a way that
/// matters for manifests: `0644` is octal (420).
fn load(input: &str) -> Result<Vec<Yaml>, ScanError> {
    let mut l = Loader::default();
    let mut p = Parser::new_from_str(input);
    p.load(&mut l, true)?;
    match l.error {
        Some(e) => Err(e),
        None => Ok(l.docs),
    }
}

#[derive(Default)]
struct Loader {
    docs: Vec<Yaml>,
    stack: Vec<(Yaml, usize)>,
    keys: Vec<Option<Yaml>>,
    anchors: std::collections::BTreeMap<usize, Yaml>,
    error: Option<ScanError>,
}

impl MarkedEventReceiver for Loader {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.error.is_some() {
            return;
        }
        let r = match ev {
            Event::DocumentEnd => {
                let d = self.stack.pop().map_or(Yaml::BadValue, |n| n.0);
                self.stack.clear();
                self.docs.push(d);
                Ok(())
            }
            Event::SequenceStart(aid, _) => {
                self.stack.push((Yaml::Array(Vec::new()), aid));
                Ok(())
            }
            Event::MappingStart(aid, _) => {
                self.stack.push((Yaml::Hash(Hash::new()), aid));
                self.keys.push(None);
                Ok(())
            }
            Event::SequenceEnd => match self.stack.pop() {
                Some(n) => self.insert(n, mark),
                None => Ok(()),
            },
            Event::MappingEnd => {
                self.keys.pop();
                match self.stack.pop() {
                    Some(n) => self.insert(n, mark),
                    None => Ok(()),
                }
            }
            Event::Scalar(v, style, aid, tag) => self.insert((scalar(v, style, tag), aid), mark),
            Event::Alias(id) => {
                let n = self.anchors.get(&id).cloned().unwrap_or(Yaml::BadValue);
                self.insert((n, 0), mark)
            }
            _ => Ok(()),
        };
        if let Err(e) = r {
            self.error = Some(e);
        }
    }
}

impl Loader {
    fn insert(&mut self, (node, aid): (Yaml, usize), mark: Marker) -> Result<(), ScanError> {
        if aid > 0 {
            self.anchors.insert(aid, node.clone());
        }
        let Some((parent, _)) = self.stack.last_mut() else {
            self.stack.push((node, aid));
            return Ok(());
        };
        match parent {
            Yaml::Array(a) => a.push(node),
            Yaml::Hash(h) => match self.keys.last_mut() {
                Some(slot @ None) => *slot = Some(node),
                Some(slot) => {
                    let k = slot.take().unwrap_or(Yaml::Null);
                    if h.contains_key(&k) {
                        return Err(ScanError::new_string(
                            mark,
                            format!("{k:?}: duplicated key in mapping"),
                        ));
                    }
                    h.insert(k, node);
                }
                None => {}
            },
            _ => {}
        }
        Ok(())
    }
}

fn scalar(v: String, style: TScalarStyle, tag: Option<Tag>) -> Yaml {
    if style != TScalarStyle::Plain {
        return Yaml::String(v);
    }
    if tag.is_some_and(|t| t.handle == "tag:yaml.org,2002:" && t.suffix == "str") {
        return Yaml::String(v);
    }
    let b = v.as_bytes();
    if b.len() > 1
        && b.first() == Some(&b'0')
        && b.iter().all(|c| (b'0'..=b'7').contains(c))
        && let Ok(n) = i64::from_str_radix(&v[1..], 8)
    {
        return Yaml::Integer(n);
    }
    Yaml::from_str(&v)
}
