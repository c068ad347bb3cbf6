//! Incremental Server-Sent Events parser (WHATWG HTML, "Parsing an event stream").
//! (STUB: filled in by the HTTP/SSE work.)
