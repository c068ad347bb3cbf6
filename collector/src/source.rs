//! Packet sources: a pcap/pcapng file or a live interface, both through libpcap.
//!
//! This is the only module that links libpcap (ARCHITECTURE.md invariant).
//! Timestamps are requested at nanosecond precision from libpcap, so a
//! microsecond capture is scaled (×1000) by libpcap itself.

use crate::pcapfile;
use anyhow::{Context, Result, anyhow};
use mcptap_wire::TimestampNs;
use mcptap_wire::link::LinkType;
use pcap::{Active, Capture, Offline, Precision};
use std::path::{Path, PathBuf};

/// One packet handed to the pipeline.
pub struct Packet<'a> {
    /// Capture timestamp, ns since the Unix epoch.
    pub ts: TimestampNs,
    /// Captured bytes (at most the snap length).
    pub data: &'a [u8],
}

/// What ended a source.
#[derive(Debug)]
pub enum End {
    /// The whole file was read, or a live capture was stopped.
    Done,
    /// The file was cut or corrupt after `packets` packets; `offset` is the byte
    /// offset where the last good record ended (the bad record starts there).
    Truncated {
        /// Packets read before the cut.
        packets: u64,
        /// Byte offset of the first unreadable record.
        offset: u64,
        /// libpcap's message.
        message: String,
    },
}

/// Kernel counters of a live capture (`pcap_stats`).
#[derive(Debug, Clone, Copy, Default)]
pub struct KernelStats {
    /// Packets received by the filter.
    pub received: u64,
    /// Packets dropped because the buffer was full.
    pub dropped: u64,
    /// Packets dropped by the interface or driver.
    pub if_dropped: u64,
}

enum Handle {
    File {
        cap: Capture<Offline>,
        path: PathBuf,
    },
    Live(Capture<Active>),
}

/// A libpcap handle plus what the pipeline needs to know about it.
pub struct Source {
    handle: Handle,
    link: LinkType,
    packets: u64,
    bytes: u64,
}

impl Source {
    /// Opens a capture file. Errors name the file and, for a file that is not a
    /// capture, the byte offset (0: the header).
    pub fn open_file(path: &Path) -> Result<Source> {
        std::fs::metadata(path).with_context(|| format!("{}: cannot read", path.display()))?;
        let cap = Capture::from_file_with_precision(path, Precision::Nano).map_err(|e| {
            anyhow!(
                "{}: not a pcap or pcapng capture (at byte offset 0): {e}",
                path.display()
            )
        })?;
        let dlt = cap.get_datalink().0;
        let link = LinkType::from_linktype(dlt).ok_or_else(|| {
            anyhow!(
                "{}: unsupported link type {dlt} (at byte offset 0)",
                path.display()
            )
        })?;
        Ok(Source {
            handle: Handle::File {
                cap,
                path: path.to_owned(),
            },
            link,
            packets: 0,
            bytes: 0,
        })
    }

    /// Opens a live capture on `iface` in immediate mode with an optional BPF filter.
    pub fn open_live(
        iface: &str,
        filter: Option<&str>,
        immediate: bool,
        buffer_bytes: i32,
    ) -> Result<Source> {
        // Immediate mode (the default) hands each packet over as soon as it arrives. On
        // Linux libpcap then uses a TPACKET_V2 ring of fixed-size slots, each sized for the
        // snapshot length, so the snap length is kept at the largest IP packet plus a link
        // header (65 535 + 14): a 32 MiB ring then holds ~500 packets. Buffered mode uses
        // TPACKET_V3 blocks, handed over when full or after the 50 ms timeout: denser at
        // high packet rates (BENCHMARKS.md, live capture).
        let snaplen = if immediate { 65_535 + 14 } else { 262_144 };
        let mut cap = Capture::from_device(iface)
            .with_context(|| format!("interface {iface}"))?
            .immediate_mode(immediate)
            .promisc(false)
            .snaplen(snaplen)
            .timeout(50)
            .buffer_size(buffer_bytes.max(1024 * 1024))
            .precision(Precision::Nano)
            .open()
            .with_context(|| format!("cannot capture on interface {iface} (needs CAP_NET_RAW)"))?;
        if let Some(f) = filter {
            cap.filter(f, true)
                .with_context(|| format!("bad BPF filter {f:?}"))?;
        }
        // With TPACKET_V3, libpcap's blocking read can wait forever when no packet
        // arrives (the timeout only flushes partly filled blocks), which would make
        // SIGTERM and --duration wait for traffic. Non-blocking reads let the caller
        // poll: `next` answers `Ok(None)` when nothing is ready.
        let cap = cap
            .setnonblock()
            .with_context(|| format!("interface {iface}: non-blocking mode"))?;
        let dlt = cap.get_datalink().0;
        let link = LinkType::from_linktype(dlt)
            .ok_or_else(|| anyhow!("interface {iface}: unsupported link type {dlt}"))?;
        Ok(Source {
            handle: Handle::Live(cap),
            link,
            packets: 0,
            bytes: 0,
        })
    }

    /// Link type of every packet of this source.
    pub fn link_type(&self) -> LinkType {
        self.link
    }

    /// Whether this is a live capture.
    pub fn is_live(&self) -> bool {
        matches!(self.handle, Handle::Live(_))
    }

    /// Bytes of the file consumed so far (pcap record headers included), for progress.
    pub fn bytes_read(&self) -> u64 {
        self.bytes
    }

    /// Reads the next packet. `Ok(None)` when a live capture has nothing ready
    /// (the caller waits a little and polls again);
    /// `Err(end)` when the source is over.
    pub fn next_packet(&mut self) -> std::result::Result<Option<Packet<'_>>, End> {
        // The path is only needed on the error path: borrow it there (a clone
        // per packet was a malloc + free per packet).
        let (res, path) = match &mut self.handle {
            Handle::File { cap, path } => (cap.next_packet(), Some(path.as_path())),
            Handle::Live(cap) => (cap.next_packet(), None),
        };
        match res {
            Ok(p) => {
                self.packets += 1;
                self.bytes += 16 + u64::from(p.header.caplen);
                let sec = u64::try_from(p.header.ts.tv_sec).unwrap_or(0);
                let nsec = u64::try_from(p.header.ts.tv_usec).unwrap_or(0);
                Ok(Some(Packet {
                    ts: sec.saturating_mul(1_000_000_000).saturating_add(nsec),
                    data: p.data,
                }))
            }
            Err(pcap::Error::TimeoutExpired) => Ok(None),
            Err(pcap::Error::NoMorePackets) => Err(End::Done),
            Err(e) => Err(End::Truncated {
                packets: self.packets,
                offset: path
                    .and_then(|p| pcapfile::offset_after_packets(p, self.packets))
                    .unwrap_or(0),
                message: e.to_string(),
            }),
        }
    }

    /// Kernel drop counters of a live capture; `None` for files.
    pub fn kernel_stats(&mut self) -> Option<KernelStats> {
        match &mut self.handle {
            Handle::Live(cap) => cap.stats().ok().map(|s| KernelStats {
                received: u64::from(s.received),
                dropped: u64::from(s.dropped),
                if_dropped: u64::from(s.if_dropped),
            }),
            Handle::File { .. } => None,
        }
    }
}
