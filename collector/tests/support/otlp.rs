//! Real OTLP receivers from the Python venv (`scripts/test-venv.sh`):
//! `collector/tests/support/otlp_sink.py` over oteltest's gRPC and HTTP sinks.

use super::{ChildGuard, free_port, repo_root};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// `.venv/bin/python` after running `scripts/test-venv.sh` once per test binary
/// (idempotent: it only installs what is missing). Panics with the script's
/// output if it fails (it needs PyPI).
pub fn venv_python() -> PathBuf {
    static PY: OnceLock<PathBuf> = OnceLock::new();
    PY.get_or_init(|| {
        let root = repo_root();
        let out = Command::new("bash")
            .arg(root.join("scripts/test-venv.sh"))
            .current_dir(&root)
            .output()
            .expect("running scripts/test-venv.sh");
        assert!(
            out.status.success(),
            "scripts/test-venv.sh failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        root.join(".venv/bin/python")
    })
    .clone()
}

/// Protocol of [`OtlpSink`].
#[derive(Debug, Clone, Copy)]
pub enum SinkProtocol {
    /// oteltest `GrpcSink`.
    Grpc,
    /// oteltest `HttpSink`.
    Http,
}

/// `collector/tests/support/otlp_sink.py` running on a free port, writing every
/// received request as a JSON line to `out`.
pub struct OtlpSink {
    /// Port on 127.0.0.1.
    pub port: u16,
    /// JSON-lines file of received requests.
    pub out: PathBuf,
    _child: ChildGuard,
}

impl OtlpSink {
    /// Starts the sink and waits (up to 30 s) until it accepts connections.
    pub fn start(protocol: SinkProtocol, dir: &Path) -> OtlpSink {
        let py = venv_python();
        let port = free_port();
        let out = dir.join(format!("received-{port}.jsonl"));
        let script = repo_root().join("collector/tests/support/otlp_sink.py");
        let mut child = Command::new(py)
            .arg(script)
            .args([
                "--protocol",
                match protocol {
                    SinkProtocol::Grpc => "grpc",
                    SinkProtocol::Http => "http",
                },
            ])
            .args(["--port", &port.to_string()])
            .arg("--out")
            .arg(&out)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting otlp_sink.py");
        let stdout = child.stdout.take().expect("sink stdout");
        let guard = ChildGuard(child);
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(l) if l.trim() == "READY" => break,
                Ok(_) => continue,
                Err(_) => panic!("otlp_sink.py did not become ready on port {port}"),
            }
        }
        OtlpSink {
            port,
            out,
            _child: guard,
        }
    }

    /// Received requests (parsed JSON lines) once at least `spans` spans have
    /// arrived, or whatever arrived after `timeout`.
    pub fn wait_for_spans(&self, spans: usize, timeout: Duration) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let reqs = self.requests();
            let n: usize = reqs.iter().map(count_spans).sum();
            if n >= spans || Instant::now() >= deadline {
                return reqs;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(&self.out).unwrap_or_default();
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).expect("sink JSON line"))
            .collect()
    }
}

/// Spans in one received request.
pub fn count_spans(req: &serde_json::Value) -> usize {
    req["resourceSpans"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|rs| rs["scopes"].as_array().into_iter().flatten())
        .map(|s| s["spans"].as_array().map_or(0, Vec::len))
        .sum()
}
