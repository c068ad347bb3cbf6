//! Byte offsets inside pcap and pcapng files, to say where a damaged capture stopped.
//!
//! libpcap reads the records but does not tell the file position; when it reports
//! a truncated or corrupt record after `n` good packets, [`offset_after_packets`]
//! walks the file's own record structure to find where record `n` starts.
//! Formats: pcap (LINKTYPE header of 24 bytes, 16-byte record headers, either
//! byte order, µs or ns magic) and pcapng (blocks with a total length, per
//! draft-ietf-opsawg-pcapng §3.1; packet-bearing blocks: EPB 6, SPB 3, PB 2).

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

/// Byte offset where packet record number `n` (0-based) starts, i.e. just past
/// the first `n` packets; `None` if the file cannot be read or is not pcap/pcapng.
pub fn offset_after_packets(path: &Path, n: u64) -> Option<u64> {
    let mut r = BufReader::new(File::open(path).ok()?);
    let mut magic = [0u8; 4];
    r.read_exact(&mut magic).ok()?;
    match magic {
        [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] => pcap_walk(&mut r, n, true),
        [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => pcap_walk(&mut r, n, false),
        [0x0a, 0x0d, 0x0d, 0x0a] => pcapng_walk(&mut r, n),
        _ => None,
    }
}

fn pcap_walk<R: Read + Seek>(r: &mut R, n: u64, le: bool) -> Option<u64> {
    let mut off: u64 = 24;
    r.seek(SeekFrom::Start(off)).ok()?;
    for _ in 0..n {
        let mut hdr = [0u8; 16];
        r.read_exact(&mut hdr).ok()?;
        let caplen = [hdr[8], hdr[9], hdr[10], hdr[11]];
        let caplen = if le {
            u32::from_le_bytes(caplen)
        } else {
            u32::from_be_bytes(caplen)
        };
        off += 16 + u64::from(caplen);
        r.seek(SeekFrom::Start(off)).ok()?;
    }
    Some(off)
}

fn pcapng_walk<R: Read + Seek>(r: &mut R, n: u64) -> Option<u64> {
    let mut off: u64 = 0;
    let mut le = true;
    let mut seen: u64 = 0;
    loop {
        r.seek(SeekFrom::Start(off)).ok()?;
        let mut hdr = [0u8; 12];
        if r.read_exact(&mut hdr).is_err() {
            return Some(off);
        }
        let ty_raw = [hdr[0], hdr[1], hdr[2], hdr[3]];
        if ty_raw == [0x0a, 0x0d, 0x0d, 0x0a] {
            // Section header: byte-order magic follows the length.
            le = [hdr[8], hdr[9], hdr[10], hdr[11]] == [0x4d, 0x3c, 0x2b, 0x1a];
        }
        let rd = |b: [u8; 4]| {
            if le {
                u32::from_le_bytes(b)
            } else {
                u32::from_be_bytes(b)
            }
        };
        let ty = rd(ty_raw);
        let len = rd([hdr[4], hdr[5], hdr[6], hdr[7]]);
        if matches!(ty, 2 | 3 | 6) {
            if seen == n {
                return Some(off);
            }
            seen += 1;
        }
        if len < 12 {
            return Some(off);
        }
        off += u64::from(len);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests fail loudly on purpose
mod tests {
    use super::*;
    use std::io::Write;

    fn pcap_bytes(records: &[&[u8]]) -> Vec<u8> {
        let mut v = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        v.extend_from_slice(&65535u32.to_le_bytes());
        v.extend_from_slice(&1u32.to_le_bytes());
        for r in records {
            v.extend_from_slice(&[0; 8]);
            v.extend_from_slice(&(r.len() as u32).to_le_bytes());
            v.extend_from_slice(&(r.len() as u32).to_le_bytes());
            v.extend_from_slice(r);
        }
        v
    }

    #[test]
    fn pcap_offsets_count_headers_and_caplen() {
        let dir = std::env::temp_dir().join(format!("mcptap-pcapfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("a.pcap");
        std::fs::File::create(&p)
            .unwrap()
            .write_all(&pcap_bytes(&[&[1; 10], &[2; 30]]))
            .unwrap();
        assert_eq!(offset_after_packets(&p, 0), Some(24));
        assert_eq!(offset_after_packets(&p, 1), Some(24 + 16 + 10));
        assert_eq!(offset_after_packets(&p, 2), Some(24 + 16 + 10 + 16 + 30));
        std::fs::write(&p, b"not a capture at all").unwrap();
        assert_eq!(offset_after_packets(&p, 1), None);
    }
}
