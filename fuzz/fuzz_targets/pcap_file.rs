//! Fuzz target: capture-file records (`collector/wire/src/pcapfile.rs`, pcap and
//! pcapng through pcap-parser), as the collector's file source reads them.
//!
//! Input: one byte choosing a window (`byte * 7 + 1` bytes), then the file. The
//! file is read whole and in windows (need-more-bytes answers, buffer refills);
//! both readings must give the same packets, error and consumed length, and every
//! answer must make progress (see `mcptap_wire::fuzzing`). A panic is a finding.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    mcptap_wire::fuzzing::pcap_file_reads_agree(data);
});
