//! Fuzz target: the collector's own JSON deserializer (`collector/mcp/src/json/fast.rs`)
//! against serde_json, differentially.
//!
//! Every input is read as a request body and as a response body by both
//! readers; they must accept and reject the same texts and read the same
//! members (see `mcptap_mcp::fuzzing`). A panic is a disagreement.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    mcptap_mcp::fuzzing::json_readers_agree(data);
});
