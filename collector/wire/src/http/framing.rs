//! Message heads (RFC 9112 §3–§5) and body framing: how long a body is
//! (RFC 9112 §6.3), chunk-size lines (§7.1), and whether a response body is
//! an event stream.

use crate::Headers;

/// Which kind of messages a direction carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Requests (the client's direction).
    Request,
    /// Responses (the server's direction).
    Response,
}

impl Kind {
    /// The kind the opposite direction carries.
    pub fn other(self) -> Kind {
        match self {
            Kind::Request => Kind::Response,
            Kind::Response => Kind::Request,
        }
    }
}

/// A parsed request line and headers (RFC 9112 §3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    /// Method token, e.g. `POST`.
    pub method: String,
    /// Request target as sent, e.g. `/mcp`.
    pub target: String,
    /// HTTP minor version: 0 or 1.
    pub version_minor: u8,
    /// Headers in wire order.
    pub headers: Headers,
}

/// A parsed status line and headers (RFC 9112 §4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    /// Status code, 100..=999.
    pub status: u16,
    /// HTTP minor version: 0 or 1.
    pub version_minor: u8,
    /// Headers in wire order.
    pub headers: Headers,
    /// The first `Content-Type` is `text/event-stream` (case-insensitive,
    /// parameters ignored; RFC 9110 §8.3.1): the body is an event stream.
    pub event_stream: bool,
}

/// A message head of either kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Head {
    /// A request head.
    Request(RequestHead),
    /// A response head.
    Response(ResponseHead),
}

impl Head {
    /// Request or response.
    pub fn kind(&self) -> Kind {
        match self {
            Head::Request(_) => Kind::Request,
            Head::Response(_) => Kind::Response,
        }
    }

    /// The headers, in wire order.
    pub fn headers(&self) -> &Headers {
        match self {
            Head::Request(r) => &r.headers,
            Head::Response(r) => &r.headers,
        }
    }
}

/// How the body of a message is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body.
    None,
    /// Exactly this many bytes (`Content-Length`).
    Length(u64),
    /// `Transfer-Encoding: chunked` (RFC 9112 §7.1).
    Chunked,
    /// Everything until the connection closes (responses only).
    UntilClose,
}

/// Why a head's body framing is unusable (RFC 9112 §6.3 items 4–5: the
/// recipient must treat the message as malformed and stop framing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FramingError {
    /// `Content-Length` is not a decimal number, or several differing values.
    BadContentLength,
    /// A request's `Transfer-Encoding` does not end with `chunked`.
    RequestNotChunked,
}

/// The body framing of `head`, per RFC 9112 §6.3, for a response to anything
/// but `HEAD` (the caller handles `HEAD`, see [`MessageParser::set_no_body`](super::MessageParser::set_no_body)):
///
/// - responses 1xx, 204, 304: [`BodyFraming::None`];
/// - `Transfer-Encoding` whose last coding is `chunked`: [`BodyFraming::Chunked`]
///   (wins over `Content-Length`); other codings: response
///   [`BodyFraming::UntilClose`], request [`FramingError::RequestNotChunked`];
/// - valid `Content-Length` (several equal values allowed): [`BodyFraming::Length`];
/// - otherwise: request [`BodyFraming::None`], response [`BodyFraming::UntilClose`].
pub fn body_framing(head: &Head) -> Result<BodyFraming, FramingError> {
    let status = match head {
        Head::Response(r) => Some(r.status),
        Head::Request(_) => None,
    };
    framing_of(status, head.headers().byte_pairs())
}

/// A lowercase ASCII token to compare names against case-insensitively,
/// with its case mask (0x20 on letters), so that a comparison is a few
/// whole-array operations instead of a byte loop with early exits.
pub(super) struct Token<const N: usize> {
    lower: [u8; N],
    mask: [u8; N],
}

impl<const N: usize> Token<N> {
    /// `lower` must be lowercase ASCII (letters, digits, punctuation).
    const fn new(lower: &[u8; N]) -> Self {
        let mut mask = [0u8; N];
        let mut i = 0;
        while i < N {
            if lower[i].is_ascii_lowercase() {
                mask[i] = 0x20;
            }
            i += 1;
        }
        Token {
            lower: *lower,
            mask,
        }
    }

    /// `name.eq_ignore_ascii_case(lower)`: letters match in either case,
    /// every other byte exactly.
    #[inline]
    pub(super) fn matches(&self, name: &[u8]) -> bool {
        let Ok(name): Result<&[u8; N], _> = name.try_into() else {
            return false;
        };
        name.iter()
            .zip(&self.mask)
            .zip(&self.lower)
            .fold(0u8, |diff, ((&b, &m), &l)| diff | ((b | m) ^ l))
            == 0
    }
}

pub(super) const TRANSFER_ENCODING: Token<17> = Token::new(b"transfer-encoding");
pub(super) const CONTENT_LENGTH: Token<14> = Token::new(b"content-length");
pub(super) const CONTENT_TYPE: Token<12> = Token::new(b"content-type");
pub(super) const CHUNKED: Token<7> = Token::new(b"chunked");

/// [`body_framing`] of a request (`status == None`) or a response with
/// status `status` and headers `pairs` (`(name, value)`, values already
/// trimmed), in one pass (see [`FramingScan`]).
fn framing_of<'h>(
    status: Option<u16>,
    pairs: impl Iterator<Item = (&'h [u8], &'h [u8])>,
) -> Result<BodyFraming, FramingError> {
    let mut scan = FramingScan::new();
    for (name, value) in pairs {
        scan.add(name, value);
    }
    scan.finish(status)
}

/// The framing headers of a head, fed one header at a time (values
/// already trimmed): a parsed head's framing is computed from `httparse`'s
/// header slots in the same walk that trims and measures them, so the
/// packed headers are not walked again.
pub(super) struct FramingScan<'h> {
    /// Last non-empty `Transfer-Encoding` coding so far.
    last_coding: Option<&'h [u8]>,
    /// `Err` once a `Content-Length` is bad or disagrees; it only matters
    /// when no `Transfer-Encoding` coding is present (that one wins).
    length: Result<Option<u64>, FramingError>,
}

impl<'h> FramingScan<'h> {
    pub(super) fn new() -> Self {
        FramingScan {
            last_coding: None,
            length: Ok(None),
        }
    }

    /// The next header (any header: others are ignored).
    #[inline]
    pub(super) fn add(&mut self, name: &[u8], value: &'h [u8]) {
        if TRANSFER_ENCODING.matches(name) {
            self.add_codings(value);
        } else if CONTENT_LENGTH.matches(name) {
            self.add_length(value);
        }
    }

    /// The value of a `Transfer-Encoding` header.
    pub(super) fn add_codings(&mut self, value: &'h [u8]) {
        for coding in value.split(|&b| b == b',') {
            let coding = trim_ows(coding);
            if !coding.is_empty() {
                self.last_coding = Some(coding);
            }
        }
    }

    /// The value of a `Content-Length` header.
    pub(super) fn add_length(&mut self, value: &[u8]) {
        if let Ok(prev) = self.length {
            // Usually one plain number: the list below in one step.
            if let Some(n) = parse_decimal(value) {
                self.length = match prev {
                    Some(p) if p != n => Err(FramingError::BadContentLength),
                    _ => Ok(Some(n)),
                };
                return;
            }
            self.length = value.split(|&b| b == b',').try_fold(prev, |acc, part| {
                let n = parse_decimal(trim_ows(part)).ok_or(FramingError::BadContentLength)?;
                match acc {
                    Some(p) if p != n => Err(FramingError::BadContentLength),
                    _ => Ok(Some(n)),
                }
            });
        }
    }

    /// The framing of a request (`status == None`) or a response with
    /// status `status` whose headers were all added.
    pub(super) fn finish(self, status: Option<u16>) -> Result<BodyFraming, FramingError> {
        if let Some(s) = status
            && (s < 200 || s == 204 || s == 304)
        {
            return Ok(BodyFraming::None);
        }
        let kind = if status.is_some() {
            Kind::Response
        } else {
            Kind::Request
        };
        if let Some(coding) = self.last_coding {
            let chunked = CHUNKED.matches(coding);
            return match (chunked, kind) {
                (true, _) => Ok(BodyFraming::Chunked),
                (false, Kind::Response) => Ok(BodyFraming::UntilClose),
                (false, Kind::Request) => Err(FramingError::RequestNotChunked),
            };
        }
        Ok(match (self.length?, kind) {
            (Some(0), _) => BodyFraming::None,
            (Some(n), _) => BodyFraming::Length(n),
            (None, Kind::Request) => BodyFraming::None,
            (None, Kind::Response) => BodyFraming::UntilClose,
        })
    }
}

/// A `Content-Type` value whose media type is `text/event-stream`
/// (case-insensitive, parameters ignored; RFC 9110 §8.3.1).
pub(crate) fn is_event_stream(value: &[u8]) -> bool {
    let media = value.split(|&b| b == b';').next().unwrap_or_default();
    let media = media
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .map_or(&[][..], |s| media.get(s..).unwrap_or_default());
    let end = media
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |e| e + 1);
    media
        .get(..end)
        .is_some_and(|m| m.eq_ignore_ascii_case(b"text/event-stream"))
}

pub(super) fn trim_ows(v: &[u8]) -> &[u8] {
    let ows = |b: &u8| *b == b' ' || *b == b'\t';
    // Usually nothing to trim (httparse already trims header values).
    if !v.first().is_some_and(ows) && !v.last().is_some_and(ows) {
        return v;
    }
    let start = v
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(start, |e| e + 1);
    v.get(start..end).unwrap_or_default()
}

/// A non-empty run of ASCII digits as a number; `None` for anything else
/// or above `u64::MAX`.
fn parse_decimal(v: &[u8]) -> Option<u64> {
    if v.is_empty() {
        return None;
    }
    let mut acc = 0u64;
    let mut overflow = false;
    for &b in v {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        // Keep checking digits after an overflow: a non-digit is `None` too.
        match acc
            .checked_mul(10)
            .and_then(|a| a.checked_add(u64::from(d)))
        {
            Some(a) => acc = a,
            None => overflow = true,
        }
    }
    (!overflow).then_some(acc)
}

/// Parses one chunk-size line (with its line ending). Bare-LF endings are
/// accepted (RFC 9112 §2.2 allows recognising a lone LF). A line that already
/// ends with CRLF is parsed in place; only a bare-LF line is copied (to give
/// `httparse` its CRLF).
pub(super) fn parse_chunk_line(line: &[u8]) -> Option<u64> {
    let content = line.strip_suffix(b"\n").unwrap_or(line);
    let content = content.strip_suffix(b"\r").unwrap_or(content);
    if !content.first().is_some_and(u8::is_ascii_hexdigit) {
        return None;
    }
    let parse = |l: &[u8]| match httparse::parse_chunk_size(l) {
        Ok(httparse::Status::Complete((used, size))) if used == l.len() => Some(size),
        _ => None,
    };
    if line.len() == content.len() + 2 && line.ends_with(b"\r\n") {
        return parse(line);
    }
    let mut crlf = Vec::with_capacity(content.len() + 2);
    crlf.extend_from_slice(content);
    crlf.extend_from_slice(b"\r\n");
    parse(&crlf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Header;

    proptest::proptest! {
        /// `Token::matches` is `eq_ignore_ascii_case` against its lowercase
        /// text, on names near it (case flips, byte edits, other lengths).
        #[test]
        fn token_matches_like_eq_ignore_ascii_case(
            which in 0usize..4,
            edits in proptest::collection::vec((0usize..20, proptest::prelude::any::<u8>()), 0..3),
            flips in proptest::collection::vec(proptest::prelude::any::<bool>(), 20),
            cut in 0usize..3,
        ) {
            let text: &[u8] = [&b"transfer-encoding"[..], b"content-length", b"content-type", b"chunked"][which];
            let mut name: Vec<u8> = text
                .iter()
                .zip(&flips)
                .map(|(&b, &f)| if f { b.to_ascii_uppercase() } else { b })
                .collect();
            for (pos, b) in edits {
                if let Some(x) = name.get_mut(pos % text.len()) {
                    *x = b;
                }
            }
            match cut {
                0 => name.push(b'x'),
                1 => {}
                _ => {
                    name.pop();
                }
            }
            let want = name.eq_ignore_ascii_case(text);
            let got = match which {
                0 => TRANSFER_ENCODING.matches(&name),
                1 => CONTENT_LENGTH.matches(&name),
                2 => CONTENT_TYPE.matches(&name),
                _ => CHUNKED.matches(&name),
            };
            proptest::prop_assert_eq!(got, want);
        }
    }

    proptest::proptest! {
        /// `parse_decimal` is `u64`'s parser restricted to plain digits
        /// (no sign, no spaces, not empty), overflow included.
        #[test]
        fn parse_decimal_is_u64_parse(
            v in proptest::collection::vec(
                proptest::sample::select(vec![b'0', b'1', b'5', b'9', b'/', b':', b' ', b'+', b'a']),
                0..24,
            ),
            big in proptest::prelude::any::<u64>(),
            tail in proptest::collection::vec(proptest::sample::select(vec![b'0', b'9', b'x']), 0..3),
        ) {
            for v in [v, [big.to_string().into_bytes(), tail].concat()] {
                let want = if !v.is_empty() && v.iter().all(u8::is_ascii_digit) {
                    std::str::from_utf8(&v).ok().and_then(|t| t.parse::<u64>().ok())
                } else {
                    None
                };
                proptest::prop_assert_eq!(parse_decimal(&v), want);
            }
        }
    }

    #[test]
    fn framing_rules() {
        let req = |hs: &[(&str, &str)]| {
            Head::Request(RequestHead {
                method: "POST".into(),
                target: "/".into(),
                version_minor: 1,
                headers: hs
                    .iter()
                    .map(|(n, v)| Header {
                        name: (*n).into(),
                        value: v.as_bytes().to_vec(),
                    })
                    .collect(),
            })
        };
        assert_eq!(body_framing(&req(&[])), Ok(BodyFraming::None));
        assert_eq!(
            body_framing(&req(&[("Content-Length", "12")])),
            Ok(BodyFraming::Length(12))
        );
        assert_eq!(
            body_framing(&req(&[("Content-Length", "12, 12")])),
            Ok(BodyFraming::Length(12))
        );
        assert_eq!(
            body_framing(&req(&[("Content-Length", "12"), ("content-length", "13")])),
            Err(FramingError::BadContentLength)
        );
        assert_eq!(
            body_framing(&req(&[("Content-Length", "-1")])),
            Err(FramingError::BadContentLength)
        );
        assert_eq!(
            body_framing(&req(&[
                ("Transfer-Encoding", "gzip, Chunked"),
                ("Content-Length", "3")
            ])),
            Ok(BodyFraming::Chunked)
        );
        assert_eq!(
            body_framing(&req(&[("Transfer-Encoding", "gzip")])),
            Err(FramingError::RequestNotChunked)
        );
        let resp = |status: u16, hs: &[(&str, &str)]| {
            Head::Response(ResponseHead {
                status,
                version_minor: 1,
                headers: hs
                    .iter()
                    .map(|(n, v)| Header {
                        name: (*n).into(),
                        value: v.as_bytes().to_vec(),
                    })
                    .collect(),
                event_stream: false,
            })
        };
        assert_eq!(body_framing(&resp(200, &[])), Ok(BodyFraming::UntilClose));
        assert_eq!(
            body_framing(&resp(204, &[("Content-Length", "5")])),
            Ok(BodyFraming::None)
        );
        assert_eq!(body_framing(&resp(304, &[])), Ok(BodyFraming::None));
        assert_eq!(
            body_framing(&resp(200, &[("Transfer-Encoding", "gzip")])),
            Ok(BodyFraming::UntilClose)
        );
    }
}
