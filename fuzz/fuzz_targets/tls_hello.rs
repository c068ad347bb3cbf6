//! Fuzz target: the ClientHello reader (`mcptap_wire::tls`).
//!
//! Input: the client's first bytes. Checks: no panic; "need more" only while
//! the input is shorter than `MAX_HELLO_BYTES`; a hello read from a prefix is
//! read the same from the whole input (bytes after the first record do not
//! matter); the kept SNI and ALPN stay within their bounds.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mcptap_wire::tls::{HelloParse, MAX_HELLO_BYTES, parse_client_hello, sniff};

fuzz_target!(|data: &[u8]| {
    let _ = sniff(data);
    let whole = parse_client_hello(data);
    if whole == HelloParse::NeedMore {
        assert!(data.len() < MAX_HELLO_BYTES);
    }
    if let HelloParse::Hello(h) = &whole {
        assert!(h.sni.as_ref().is_none_or(|s| s.len() <= 255 * 3));
        assert!(h.alpn.len() <= 8);
    }
    for cut in [data.len() / 2, data.len().saturating_sub(1)] {
        if let HelloParse::Hello(h) = parse_client_hello(&data[..cut]) {
            assert_eq!(whole, HelloParse::Hello(h), "prefix {cut} read differently");
        }
    }
});
