//! Fuzz target: `decode_packet` over every link type on the same input.
//! Never panics; a decoded payload always lies inside the frame.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mcptap_wire::link::{LinkType, count, decode_packet};
use mcptap_wire::stats::WireStats;

fuzz_target!(|data: &[u8]| {
    let mut stats = WireStats::default();
    for link in LinkType::ALL {
        let res = decode_packet(link, data);
        if let Ok(p) = &res {
            assert!(p.payload.len() <= data.len());
        }
        count(&mut stats, data.len(), &res);
    }
    assert_eq!(stats.packets, LinkType::ALL.len() as u64);
});
