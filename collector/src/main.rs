//! `mcptap-collector` (STUB).
fn main() {}
