//! Live capture under exactly the privileges the sidecar is given (deploy/README.md,
//! "Capture privileges"; SECURITY.md): `CAP_NET_RAW` and nothing else.
//!
//! In a pair of network namespaces joined by a veth, a small MCP-ish HTTP server runs on the
//! capture side; the debug collector captures live (`--duration 3`, the default buffered mode:
//! a TPACKET_V3 ring and a BPF filter) while curl sends `tools/list` requests, and the spans and
//! the summary must count every request:
//! - `nonroot` (the default): UID/GID 65532, no supplementary groups, bounding set `NET_RAW`
//!   only, no inheritable or ambient capability, `no_new_privs` off, a copy of the binary with
//!   the file capability `cap_net_raw+ep`. The collector is started through `sh -c 'exec …'`, so
//!   the process that execs it holds no capability at all (as a container entrypoint run as
//!   non-root): the file capability is the only source of `NET_RAW`.
//! - `root`: UID 0, bounding set `NET_RAW` only, `no_new_privs` on, the plain binary.
//!
//! The running collector's `/proc/<pid>/status` is read: its effective, permitted and bounding
//! sets are exactly `CAP_NET_RAW`, with the expected UID and `NoNewPrivs`. Negative checks: the
//! same without `NET_RAW` (no file capability; `no_new_privs` on in non-root mode, which is what
//! `allowPrivilegeEscalation: false` does; a bounding set without it as root) fails at start
//! with an error that names the interface and `CAP_NET_RAW`.
//!
//! Mesh mode (`-i any` with the filter `inject --mesh` writes) runs under the `nonroot`
//! privileges too: requests over the veth, from 127.0.0.6 to the pod IP (Istio's hop) and to
//! 127.0.0.1 (a plain proxy's) are decoded with those peers, and a TLS connection (openssl
//! s_server) is counted, SNI included, not decoded.
//!
//! Needs root, iproute2, util-linux `setpriv`, libcap2-bin `setcap`, curl, openssl and python3;
//! runs when `MCPTAP_LIVE_TESTS=1` (set by scripts/test.sh as root), and then fails rather than
//! skips when a tool is missing. Namespaces `mtp<pid><n>{a,b}`, subnet 10.81.0.0/24. About 8 s.

use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_mcptap-collector");
/// `CAP_NET_RAW` (bit 13) as `/proc/<pid>/status` prints a capability set.
const NET_RAW_ONLY: &str = "0000000000002000";
const SERVER_PY: &str = r#"
import http.server, json, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        req = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
        body = json.dumps({"jsonrpc": "2.0", "id": req.get("id"), "result": {"tools": []}}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("0.0.0.0", int(sys.argv[1])), H).serve_forever()
"#;

/// Two namespaces (`a`: the client, `b`: the pod) joined by a veth, a server in `b` on port
/// 8000, and a scratch directory; everything removed on drop.
pub struct Pod {
    a: String,
    b: String,
    /// The pod side of the veth (in `b`).
    pub veth: String,
    dir: PathBuf,
    children: Vec<Child>,
}

fn sh(args: &[&str]) {
    let st = Command::new(args[0])
        .args(&args[1..])
        .status()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(st.success(), "{args:?} failed: {st}");
}

impl Pod {
    /// Sets up the namespaces, the veth (10.81.0.1 in `a`, 10.81.0.2 in `b`) and the server.
    pub fn new(n: u32) -> Pod {
        let id = format!("mtp{}{n}", std::process::id() % 100_000);
        let dir = std::env::temp_dir().join(format!("{id}-priv"));
        std::fs::create_dir_all(dir.join("out")).expect("scratch dir");
        // Root-owned and not writable by others (it holds a binary with a file capability);
        // the collector, UID 65532, writes its output into `out` only.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        std::os::unix::fs::chown(dir.join("out"), Some(65532), Some(65532)).expect("chown");
        let mut pod = Pod {
            a: format!("{id}a"),
            b: format!("{id}b"),
            veth: format!("{id}vb"),
            dir,
            children: Vec::new(),
        };
        let va = format!("{id}va");
        sh(&["ip", "netns", "add", &pod.a]);
        sh(&["ip", "netns", "add", &pod.b]);
        sh(&[
            "ip", "link", "add", &va, "netns", &pod.a, "type", "veth", "peer", "name", &pod.veth,
            "netns", &pod.b,
        ]);
        sh(&[
            "ip",
            "-n",
            &pod.a,
            "addr",
            "add",
            "10.81.0.1/24",
            "dev",
            &va,
        ]);
        sh(&[
            "ip",
            "-n",
            &pod.b,
            "addr",
            "add",
            "10.81.0.2/24",
            "dev",
            &pod.veth,
        ]);
        for (ns, dev) in [(&pod.a, va.as_str()), (&pod.b, pod.veth.as_str())] {
            sh(&["ip", "-n", ns, "link", "set", dev, "up"]);
            sh(&["ip", "-n", ns, "link", "set", "lo", "up"]);
        }
        let py = pod.dir.join("server.py");
        std::fs::write(&py, SERVER_PY).expect("server.py");
        let server = Command::new("ip")
            .args(["netns", "exec", &pod.b, "python3"])
            .arg(&py)
            .arg("8000")
            .spawn()
            .expect("start python3 server");
        pod.children.push(server);
        pod.wait_server();
        pod
    }

    /// Starts a TLS server (openssl s_server, a self-signed certificate for `mcp.test` made
    /// here) in `b` on `port`.
    pub fn tls_server(&mut self, port: u16) {
        let (key, cert) = (self.dir.join("key.pem"), self.dir.join("cert.pem"));
        let st = Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
            ])
            .args(["-nodes", "-subj", "/CN=mcp.test", "-days", "1", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stderr(Stdio::null())
            .status()
            .expect("openssl req");
        assert!(st.success(), "openssl req failed");
        let child = Command::new("ip")
            .args([
                "netns", "exec", &self.b, "openssl", "s_server", "-quiet", "-www",
            ])
            .args(["-accept", &port.to_string(), "-cert"])
            .arg(&cert)
            .arg("-key")
            .arg(&key)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("openssl s_server");
        self.children.push(child);
        for _ in 0..100 {
            if self.tls_get("a", "mcp.test", &format!("10.81.0.2:{port}")) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the TLS server did not start");
    }

    /// One HTTPS GET from namespace `from` to `addr` with SNI `sni`; true when it answered.
    pub fn tls_get(&self, from: &str, sni: &str, addr: &str) -> bool {
        let (ip, port) = addr.rsplit_once(':').expect("ip:port");
        let o = Command::new("ip")
            .args([
                "netns",
                "exec",
                self.ns(from),
                "curl",
                "-sk",
                "-o",
                "/dev/null",
            ])
            .args(["-w", "%{http_code}", "--max-time", "5", "--resolve"])
            .arg(format!("{sni}:{port}:{ip}"))
            .arg(format!("https://{sni}:{port}/"))
            .output()
            .expect("curl");
        o.stdout == b"200"
    }

    fn wait_server(&self) {
        for _ in 0..100 {
            if self.post("a", "10.81.0.2:8000", 0) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the test server did not start");
    }

    /// The scratch directory (root's, mode 0755; `out/` belongs to UID 65532).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The name of namespace `a` (client) or `b` (pod).
    pub fn ns(&self, which: &str) -> &str {
        if which == "a" { &self.a } else { &self.b }
    }

    /// Sends one `tools/list` request with JSON-RPC id `id` from namespace `from` to `addr`;
    /// true when it got a 200.
    pub fn post(&self, from: &str, addr: &str, id: u32) -> bool {
        self.post_from(from, None, addr, id)
    }

    /// As `post`, from source address `bind` when given (curl `--interface`).
    pub fn post_from(&self, from: &str, bind: Option<&str>, addr: &str, id: u32) -> bool {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", self.ns(from), "curl"]);
        if let Some(b) = bind {
            c.args(["--interface", b]);
        }
        let o = c
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--max-time",
                "5",
            ])
            .args(["-H", "content-type: application/json", "-d"])
            .arg(format!(
                r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/list"}}"#
            ))
            .arg(format!("http://{addr}/mcp"))
            .output()
            .expect("curl");
        o.stdout == b"200"
    }
}

impl Drop for Pod {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for n in [&self.a, &self.b] {
            let _ = Command::new("ip").args(["netns", "del", n]).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The privileges a run gets (deploy/README.md names the two modes).
#[derive(Clone, Copy, Debug)]
pub enum Privs {
    /// UID/GID 65532, bounding set `NET_RAW`, no_new_privs off; binary with `cap_net_raw+ep`.
    Nonroot,
    /// As `Nonroot` but with no_new_privs (`allowPrivilegeEscalation: false`): must fail.
    NonrootNoNewPrivs,
    /// As `Nonroot` but the binary has no file capability: must fail.
    NonrootNoFileCap,
    /// UID 0, bounding set `NET_RAW`, no_new_privs on.
    Root,
    /// UID 0, bounding set without `NET_RAW` (only `NET_ADMIN`), no_new_privs on: must fail.
    RootWithoutNetRaw,
}

/// A copy of the collector in `dir`, with the file capability `cap_net_raw+ep` when `fcap`.
pub fn binary_copy(dir: &Path, fcap: bool) -> PathBuf {
    let p = dir.join(if fcap { "mc-fcap" } else { "mc-plain" });
    if !p.exists() {
        std::fs::copy(BIN, &p).expect("copy the collector");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        if fcap {
            sh(&["setcap", "cap_net_raw+ep", p.to_str().expect("utf8 path")]);
        }
    }
    p
}

/// `ip netns exec <pod> setpriv … sh -c 'exec "$0" "$@"' <collector> <args>`: every exec in
/// the chain keeps the pid, so the child's pid is the collector's.
pub fn collector(pod: &Pod, privs: Privs, args: &[&str]) -> Command {
    let (bin, set): (PathBuf, &[&str]) = match privs {
        Privs::Nonroot => (binary_copy(pod.dir(), true), &[]),
        Privs::NonrootNoNewPrivs => (binary_copy(pod.dir(), true), &["--no-new-privs"]),
        Privs::NonrootNoFileCap => (binary_copy(pod.dir(), false), &[]),
        Privs::Root => (binary_copy(pod.dir(), false), &["--no-new-privs"]),
        Privs::RootWithoutNetRaw => (binary_copy(pod.dir(), false), &["--no-new-privs"]),
    };
    let bounding = match privs {
        Privs::RootWithoutNetRaw => "--bounding-set=-all,+net_admin",
        _ => "--bounding-set=-all,+net_raw",
    };
    let mut c = Command::new("ip");
    c.args(["netns", "exec", pod.ns("b"), "setpriv"]);
    if !matches!(privs, Privs::Root | Privs::RootWithoutNetRaw) {
        c.args(["--reuid=65532", "--regid=65532", "--clear-groups"]);
    }
    c.args(["--inh-caps=-all", "--ambient-caps=-all", bounding])
        .args(set)
        .args(["sh", "-c", r#"exec "$0" "$@""#])
        .arg(bin)
        .args(args);
    c
}

/// `Name:` line of `/proc/<pid>/status`.
fn status_field(status: &str, name: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .map(|v| v.trim().to_owned())
        .unwrap_or_else(|| panic!("no {name} in {status}"))
}

/// Asserts the running collector holds `CAP_NET_RAW` and nothing else, with UID `uid` and
/// `NoNewPrivs` `nnp`.
fn assert_holds_net_raw_only(pid: u32, uid: &str, nnp: &str) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let name = if uid == "0" { "mc-plain" } else { "mc-fcap" };
    assert_eq!(status_field(&status, "Name:"), name, "the collector itself");
    for set in ["CapEff:", "CapPrm:", "CapBnd:"] {
        assert_eq!(
            status_field(&status, set),
            NET_RAW_ONLY,
            "{set} in {status}"
        );
    }
    for set in ["CapInh:", "CapAmb:"] {
        assert_eq!(status_field(&status, set), "0000000000000000", "{set}");
    }
    let uids = status_field(&status, "Uid:");
    assert!(
        uids.split_whitespace().all(|u| u == uid),
        "Uid: {uids}, want {uid}"
    );
    assert_eq!(status_field(&status, "Groups:"), "", "supplementary groups");
    assert_eq!(status_field(&status, "NoNewPrivs:"), nnp);
}

/// Spans in an OTLP/JSON lines file.
pub fn spans(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let req: Value = serde_json::from_str(line).expect("valid JSON line");
        for rs in req["resourceSpans"].as_array().into_iter().flatten() {
            for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
                out.extend(ss["spans"].as_array().into_iter().flatten().cloned());
            }
        }
    }
    out
}

/// Runs the collector for 3 s under `privs` on `iface` with `filter`, calling `traffic` once
/// it is capturing; returns the spans and the summary.
pub fn capture(
    pod: &Pod,
    privs: Privs,
    iface: &str,
    filter: &str,
    traffic: &dyn Fn(&Pod),
) -> (Vec<Value>, String) {
    // Without CAP_DAC_OVERRIDE, UID 0 cannot write into UID 65532's 0700 `out` either.
    let dir = match privs {
        Privs::Root => pod.dir().to_owned(),
        _ => pod.dir().join("out"),
    };
    let out = dir.join(format!("{privs:?}.jsonl"));
    let child = collector(
        pod,
        privs,
        &[
            "-i",
            iface,
            "--filter",
            filter,
            "--duration",
            "3",
            "--output",
        ],
    )
    .arg(format!("otlp-json={}", out.display()))
    .stderr(Stdio::piped())
    .spawn()
    .expect("start the collector");
    std::thread::sleep(Duration::from_millis(800));
    let (uid, nnp) = match privs {
        Privs::Root => ("0", "1"),
        _ => ("65532", "0"),
    };
    assert_holds_net_raw_only(child.id(), uid, nnp);
    traffic(pod);
    let o = child.wait_with_output().expect("collector");
    let summary = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "collector under {privs:?}: {summary}");
    (spans(&out), summary)
}

/// Starts the collector under `privs` where capture must be refused; returns its output.
pub fn refused(pod: &Pod, privs: Privs) -> Output {
    let o = collector(pod, privs, &["-i", &pod.veth, "--duration", "1"])
        .output()
        .expect("run the collector");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{privs:?} must fail: {err}");
    assert!(
        err.contains(&format!(
            "error: cannot capture on interface {} (needs CAP_NET_RAW)",
            pod.veth
        )) && err.contains("Operation not permitted"),
        "{privs:?}: unclear error: {err}"
    );
    o
}

/// Sends `tools/list` requests with the JSON-RPC ids `ids` (see `Pod::post_from`).
fn requests(
    pod: &Pod,
    from: &str,
    bind: Option<&str>,
    addr: &str,
    ids: std::ops::RangeInclusive<u32>,
) {
    for id in ids {
        assert!(
            pod.post_from(from, bind, addr, id),
            "request {id} to {addr} failed"
        );
    }
}

fn live() -> bool {
    let on = std::env::var("MCPTAP_LIVE_TESTS").ok().as_deref() == Some("1");
    if !on {
        eprintln!("live_privileges: skipped (set MCPTAP_LIVE_TESTS=1 as root)");
    }
    on
}

/// Asserts `spans` are the `n` `tools/list` requests sent, ids 1..=n, and the summary says so.
fn assert_counted(spans: &[Value], summary: &str, n: usize) {
    assert_eq!(spans.len(), n, "{summary}");
    let mut ids: Vec<String> = spans
        .iter()
        .map(|s| {
            assert_eq!(s["name"], "tools/list", "{s}");
            let a = s["attributes"].as_array().expect("attributes");
            let id = a.iter().find(|kv| kv["key"] == "jsonrpc.request.id");
            id.map(|kv| kv["value"]["stringValue"].as_str().unwrap_or("").to_owned())
                .unwrap_or_default()
        })
        .collect();
    ids.sort_by_key(|i| i.parse::<u64>().unwrap_or(u64::MAX));
    let want: Vec<String> = (1..=n).map(|i| i.to_string()).collect();
    assert_eq!(ids, want, "JSON-RPC ids of the spans");
    assert!(summary.contains(&format!("spans {n}\n")), "{summary}");
    assert!(
        summary.contains(&format!(
            "http: requests {n}  responses {n}  parse-errors 0"
        )),
        "{summary}"
    );
}

#[test]
fn nonroot_with_the_file_capability_captures_and_nothing_else_does() {
    if !live() {
        return;
    }
    let pod = Pod::new(1);
    let (spans, summary) = capture(&pod, Privs::Nonroot, &pod.veth, "tcp port 8000", &|p| {
        requests(p, "a", None, "10.81.0.2:8000", 1..=4)
    });
    assert_counted(&spans, &summary, 4);
    refused(&pod, Privs::NonrootNoFileCap);
    refused(&pod, Privs::NonrootNoNewPrivs);
}

#[test]
fn root_with_net_raw_only_and_no_new_privs_captures() {
    if !live() {
        return;
    }
    let pod = Pod::new(2);
    let (spans, summary) = capture(&pod, Privs::Root, &pod.veth, "tcp port 8000", &|p| {
        requests(p, "a", None, "10.81.0.2:8000", 1..=3)
    });
    assert_counted(&spans, &summary, 3);
    refused(&pod, Privs::RootWithoutNetRaw);
}

/// `MCPTAP_INTERFACE` and `MCPTAP_FILTER` of the sidecar `inject` makes with `args`.
fn injected_capture(args: &[&str]) -> (String, String) {
    use std::io::Write;
    let skeleton = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: []}\n";
    let mut c = Command::new(BIN)
        .arg("inject")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("inject");
    c.stdin
        .take()
        .expect("stdin")
        .write_all(skeleton.as_bytes())
        .expect("write");
    let o = c.wait_with_output().expect("inject");
    assert!(o.status.success());
    let docs = yaml_rust2::YamlLoader::load_from_str(&String::from_utf8_lossy(&o.stdout))
        .expect("inject output is YAML");
    let env = docs[0]["spec"]["containers"][0]["env"]
        .as_vec()
        .expect("env")
        .clone();
    let value = |n: &str| {
        env.iter()
            .find(|e| e["name"].as_str() == Some(n))
            .and_then(|e| e["value"].as_str())
            .unwrap_or_else(|| panic!("no {n}"))
            .to_owned()
    };
    (value("MCPTAP_INTERFACE"), value("MCPTAP_FILTER"))
}

/// The `client.address` of the span with JSON-RPC id `id`.
fn client_of(spans: &[Value], id: &str) -> String {
    let attr = |s: &Value, k: &str| {
        s["attributes"]
            .as_array()
            .and_then(|a| a.iter().find(|kv| kv["key"] == k))
            .and_then(|kv| kv["value"]["stringValue"].as_str())
            .map(str::to_owned)
    };
    spans
        .iter()
        .find(|s| attr(s, "jsonrpc.request.id").as_deref() == Some(id))
        .and_then(|s| attr(s, "client.address"))
        .unwrap_or_else(|| panic!("no span with id {id}"))
}

/// Mesh mode as `inject --mesh` writes it, under the default privileges: `-i any` decodes the
/// plaintext legs a proxy in the pod uses (Istio 1.10+: 127.0.0.6 to the pod IP, over `lo`;
/// older Istio and plain proxies: to 127.0.0.1) and the ones from outside on the veth, and
/// counts the TLS connection on the veth (SNI read, nothing decoded).
#[test]
fn mesh_mode_decodes_the_loopback_leg_and_counts_tls() {
    if !live() {
        return;
    }
    let (iface, filter) = injected_capture(&["--mesh", "--port", "8000", "--tls-port", "8443"]);
    assert_eq!(
        (iface.as_str(), filter.as_str()),
        ("any", "tcp port 8000 or tcp port 8443")
    );
    let mut pod = Pod::new(3);
    pod.tls_server(8443);
    let (spans, summary) = capture(&pod, Privs::Nonroot, &iface, &filter, &|p| {
        requests(p, "a", None, "10.81.0.2:8000", 1..=2);
        requests(p, "b", Some("127.0.0.6"), "10.81.0.2:8000", 3..=4);
        requests(p, "b", None, "127.0.0.1:8000", 5..=5);
        assert!(p.tls_get("a", "mcp.test", "10.81.0.2:8443"), "TLS request");
    });
    assert_counted(&spans, &summary, 5);
    for (id, client) in [
        ("1", "10.81.0.1"),
        ("3", "127.0.0.6"),
        ("4", "127.0.0.6"),
        ("5", "127.0.0.1"),
    ] {
        assert_eq!(client_of(&spans, id), client, "client of request {id}");
    }
    let tls = summary
        .lines()
        .find(|l| l.starts_with("tls "))
        .unwrap_or_else(|| panic!("no tls line: {summary}"));
    assert!(
        tls.contains("connections 1 ") && tls.contains("mcp.test"),
        "{tls}"
    );
}
