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

    /// Marks the first `len` unread bytes as consumed.
    #[inline]
    fn consume(&mut self, len: usize) {
        self.start += len;
        self.offset += len as u64;
    }

    /// The unread bytes.
    #[inline]
    fn unread(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }
}

impl FileReader {
    /// The next whole record at the start of the unread bytes (a packet or a
    /// record to skip), reading more of the file as the decoder asks; not
    /// consumed yet. `Ok(None)` at a clean end of the file; `Err(message)` when
    /// the record at `input.offset` is cut, damaged or cannot be read.
    // Inlined into `next_packet`: out of line it cost 1.2% of the instructions
    // of a replay (callgrind, c20.pcap).
    #[inline(always)]
    fn record(&mut self) -> std::result::Result<Option<Record>, String> {
        loop {
            match self.decoder.next(self.input.unread()) {
                Ok(Record::NeedMore { at_least }) => {
                    let have = self.input.end - self.input.start;
                    if self.input.eof {
                        return match have {
                            0 => Ok(None),
                            _ => Err(format!(
                                "truncated record: {have} bytes left, it needs at least {at_least}"
                            )),
                        };
                    }
                    self.input
                        .want(at_least)
                        .map_err(|e| format!("read error: {e}"))?;
                }
                Ok(record) => return Ok(Some(record)),
                Err(e) => return Err(e.to_string()),
            }
        }
    }
}

/// A capture file or a libpcap handle, plus what the pipeline needs to know about it.
pub struct Source {
    handle: Handle,
    link: LinkType,
    packets: u64,
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
        // pcapng: consume the blocks before the first interface description
        // (the decoder rejects a packet block that comes before it).
        while r.decoder.link_type().is_none() {
            let at = r.input.offset;
            match r.record() {
                Ok(Some(Record::Skip { len })) => r.input.consume(len),
                Ok(Some(_) | None) => {
                    return Err(anyhow!(
                        "{name}: no interface description before the packets (at byte offset {at})"
                    ));
                }
                Err(e) => return Err(anyhow!("{name}: {e} (at byte offset {at})")),
            }
        }
        let dlt = r.decoder.link_type().unwrap_or_default();
        let link = LinkType::from_linktype(dlt)
            .ok_or_else(|| anyhow!("{name}: unsupported link type {dlt} (at byte offset 0)"))?;
        Ok(Source {
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

    /// Bytes of the file consumed so far (headers included), for progress; 0
    /// for a live capture.
    pub fn bytes_read(&self) -> u64 {
        match &self.handle {
            Handle::File(f) => f.input.offset,
            Handle::Live(_) => 0,
        }
    }

    /// Reads the next packet. `Ok(None)` when a live capture has nothing ready
    /// (the caller waits a little and polls again);
    /// `Err(end)` when the source is over.
    pub fn next_packet(&mut self) -> std::result::Result<Option<Packet<'_>>, End> {
        let f = match &mut self.handle {
            Handle::File(f) => f,
            Handle::Live(cap) => {
                return match cap.next_packet() {
                    Ok(p) => {
                        self.packets += 1;
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
            match f.record() {
                Ok(Some(Record::Packet { ts, data, len })) => {
                    let at = f.input.start;
                    f.input.consume(len);
                    self.packets += 1;
                    return Ok(Some(Packet {
                        ts,
                        data: f
                            .input
                            .buf
                            .get(at + data.start..at + data.end)
                            .unwrap_or(&[]),
                    }));
                }
                Ok(Some(Record::Skip { len })) => f.input.consume(len),
                Ok(Some(Record::NeedMore { .. })) => {} // `record` never answers this
                Ok(None) => return Err(End::Done),
                Err(message) => {
                    return Err(End::Truncated {
                        packets: self.packets,
                        offset: f.input.offset,
                        message,
                    });
                }
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
