//! Packet sources: a pcap/pcapng file, or a live interface through libpcap.
//!
//! This is the only module that links libpcap (ARCHITECTURE.md invariant). Live
//! timestamps are requested at nanosecond precision from libpcap.
//!
//! Files are read with plain `read` calls of [`READ_BLOCK`] bytes into one
//! buffer and decoded record by record by [`mcptap_wire::pcapfile`] (pcap-parser).
//! libpcap's file reader costs more than the rest of the read path together: it
//! `fread`s each record through a 4 KiB stdio buffer, about a quarter of the CPU
//! time of a replay (BENCHMARKS.md, round 7). Reading the buffer ourselves also
//! gives the exact byte offset of a damaged record.

use anyhow::{Context, Result, anyhow};
use mcptap_wire::TimestampNs;
use mcptap_wire::link::LinkType;
use mcptap_wire::pcapfile::{CaptureFile, Record};
use pcap::{Active, Capture, Precision};
use std::fs::File;
use std::io::Read;
use std::path::Path;

/// Bytes asked of each `read` of a capture file. The buffer grows past this
/// only for a record that does not fit (at most
/// [`mcptap_wire::pcapfile::MAX_BLOCK_LEN`]).
pub const READ_BLOCK: usize = 256 * 1024;

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
        /// What is wrong with the record there.
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
    File(FileReader),
    Live(Capture<Active>),
}

/// A capture file and its record decoder.
struct FileReader {
    input: ReadBuf,
    decoder: CaptureFile,
}

/// A file read in blocks: `buf[start..end]` holds the bytes from file offset
/// `offset` on that no record has consumed yet.
struct ReadBuf {
    /// The file, or standard input for `-`.
    file: Box<dyn Read + Send>,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// File offset of `buf[start]`, bytes.
    offset: u64,
    /// `read` returned 0.
    eof: bool,
}

impl ReadBuf {
    /// Moves the unread bytes to the front and reads until at least `at_least`
    /// of them are buffered or the file ends. Each `read` asks for all the free
    /// space (about [`READ_BLOCK`] bytes) but returns as soon as the bytes
    /// asked for are there, so a FIFO or pipe (`--pcap /dev/stdin`) is decoded
    /// as it arrives. I/O errors are returned as they are.
    fn want(&mut self, at_least: usize) -> std::io::Result<()> {
        if self.end - self.start >= at_least || self.eof {
            return Ok(());
        }
        self.buf.copy_within(self.start..self.end, 0);
        self.end -= self.start;
        self.start = 0;
        let size = at_least.max(READ_BLOCK);
        if self.buf.len() < size {
            self.buf.resize(size, 0);
        }
        while self.end < at_least && !self.eof {
            match self.file.read(&mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(n) => self.end += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// A capture file or a libpcap handle, plus what the pipeline needs to know about it.
pub struct Source {
    handle: Handle,
    link: LinkType,
    packets: u64,
    bytes: u64,
}

impl Source {
    /// Opens a capture file (pcap or pcapng, see [`mcptap_wire::pcapfile`]; `-`
    /// is standard input) and
    /// reads up to its first interface description (pcapng) to learn the link
    /// type. Errors name the file and the byte offset of what is wrong (0: the
    /// header).
    pub fn open_file(path: &Path) -> Result<Source> {
        let name = path.display();
        let file: Box<dyn Read + Send> = if path == Path::new("-") {
            Box::new(std::io::stdin())
        } else {
            Box::new(File::open(path).with_context(|| format!("{name}: cannot read"))?)
        };
        let mut input = ReadBuf {
            file,
            buf: vec![0; READ_BLOCK],
            start: 0,
            end: 0,
            offset: 0,
            eof: false,
        };
        let (decoder, header) = loop {
            match CaptureFile::open(&input.buf[..input.end]) {
                Ok(Some(opened)) => break opened,
                Ok(None) if !input.eof => input
                    .want(input.end + 1)
                    .with_context(|| format!("{name}: cannot read"))?,
                Ok(None) | Err(_) => {
                    return Err(anyhow!(
                        "{name}: not a pcap or pcapng capture (at byte offset 0)"
                    ));
                }
            }
        };
        input.start = header;
        input.offset = header as u64;
        let mut r = FileReader { input, decoder };
        // pcapng: consume the blocks before the first interface description.
        while r.decoder.link_type().is_none() {
            let input = &mut r.input;
            let at = input.offset;
            match r.decoder.next(&input.buf[input.start..input.end]) {
                Ok(Record::Skip { len }) => {
                    input.start += len;
                    input.offset += len as u64;
                }
                Ok(Record::NeedMore { at_least }) if !input.eof => input
                    .want(at_least)
                    .with_context(|| format!("{name}: cannot read"))?,
                Ok(Record::NeedMore { .. }) => {
                    return Err(anyhow!(
                        "{name}: capture ends before any interface description (at byte offset {at})"
                    ));
                }
                Ok(Record::Packet { .. }) => {
                    return Err(anyhow!(
                        "{name}: packet before any interface description (at byte offset {at})"
                    ));
                }
                Err(e) => return Err(anyhow!("{name}: {e} (at byte offset {at})")),
            }
        }
        let dlt = r.decoder.link_type().unwrap_or_default();
        let link = LinkType::from_linktype(dlt)
            .ok_or_else(|| anyhow!("{name}: unsupported link type {dlt} (at byte offset 0)"))?;
        Ok(Source {
            bytes: r.input.offset,
            handle: Handle::File(r),
            link,
            packets: 0,
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
        let (decoder, r) = match &mut self.handle {
            Handle::File(f) => (&mut f.decoder, &mut f.input),
            Handle::Live(cap) => {
                return match cap.next_packet() {
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
                        offset: 0,
                        message: e.to_string(),
                    }),
                };
            }
        };
        loop {
            let (packets, offset) = (self.packets, r.offset);
            let truncated = |message: String| End::Truncated {
                packets,
                offset,
                message,
            };
            match decoder.next(&r.buf[r.start..r.end]) {
                Ok(Record::Packet { ts, data, len }) => {
                    let at = r.start;
                    r.start += len;
                    r.offset += len as u64;
                    self.packets += 1;
                    self.bytes = r.offset;
                    return Ok(Some(Packet {
                        ts,
                        data: r.buf.get(at + data.start..at + data.end).unwrap_or(&[]),
                    }));
                }
                Ok(Record::Skip { len }) => {
                    r.start += len;
                    r.offset += len as u64;
                    self.bytes = r.offset;
                }
                Ok(Record::NeedMore { at_least }) => {
                    let have = r.end - r.start;
                    if r.eof {
                        return Err(if have == 0 {
                            End::Done
                        } else {
                            truncated(format!(
                                "truncated record: {have} bytes left, it needs at least {at_least}"
                            ))
                        });
                    }
                    if let Err(e) = r.want(at_least) {
                        return Err(truncated(format!("read error: {e}")));
                    }
                }
                Err(e) => return Err(truncated(e.to_string())),
            }
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
