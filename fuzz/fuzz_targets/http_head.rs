//! Fuzz target: the collector's own HTTP head walk (`collector/wire/src/http.rs`,
//! `parse_head_fast`) against httparse, differentially.
//!
//! Every input is read as a request head and as a response head. Whenever the
//! fast walk accepts it, httparse must read the same head: length, start line,
//! packed headers, body framing and event-stream flag (see
//! `mcptap_wire::fuzzing`). The walk may decline anything (httparse then
//! decides alone); a panic is a disagreement.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    mcptap_wire::fuzzing::head_parsers_agree(data);
});
