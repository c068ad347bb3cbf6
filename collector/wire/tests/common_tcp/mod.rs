//! Shared helpers for the TCP reassembly tests: an owning event recorder and a
//! segment builder.

#![allow(dead_code)]

use mcptap_wire::link::{TcpFlags, TcpPacket};
use mcptap_wire::tcp::{CloseReason, TcpEvent, TcpSink};
use mcptap_wire::{Dir, FlowId, TimestampNs};
use std::net::SocketAddr;

/// Owned copy of a [`TcpEvent`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ev {
    Opened {
        flow: FlowId,
        client: SocketAddr,
        server: SocketAddr,
        client_isn: u32,
        saw_syn: bool,
        ts: TimestampNs,
    },
    Data {
        flow: FlowId,
        dir: Dir,
        ts: TimestampNs,
        data: Vec<u8>,
    },
    Gap {
        flow: FlowId,
        dir: Dir,
        ts: TimestampNs,
        len: u64,
    },
    Closed {
        flow: FlowId,
        ts: TimestampNs,
        reason: CloseReason,
    },
}

/// Records every event.
#[derive(Debug, Default)]
pub struct Rec(pub Vec<Ev>);

impl TcpSink for Rec {
    fn on_tcp_event(&mut self, ev: TcpEvent<'_>) {
        self.0.push(match ev {
            TcpEvent::Opened {
                flow,
                client,
                server,
                client_isn,
                saw_syn,
                ts,
            } => Ev::Opened {
                flow,
                client,
                server,
                client_isn,
                saw_syn,
                ts,
            },
            TcpEvent::Data {
                flow,
                dir,
                ts,
                data,
            } => Ev::Data {
                flow,
                dir,
                ts,
                data: data.to_vec(),
            },
            TcpEvent::Gap { flow, dir, ts, len } => Ev::Gap { flow, dir, ts, len },
            TcpEvent::Closed { flow, ts, reason } => Ev::Closed { flow, ts, reason },
        });
    }
}

impl Rec {
    /// Concatenated `Data` bytes of `flow` in `dir`.
    pub fn bytes(&self, flow: FlowId, dir: Dir) -> Vec<u8> {
        let mut v = Vec::new();
        for e in &self.0 {
            if let Ev::Data {
                flow: f,
                dir: d,
                data,
                ..
            } = e
                && *f == flow
                && *d == dir
            {
                v.extend_from_slice(data);
            }
        }
        v
    }

    /// Stream reconstruction of `flow`/`dir`: `Some(byte)` for delivered
    /// positions, `None` for positions skipped in gaps.
    pub fn positions(&self, flow: FlowId, dir: Dir) -> Vec<Option<u8>> {
        let mut v = Vec::new();
        for e in &self.0 {
            match e {
                Ev::Data {
                    flow: f,
                    dir: d,
                    data,
                    ..
                } if *f == flow && *d == dir => v.extend(data.iter().map(|b| Some(*b))),
                Ev::Gap {
                    flow: f,
                    dir: d,
                    len,
                    ..
                } if *f == flow && *d == dir => v.extend(std::iter::repeat_n(None, *len as usize)),
                _ => {}
            }
        }
        v
    }

    /// Gap lengths of `flow`/`dir`.
    pub fn gaps(&self, flow: FlowId, dir: Dir) -> Vec<u64> {
        self.0
            .iter()
            .filter_map(|e| match e {
                Ev::Gap {
                    flow: f,
                    dir: d,
                    len,
                    ..
                } if *f == flow && *d == dir => Some(*len),
                _ => None,
            })
            .collect()
    }

    /// `Closed` events.
    pub fn closes(&self) -> Vec<(FlowId, CloseReason)> {
        self.0
            .iter()
            .filter_map(|e| match e {
                Ev::Closed { flow, reason, .. } => Some((*flow, *reason)),
                _ => None,
            })
            .collect()
    }

    /// `Opened` events as `(flow, client, server, client_isn, saw_syn)`.
    pub fn opens(&self) -> Vec<(FlowId, SocketAddr, SocketAddr, u32, bool)> {
        self.0
            .iter()
            .filter_map(|e| match e {
                Ev::Opened {
                    flow,
                    client,
                    server,
                    client_isn,
                    saw_syn,
                    ..
                } => Some((*flow, *client, *server, *client_isn, *saw_syn)),
                _ => None,
            })
            .collect()
    }
}

/// `"10.0.0.1:40000"`-style address.
pub fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap_or_else(|_| panic!("bad address {s}"))
}

/// A segment from `src` to `dst`. `flags` holds letters: `S` SYN, `A` ACK,
/// `F` FIN, `R` RST.
pub fn seg<'a>(
    src: SocketAddr,
    dst: SocketAddr,
    flags: &str,
    seq: u32,
    ack: u32,
    payload: &'a [u8],
) -> TcpPacket<'a> {
    TcpPacket {
        src,
        dst,
        seq,
        ack,
        flags: TcpFlags {
            syn: flags.contains('S'),
            ack: flags.contains('A'),
            fin: flags.contains('F'),
            rst: flags.contains('R'),
        },
        payload,
    }
}
