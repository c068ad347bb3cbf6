//! JSON-RPC 2.0 / MCP decoding of HTTP exchanges into spans (STUB).
