//! Incremental HTTP/1.x message framing for one direction of a connection.
//! (STUB: filled in by the HTTP/SSE work.)
