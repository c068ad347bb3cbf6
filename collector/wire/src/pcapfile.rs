//! Capture files (pcap and pcapng) decoded record by record from a byte buffer.
//!
//! Pure: the caller reads the file in large blocks and hands the unread bytes to
//! [`CaptureFile::next`], which answers with one [`Record`]: a packet, a record
//! without a packet (to skip), or "need more bytes" (a normal outcome). The record
//! and block layouts are parsed by the `pcap-parser` crate (rusticata); this module
//! adds what a packet source needs on top: timestamps in ns since the Unix epoch,
//! per-interface time resolution and offset (pcapng), one link type per file, and
//! limits on record sizes so a corrupt length cannot make the caller buffer
//! gigabytes.
//!
//! Formats and their sources:
//! - pcap ("libpcap format"), either byte order, µs (`0xa1b2c3d4`) or ns
//!   (`0xa1b23c4d`) magic, and the "modified" variant (`0xa1b2cd34`):
//!   draft-ietf-opsawg-pcap §4–5. A record's captured length may be at most
//!   [`MAX_CAPLEN`] bytes, libpcap's `MAXIMUM_SNAPLEN`.
//! - pcapng: draft-ietf-opsawg-pcapng §3–4. Section Header Blocks set the byte
//!   order and reset the interfaces; Interface Description Blocks give each
//!   interface its link type, `if_tsresol` (§4.2, default 10^-6 s) and
//!   `if_tsoffset` (seconds). Enhanced and Simple Packet Blocks carry packets
//!   (a Simple Packet Block has no timestamp: 0). Every other block is skipped.
//!   A block may be at most [`MAX_BLOCK_LEN`] bytes, libpcap's limit. The obsolete
//!   Packet Block (type 2, not written since 2009) is an error, not a silent skip.
//!
//! Like libpcap, a pcapng file must use one link type for all its interfaces.
//! Two interface fields are decoded here rather than taken from pcap-parser 0.17,
//! which gets them wrong: power-of-two `if_tsresol` values, and `if_tsoffset` in
//! big-endian sections (unit tests cover both).

use crate::TimestampNs;
use pcap_parser::PcapError;
use pcap_parser::nom;
use pcap_parser::pcapng::{Block, OptionCode, PcapNGOption};
use pcap_parser::traits::PcapNGPacketBlock;
use std::fmt;
use std::ops::Range;

/// Largest captured length of a pcap record, in bytes (libpcap's `MAXIMUM_SNAPLEN`).
pub const MAX_CAPLEN: u32 = 262_144;

/// Largest pcapng block, in bytes (libpcap's `MAX_BLOCKSIZE`, 16 MiB).
pub const MAX_BLOCK_LEN: usize = 16 * 1024 * 1024;

/// Size of a pcap record header, in bytes (the "modified" format's is 24).
const RECORD_HEADER: usize = 16;

/// First bytes of a pcapng Section Header Block (its block type, the same in
/// both byte orders).
const SHB_TYPE: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];

/// pcapng block type of the obsolete Packet Block.
const OBSOLETE_PACKET_BLOCK: u32 = 2;

/// What [`CaptureFile::next`] found at the start of the buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// One packet. `data` is the range of the captured bytes inside the buffer
    /// given to `next` (a range, so the caller can refill its buffer afterwards);
    /// `len` is the size of the whole record in bytes (headers and padding
    /// included): the caller consumes that many bytes.
    Packet {
        /// Capture timestamp, ns since the Unix epoch (0 when the record has none).
        ts: TimestampNs,
        /// Captured bytes, as a range of the buffer.
        data: Range<usize>,
        /// Bytes of the record.
        len: usize,
    },
    /// A record without a packet (pcapng section, interface, statistics, name
    /// resolution, custom blocks...): consume `len` bytes.
    Skip {
        /// Bytes of the record.
        len: usize,
    },
    /// The record starting at the buffer's first byte is not complete: the
    /// caller should provide at least `at_least` bytes (counted from the same
    /// start) and call again. At the end of the file this means the file is cut.
    NeedMore {
        /// Bytes needed from the start of the buffer, more than it has; never
        /// above [`MAX_BLOCK_LEN`]. The same for every buffer holding a prefix
        /// of the record, however long.
        at_least: usize,
    },
}

/// Why a capture file cannot be read further. Bytes before the failing record
/// were fine; the caller reports the failing record's byte offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileError {
    /// The first bytes are neither a pcap header nor a pcapng Section Header Block.
    NotACapture,
    /// A record or block claims more bytes than the format's limit.
    TooLarge {
        /// Bytes the record claims.
        len: u64,
        /// The limit in bytes ([`MAX_CAPLEN`] of data or [`MAX_BLOCK_LEN`]).
        max: u64,
    },
    /// A pcapng interface uses another link type than the first one.
    LinkTypeChanged {
        /// The file's link type (LINKTYPE_* value).
        first: i32,
        /// The other interface's link type.
        other: i32,
    },
    /// A pcapng packet names an interface no Interface Description Block
    /// declared in the current section.
    UnknownInterface(u32),
    /// An interface's `if_tsresol` is outside what fits a 64-bit counter.
    BadTimestampResolution(u8),
    /// The obsolete pcapng Packet Block (type 2).
    ObsoletePacketBlock,
    /// The record does not parse (pcap-parser's reason).
    Malformed(String),
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileError::NotACapture => f.write_str("not a pcap or pcapng capture"),
            FileError::TooLarge { len, max } => {
                write!(
                    f,
                    "record of {len} bytes is bigger than the maximum of {max}"
                )
            }
            FileError::LinkTypeChanged { first, other } => write!(
                f,
                "an interface has link type {other}, different from the first interface's {first}"
            ),
            FileError::UnknownInterface(id) => {
                write!(f, "packet block names undeclared interface {id}")
            }
            FileError::BadTimestampResolution(r) => {
                write!(f, "interface has an invalid if_tsresol {r:#04x}")
            }
            FileError::ObsoletePacketBlock => {
                f.write_str("obsolete pcapng Packet Block (type 2) is not supported")
            }
            FileError::Malformed(why) => write!(f, "malformed record: {why}"),
        }
    }
}

impl std::error::Error for FileError {}

/// A pcapng interface: what its packets' timestamps mean.
#[derive(Debug, Clone, Copy)]
struct Interface {
    /// Timestamp units per second (`if_tsresol`).
    units_per_s: u64,
    /// Seconds added to every timestamp (`if_tsoffset`).
    offset_s: i64,
}

#[derive(Debug, Clone, Copy)]
enum Format {
    Pcap {
        big_endian: bool,
        nanos: bool,
        modified: bool,
    },
    PcapNg {
        big_endian: bool,
    },
}

/// Decoder state of one capture file: its format, link type and (pcapng) the
/// interfaces of the current section.
#[derive(Debug, Clone)]
pub struct CaptureFile {
    format: Format,
    link: Option<i32>,
    interfaces: Vec<Interface>,
}

impl CaptureFile {
    /// Reads the file header from the file's first bytes.
    ///
    /// `Ok(Some((file, len)))`: the header takes `len` bytes (24 for pcap; 0 for
    /// pcapng, whose Section Header Block [`next`](Self::next) reads as a
    /// record). `Ok(None)`: fewer bytes than the header needs (at most 24); at
    /// the end of the file that means [`FileError::NotACapture`].
    ///
    /// # Errors
    /// [`FileError::NotACapture`] when the magic number is neither format's.
    pub fn open(buf: &[u8]) -> Result<Option<(CaptureFile, usize)>, FileError> {
        let Some(magic) = buf.get(..4) else {
            return Ok(None);
        };
        if magic == SHB_TYPE {
            let file = CaptureFile {
                format: Format::PcapNg { big_endian: false },
                link: None,
                interfaces: Vec::new(),
            };
            return Ok(Some((file, 0)));
        }
        match pcap_parser::parse_pcap_header(buf) {
            Ok((rest, header)) => {
                let format = Format::Pcap {
                    big_endian: header.is_bigendian(),
                    nanos: header.is_nanosecond_precision(),
                    modified: header.is_modified_format(),
                };
                let file = CaptureFile {
                    format,
                    link: Some(header.network.0),
                    interfaces: Vec::new(),
                };
                Ok(Some((file, buf.len() - rest.len())))
            }
            Err(nom::Err::Incomplete(_)) => Ok(None),
            Err(_) => Err(FileError::NotACapture),
        }
    }

    /// The file's link type (LINKTYPE_* value): known after [`open`](Self::open)
    /// for pcap, after the first Interface Description Block for pcapng.
    pub fn link_type(&self) -> Option<i32> {
        self.link
    }

    /// Decodes the record at the start of `buf` (the bytes after the last
    /// consumed record). Never panics; `buf` may end anywhere.
    ///
    /// # Errors
    /// A [`FileError`] for a record that can never be read; the file cannot be
    /// read past it.
    pub fn next(&mut self, buf: &[u8]) -> Result<Record, FileError> {
        let record = match self.format {
            Format::Pcap {
                big_endian,
                nanos,
                modified,
            } => pcap_record(buf, big_endian, nanos, modified),
            Format::PcapNg { big_endian } => self.pcapng_block(buf, big_endian),
        }?;
        // Every answer makes progress: a record of at least one byte, or a
        // request for more bytes than `buf` has (the caller's loop relies on it).
        match record {
            Record::Packet { len: 0, .. } | Record::Skip { len: 0 } => {
                Err(FileError::Malformed("record of 0 bytes".into()))
            }
            Record::NeedMore { at_least } if at_least <= buf.len() => {
                Err(FileError::Malformed("parser asked for bytes it has".into()))
            }
            ok => Ok(ok),
        }
    }

    fn pcapng_block(&mut self, buf: &[u8], big_endian: bool) -> Result<Record, FileError> {
        // The block's total length decides whether it is complete, so the answer
        // does not depend on how much of the file is buffered: pcap-parser's
        // streaming parsers also report fields that run past a complete block
        // as "incomplete".
        let Some(len) = block_len(buf, big_endian)? else {
            return Ok(Record::NeedMore { at_least: 12 });
        };
        if len > MAX_BLOCK_LEN {
            return Err(FileError::TooLarge {
                len: len as u64,
                max: MAX_BLOCK_LEN as u64,
            });
        }
        let Some(block) = buf.get(..len) else {
            return Ok(Record::NeedMore { at_least: len });
        };
        // A Section Header Block reads the same in both byte orders (its type is a
        // palindrome; pcap-parser takes the order from its byte-order magic).
        let parsed = if big_endian {
            pcap_parser::parse_block_be(block)
        } else {
            pcap_parser::parse_block_le(block)
        };
        let block = match parsed {
            Ok((_, block)) => block,
            Err(nom::Err::Incomplete(_)) => {
                return Err(FileError::Malformed(
                    "block fields run past the block's length".into(),
                ));
            }
            Err(nom::Err::Error(e) | nom::Err::Failure(e)) => {
                return Err(FileError::Malformed(describe(&e)));
            }
        };
        match block {
            Block::SectionHeader(shb) => {
                self.format = Format::PcapNg {
                    big_endian: shb.big_endian(),
                };
                self.interfaces.clear();
                Ok(Record::Skip { len })
            }
            Block::InterfaceDescription(idb) => {
                let link = idb.linktype.0;
                match self.link {
                    None => self.link = Some(link),
                    Some(first) if first != link => {
                        return Err(FileError::LinkTypeChanged { first, other: link });
                    }
                    Some(_) => {}
                }
                let units_per_s = units_per_second(idb.if_tsresol)
                    .ok_or(FileError::BadTimestampResolution(idb.if_tsresol))?;
                self.interfaces.push(Interface {
                    units_per_s,
                    offset_s: ts_offset(&idb.options, big_endian),
                });
                Ok(Record::Skip { len })
            }
            Block::EnhancedPacket(epb) => {
                let iface = self
                    .interfaces
                    .get(epb.if_id as usize)
                    .ok_or(FileError::UnknownInterface(epb.if_id))?;
                let units = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
                let ts = ns_of(units, *iface);
                Ok(Record::Packet {
                    ts,
                    data: range_in(buf, epb.packet_data()),
                    len,
                })
            }
            Block::SimplePacket(spb) => {
                if self.interfaces.is_empty() {
                    return Err(FileError::UnknownInterface(0));
                }
                Ok(Record::Packet {
                    ts: 0,
                    data: range_in(buf, spb.packet_data()),
                    len,
                })
            }
            Block::Unknown(b) if b.block_type == OBSOLETE_PACKET_BLOCK => {
                Err(FileError::ObsoletePacketBlock)
            }
            _ => Ok(Record::Skip { len }),
        }
    }
}

/// One record of a pcap file (draft-ietf-opsawg-pcap §5).
fn pcap_record(
    buf: &[u8],
    big_endian: bool,
    nanos: bool,
    modified: bool,
) -> Result<Record, FileError> {
    let header = if modified { 24 } else { RECORD_HEADER };
    let parsed = match (modified, big_endian) {
        (true, _) => pcap_parser::parse_pcap_frame_modified(buf),
        (false, false) => pcap_parser::parse_pcap_frame(buf),
        (false, true) => pcap_parser::parse_pcap_frame_be(buf),
    };
    match parsed {
        Ok((rest, frame)) => {
            if frame.caplen > MAX_CAPLEN {
                return Err(FileError::TooLarge {
                    len: (header as u64) + u64::from(frame.caplen),
                    max: (header as u64) + u64::from(MAX_CAPLEN),
                });
            }
            let frac = u64::from(frame.ts_usec);
            let frac_ns = if nanos { frac } else { frac * 1_000 };
            let ts = u64::from(frame.ts_sec)
                .saturating_mul(1_000_000_000)
                .saturating_add(frac_ns);
            Ok(Record::Packet {
                ts,
                data: range_in(buf, frame.data),
                len: buf.len() - rest.len(),
            })
        }
        Err(e) => incomplete(buf.len(), e, header + MAX_CAPLEN as usize),
    }
}

/// Maps a pcap-parser error to [`Record::NeedMore`] or to a [`FileError`].
/// `have` is the buffer's length and `max` bounds the record's total size, in bytes.
fn incomplete(have: usize, e: nom::Err<PcapError<&[u8]>>, max: usize) -> Result<Record, FileError> {
    match e {
        nom::Err::Incomplete(needed) => {
            let more = match needed {
                nom::Needed::Size(n) => n.get(),
                nom::Needed::Unknown => 1,
            };
            let at_least = have.saturating_add(more);
            if at_least > max {
                Err(FileError::TooLarge {
                    len: at_least as u64,
                    max: max as u64,
                })
            } else {
                Ok(Record::NeedMore { at_least })
            }
        }
        nom::Err::Error(e) | nom::Err::Failure(e) => Err(FileError::Malformed(describe(&e))),
    }
}

/// Total length of the pcapng block at the start of `buf` (its Block Total
/// Length field, §3.1, in the section's byte order; a Section Header Block's own
/// byte-order magic decides for it), `None` before 12 bytes are there.
fn block_len(buf: &[u8], big_endian: bool) -> Result<Option<usize>, FileError> {
    let (Some(ty), Some(len), Some(bom)) = (buf.get(..4), buf.get(4..8), buf.get(8..12)) else {
        return Ok(None);
    };
    let len = <[u8; 4]>::try_from(len).unwrap_or_default();
    let big_endian = if ty == SHB_TYPE {
        match bom {
            [0x4d, 0x3c, 0x2b, 0x1a] => false,
            [0x1a, 0x2b, 0x3c, 0x4d] => true,
            _ => return Err(FileError::Malformed("bad byte-order magic".into())),
        }
    } else {
        big_endian
    };
    let len = if big_endian {
        u32::from_be_bytes(len)
    } else {
        u32::from_le_bytes(len)
    } as usize;
    if len < 12 {
        return Err(FileError::Malformed(format!("block length {len} under 12")));
    }
    Ok(Some(len))
}

/// Timestamp units per second of an `if_tsresol` value (pcapng §4.2): 10^v, or
/// 2^(v & 0x7f) when the high bit is set; `None` beyond what a `u64` holds.
/// (`pcap_parser::build_ts_resolution` 0.17 rejects every power-of-two value:
/// it compares the byte with the high bit still set against 63.)
fn units_per_second(tsresol: u8) -> Option<u64> {
    let exp = u32::from(tsresol & 0x7f);
    if tsresol & 0x80 == 0 {
        10u64.checked_pow(exp)
    } else {
        1u64.checked_shl(exp).filter(|_| exp < 64)
    }
}

/// An interface's `if_tsoffset` option (pcapng §4.2: a signed 64-bit count of
/// seconds, in the section's byte order), 0 when absent or not 8 bytes long.
/// (pcap-parser 0.17's `if_tsoffset` field always reads it little-endian.)
fn ts_offset(options: &[PcapNGOption<'_>], big_endian: bool) -> i64 {
    options
        .iter()
        .find(|o| o.code == OptionCode::IfTsoffset)
        .and_then(|o| <[u8; 8]>::try_from(o.value()).ok())
        .map_or(0, |b| {
            if big_endian {
                i64::from_be_bytes(b)
            } else {
                i64::from_le_bytes(b)
            }
        })
}

/// pcap-parser's reason without the input bytes its `Display` would print
/// (they could be a whole buffer of packet data).
fn describe(e: &PcapError<&[u8]>) -> String {
    match e {
        PcapError::NomError(_, kind) => format!("{} check failed", kind.description()),
        PcapError::OwnedNomError(_, kind) => format!("{} check failed", kind.description()),
        other => other.to_string(),
    }
}

/// Range of `part` (a sub-slice of `buf`) inside `buf`; empty at 0 if it is not one.
fn range_in(buf: &[u8], part: &[u8]) -> Range<usize> {
    let start = (part.as_ptr() as usize).wrapping_sub(buf.as_ptr() as usize);
    match start.checked_add(part.len()) {
        Some(end) if end <= buf.len() => start..end,
        _ => 0..0,
    }
}

/// A pcapng timestamp in interface units, as ns since the Unix epoch
/// (saturating at 0 and `u64::MAX`).
fn ns_of(units: u64, iface: Interface) -> TimestampNs {
    let ns = if iface.units_per_s == 1_000_000_000 {
        i128::from(units)
    } else if iface.units_per_s == 1_000_000 {
        i128::from(units) * 1_000
    } else {
        i128::from(units) * 1_000_000_000 / i128::from(iface.units_per_s)
    };
    let total = ns + i128::from(iface.offset_s) * 1_000_000_000;
    u64::try_from(total.max(0)).unwrap_or(u64::MAX)
}

/// Packets read (ts ns, bytes), the error that stopped the reader, bytes consumed.
#[cfg(any(test, fuzzing))]
#[doc(hidden)]
pub type ReadResult = (Vec<(u64, Vec<u8>)>, Option<FileError>, usize);

/// Reads a whole file the way the collector's file source does, but handing
/// `next` at most `window` bytes beyond what it asked for: (packets, error,
/// bytes consumed). Panics if an answer does not make progress (tests and
/// fuzzing only).
#[cfg(any(test, fuzzing))]
#[doc(hidden)]
pub fn read_windowed(bytes: &[u8], window: usize) -> ReadResult {
    let window = window.max(1);
    let mut packets = Vec::new();
    let mut want = window;
    let (mut file, mut pos) = loop {
        match CaptureFile::open(&bytes[..want.min(bytes.len())]) {
            Ok(Some(ok)) => break ok,
            Ok(None) if want < bytes.len() => want += window,
            Ok(None) => return (packets, Some(FileError::NotACapture), 0),
            Err(e) => return (packets, Some(e), 0),
        }
    };
    let mut want = window;
    loop {
        let end = (pos + want).min(bytes.len());
        let buf = &bytes[pos..end];
        match file.next(buf) {
            Ok(Record::Packet { ts, data, len }) => {
                assert!(len > 0 && len <= buf.len() && data.end <= len);
                packets.push((ts, buf[data].to_vec()));
                pos += len;
                want = window;
            }
            Ok(Record::Skip { len }) => {
                assert!(len > 0 && len <= buf.len());
                pos += len;
                want = window;
            }
            Ok(Record::NeedMore { at_least }) => {
                assert!(at_least > buf.len());
                if end == bytes.len() {
                    return (packets, None, pos);
                }
                want = at_least.max(want + window);
            }
            Err(e) => return (packets, Some(e), pos),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// What a test file holds, in the order written.
    #[derive(Debug, Clone)]
    enum Item {
        /// pcapng only: a new section (resets the interfaces).
        Section,
        /// pcapng only: an interface with `if_tsresol` (None: option absent) and `if_tsoffset`.
        Interface(Option<u8>, i64),
        /// A packet on interface `iface` (pcapng) at `units` of its resolution.
        Packet {
            iface: u32,
            units: u64,
            data: Vec<u8>,
        },
        /// pcapng only: a Simple Packet Block.
        Simple(Vec<u8>),
        /// pcapng only: an Interface Statistics Block (skipped).
        Stats,
    }

    fn u32b(v: u32, be: bool) -> [u8; 4] {
        if be { v.to_be_bytes() } else { v.to_le_bytes() }
    }

    /// A pcap file: µs or ns magic, either byte order, link type 1.
    fn pcap_bytes(be: bool, nanos: bool, packets: &[(u32, u32, Vec<u8>)]) -> Vec<u8> {
        let magic = if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 };
        let mut out = Vec::new();
        out.extend(u32b(magic, be));
        let (major, minor) = (2u16, 4u16);
        out.extend(if be {
            major.to_be_bytes()
        } else {
            major.to_le_bytes()
        });
        out.extend(if be {
            minor.to_be_bytes()
        } else {
            minor.to_le_bytes()
        });
        out.extend([0; 8]);
        out.extend(u32b(65_535, be));
        out.extend(u32b(1, be));
        for (sec, frac, data) in packets {
            out.extend(u32b(*sec, be));
            out.extend(u32b(*frac, be));
            out.extend(u32b(data.len() as u32, be));
            out.extend(u32b(data.len() as u32 + 4, be));
            out.extend(data);
        }
        out
    }

    fn block(out: &mut Vec<u8>, ty: u32, body: &[u8], be: bool) {
        let padded = body.len().div_ceil(4) * 4;
        let len = (12 + padded) as u32;
        out.extend(u32b(ty, be));
        out.extend(u32b(len, be));
        out.extend(body);
        out.extend(std::iter::repeat_n(0u8, padded - body.len()));
        out.extend(u32b(len, be));
    }

    /// A pcapng file in one byte order; starts with a section header.
    fn pcapng_bytes(be: bool, items: &[Item]) -> Vec<u8> {
        let mut out = Vec::new();
        let shb = |out: &mut Vec<u8>| {
            let mut body = Vec::new();
            body.extend(u32b(0x1a2b_3c4d, be));
            body.extend(if be { [0, 1, 0, 0] } else { [1, 0, 0, 0] });
            body.extend(u64::MAX.to_le_bytes()); // section length: unknown (-1)
            block(out, 0x0a0d_0d0a, &body, be);
        };
        shb(&mut out);
        for item in items {
            match item {
                Item::Section => shb(&mut out),
                Item::Interface(resol, offset) => {
                    let mut body = Vec::new();
                    body.extend(if be { [0, 1, 0, 0] } else { [1, 0, 0, 0] }); // link 1, reserved
                    body.extend(u32b(65_535, be));
                    let opt = |body: &mut Vec<u8>, code: u16, val: &[u8]| {
                        body.extend(if be {
                            code.to_be_bytes()
                        } else {
                            code.to_le_bytes()
                        });
                        let l = val.len() as u16;
                        body.extend(if be { l.to_be_bytes() } else { l.to_le_bytes() });
                        body.extend(val);
                        body.extend(std::iter::repeat_n(
                            0u8,
                            val.len().div_ceil(4) * 4 - val.len(),
                        ));
                    };
                    if let Some(r) = resol {
                        opt(&mut body, 9, &[*r]);
                    }
                    if *offset != 0 {
                        opt(
                            &mut body,
                            14,
                            &if be {
                                offset.to_be_bytes()
                            } else {
                                offset.to_le_bytes()
                            },
                        );
                    }
                    if resol.is_some() || *offset != 0 {
                        opt(&mut body, 0, &[]);
                    }
                    block(&mut out, 1, &body, be);
                }
                Item::Packet { iface, units, data } => {
                    let mut body = Vec::new();
                    body.extend(u32b(*iface, be));
                    body.extend(u32b((units >> 32) as u32, be));
                    body.extend(u32b(*units as u32, be));
                    body.extend(u32b(data.len() as u32, be));
                    body.extend(u32b(data.len() as u32, be));
                    body.extend(data);
                    block(&mut out, 6, &body, be);
                }
                Item::Simple(data) => {
                    let mut body = Vec::new();
                    body.extend(u32b(data.len() as u32, be));
                    body.extend(data);
                    block(&mut out, 3, &body, be);
                }
                Item::Stats => {
                    let mut body = Vec::new();
                    body.extend(u32b(0, be));
                    body.extend([0; 8]);
                    block(&mut out, 5, &body, be);
                }
            }
        }
        out
    }

    #[test]
    fn pcap_both_byte_orders_and_precisions() {
        let recs = vec![(1, 2, vec![1, 2, 3]), (1_700_000_000, 999_999, vec![9; 70])];
        for be in [false, true] {
            for nanos in [false, true] {
                let bytes = pcap_bytes(be, nanos, &recs);
                let (packets, err, pos) = read_windowed(&bytes, 7);
                assert_eq!(err, None);
                assert_eq!(pos, bytes.len());
                let scale = if nanos { 1 } else { 1_000 };
                assert_eq!(
                    packets,
                    vec![
                        (1_000_000_000 + 2 * scale, vec![1, 2, 3]),
                        (1_700_000_000_000_000_000 + 999_999 * scale, vec![9; 70]),
                    ]
                );
                let (file, len) = CaptureFile::open(&bytes)
                    .expect("header")
                    .expect("whole header");
                assert_eq!((file.link_type(), len), (Some(1), 24));
            }
        }
    }

    #[test]
    fn pcap_cut_inside_a_record_needs_more() {
        let bytes = pcap_bytes(false, false, &[(1, 0, vec![5; 10]), (2, 0, vec![6; 30])]);
        let cut = &bytes[..bytes.len() - 10];
        let (packets, err, pos) = read_windowed(cut, 1 << 20);
        assert_eq!((packets.len(), err, pos), (1, None, 24 + 16 + 10));
        let (mut file, _) = CaptureFile::open(cut)
            .expect("header")
            .expect("whole header");
        assert_eq!(
            file.next(&cut[50..]),
            Ok(Record::NeedMore { at_least: 16 + 30 })
        );
    }

    #[test]
    fn pcap_record_over_the_snaplen_limit_is_an_error_before_buffering_it() {
        let mut bytes = pcap_bytes(false, false, &[(1, 0, vec![5; 10])]);
        bytes[24 + 8..24 + 12].copy_from_slice(&(MAX_CAPLEN + 1).to_le_bytes());
        let (mut file, _) = CaptureFile::open(&bytes)
            .expect("header")
            .expect("whole header");
        assert_eq!(
            file.next(&bytes[24..]),
            Err(FileError::TooLarge {
                len: 16 + u64::from(MAX_CAPLEN) + 1,
                max: 16 + u64::from(MAX_CAPLEN)
            })
        );
    }

    #[test]
    fn not_a_capture() {
        assert_eq!(
            CaptureFile::open(b"GET / HTTP/1.1\r\n\r\nhello world..").expect_err("not pcap"),
            FileError::NotACapture
        );
        assert!(matches!(CaptureFile::open(b"\xd4\xc3"), Ok(None)));
    }

    #[test]
    fn pcapng_interfaces_resolutions_offsets_and_sections() {
        for be in [false, true] {
            let items = vec![
                Item::Interface(None, 0),            // µs
                Item::Interface(Some(9), 10),        // ns, +10 s
                Item::Interface(Some(0x80 | 20), 0), // 2^-20 s
                Item::Packet {
                    iface: 0,
                    units: 1_500_000,
                    data: vec![1; 5],
                },
                Item::Packet {
                    iface: 1,
                    units: 7,
                    data: vec![2; 8],
                },
                Item::Stats,
                Item::Packet {
                    iface: 2,
                    units: 3 << 20,
                    data: vec![3],
                },
                Item::Simple(vec![4; 6]),
                Item::Section,
                Item::Interface(Some(3), -1), // ms, -1 s
                Item::Packet {
                    iface: 0,
                    units: 2_500,
                    data: vec![5; 2],
                },
            ];
            let bytes = pcapng_bytes(be, &items);
            let (packets, err, pos) = read_windowed(&bytes, 5);
            assert_eq!(err, None);
            assert_eq!(pos, bytes.len());
            assert_eq!(
                packets,
                vec![
                    (1_500_000_000, vec![1; 5]),
                    (10_000_000_007, vec![2; 8]),
                    (3_000_000_000, vec![3]),
                    (0, vec![4; 6]),
                    (1_500_000_000, vec![5; 2]),
                ]
            );
        }
    }

    #[test]
    fn pcapng_errors() {
        let changed = {
            let mut b = pcapng_bytes(false, &[Item::Interface(None, 0), Item::Interface(None, 0)]);
            // Second IDB: link type 113 (Linux cooked) instead of 1.
            let second = b.len() - 20;
            b[second + 8] = 113;
            b
        };
        assert_eq!(
            read_windowed(&changed, 64).1,
            Some(FileError::LinkTypeChanged {
                first: 1,
                other: 113
            })
        );
        let undeclared = pcapng_bytes(
            false,
            &[
                Item::Interface(None, 0),
                Item::Packet {
                    iface: 1,
                    units: 0,
                    data: vec![],
                },
            ],
        );
        assert_eq!(
            read_windowed(&undeclared, 64).1,
            Some(FileError::UnknownInterface(1))
        );
        let reset = pcapng_bytes(
            true,
            &[
                Item::Interface(None, 0),
                Item::Section,
                Item::Simple(vec![1]),
            ],
        );
        assert_eq!(
            read_windowed(&reset, 64).1,
            Some(FileError::UnknownInterface(0))
        );
        let bad_resol = pcapng_bytes(false, &[Item::Interface(Some(20), 0)]);
        assert_eq!(
            read_windowed(&bad_resol, 64).1,
            Some(FileError::BadTimestampResolution(20))
        );
        let mut obsolete = pcapng_bytes(false, &[Item::Interface(None, 0)]);
        block(&mut obsolete, 2, &[0; 20], false);
        assert_eq!(
            read_windowed(&obsolete, 64).1,
            Some(FileError::ObsoletePacketBlock)
        );
        // Found by fuzzing: an Enhanced Packet Block whose captured length runs
        // past its own end was "need more bytes", with a size that depended on
        // how much of the file was buffered. It is malformed, in any window.
        let mut past = pcapng_bytes(false, &[Item::Interface(None, 0)]);
        let epb = past.len();
        block(&mut past, 6, &[0; 24], false);
        past[epb + 8 + 12..epb + 8 + 16].copy_from_slice(&1_000u32.to_le_bytes());
        for window in [1, 7, 64, 4096] {
            assert!(matches!(
                read_windowed(&past, window).1,
                Some(FileError::Malformed(_))
            ));
        }
        let mut huge = pcapng_bytes(false, &[]);
        huge.extend(6u32.to_le_bytes());
        huge.extend((MAX_BLOCK_LEN as u32 + 16).to_le_bytes());
        huge.extend([0; 64]);
        assert!(matches!(
            read_windowed(&huge, 1 << 20).1,
            Some(FileError::TooLarge { .. })
        ));
    }

    fn item() -> impl Strategy<Value = Item> {
        let data = proptest::collection::vec(any::<u8>(), 0..80);
        prop_oneof![
            1 => Just(Item::Section),
            2 => (proptest::option::of(prop_oneof![0u8..=9, 0x80u8..=0x9f]), -5i64..5)
                .prop_map(|(r, o)| Item::Interface(r, o)),
            8 => (0u32..3, any::<u32>(), data.clone())
                .prop_map(|(iface, units, data)| Item::Packet { iface, units: u64::from(units), data }),
            1 => data.prop_map(Item::Simple),
            1 => Just(Item::Stats),
        ]
    }

    /// The model: which packets a reader must return for `items`, and the error
    /// that stops it (None: all of them).
    fn model(items: &[Item]) -> (Vec<(u64, Vec<u8>)>, Option<FileError>) {
        let mut ifaces: Vec<Interface> = Vec::new();
        let mut out = Vec::new();
        for item in items {
            match item {
                Item::Section => ifaces.clear(),
                Item::Interface(r, o) => ifaces.push(Interface {
                    units_per_s: match r.unwrap_or(6) {
                        r if r & 0x80 == 0 => 10u64.pow(u32::from(r)),
                        r => 1u64 << (r & 0x7f),
                    },
                    offset_s: *o,
                }),
                Item::Packet { iface, units, data } => match ifaces.get(*iface as usize) {
                    Some(i) => {
                        let ns = (i128::from(*units) * 1_000_000_000 / i128::from(i.units_per_s)
                            + i128::from(i.offset_s) * 1_000_000_000)
                            .max(0) as u64;
                        out.push((ns, data.clone()));
                    }
                    None => return (out, Some(FileError::UnknownInterface(*iface))),
                },
                Item::Simple(data) if ifaces.is_empty() => {
                    return (out, Some(FileError::UnknownInterface(0)));
                }
                Item::Simple(data) => out.push((0, data.clone())),
                Item::Stats => {}
            }
        }
        (out, None)
    }

    proptest! {
        #[test]
        fn pcapng_matches_model_in_any_window(
            be in any::<bool>(),
            items in proptest::collection::vec(item(), 0..24),
            window in 1usize..300,
        ) {
            let bytes = pcapng_bytes(be, &items);
            let (packets, err, _) = read_windowed(&bytes, window);
            let (want, want_err) = model(&items);
            prop_assert_eq!(packets, want);
            prop_assert_eq!(err, want_err);
        }

        #[test]
        fn pcap_matches_model_in_any_window(
            be in any::<bool>(),
            nanos in any::<bool>(),
            recs in proptest::collection::vec((any::<u32>(), 0u32..1_000_000, proptest::collection::vec(any::<u8>(), 0..100)), 0..24),
            window in 1usize..300,
            cut in any::<prop::sample::Index>(),
        ) {
            let bytes = pcap_bytes(be, nanos, &recs);
            let (packets, err, pos) = read_windowed(&bytes, window);
            prop_assert_eq!(err, None);
            prop_assert_eq!(pos, bytes.len());
            let scale = if nanos { 1 } else { 1_000 };
            let want: Vec<_> = recs.iter().map(|(s, f, d)| (u64::from(*s) * 1_000_000_000 + u64::from(*f) * scale, d.clone())).collect();
            prop_assert_eq!(&packets, &want);
            // A file cut anywhere yields the records before the cut, then "need more".
            let cut = cut.index(bytes.len() + 1);
            let (some, err, pos) = read_windowed(&bytes[..cut], window);
            prop_assert!(err.is_none() || cut < 24);
            prop_assert!(pos <= cut);
            prop_assert_eq!(&some[..], &want[..some.len()]);
        }

        #[test]
        fn arbitrary_bytes_never_panic_and_always_progress(
            head in prop_oneof![Just(vec![0xd4, 0xc3, 0xb2, 0xa1]), Just(vec![0x0a, 0x0d, 0x0d, 0x0a]), Just(vec![0xa1, 0xb2, 0x3c, 0x4d])],
            rest in proptest::collection::vec(any::<u8>(), 0..600),
            window in 1usize..64,
        ) {
            let mut bytes = head;
            bytes.extend(rest);
            // `read` asserts progress on every answer.
            let _ = read_windowed(&bytes, window);
        }
    }
}
