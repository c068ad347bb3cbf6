//! Bare iteration over a capture file through the collector's own file source
//! (`collector/src/source.rs`: 256 KiB reads, `mcptap_wire::pcapfile`): the
//! upper bound of `mcptap-collector --pcap` since it stopped reading files
//! through libpcap. `pcap_count` (libpcap) stays the issue's reference; this one
//! shows how much of the collector's time is left for decoding.
//!
//! ```sh
//! cargo run --release -p mcptap-collector --example file_count -- FILE.pcap
//! ```
//! Prints `packets=N bytes=B ts_xor=X secs=S` on stdout, like `pcap_count`.

use mcptap_collector::source::{End, Source};
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path: PathBuf = std::env::args()
        .nth(1)
        .ok_or("usage: file_count FILE.pcap")?
        .into();
    let started = std::time::Instant::now();
    let mut source = Source::open_file(&path)?;
    let (mut packets, mut bytes, mut ts_xor) = (0u64, 0u64, 0u64);
    loop {
        match source.next_packet() {
            Ok(Some(p)) => {
                packets += 1;
                bytes += p.data.len() as u64;
                ts_xor ^= p.ts;
            }
            Ok(None) => {}
            Err(End::Done) => break,
            Err(End::Truncated {
                offset, message, ..
            }) => return Err(format!("damaged at byte offset {offset}: {message}").into()),
        }
    }
    println!(
        "packets={packets} bytes={bytes} ts_xor={ts_xor} secs={:.3}",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
