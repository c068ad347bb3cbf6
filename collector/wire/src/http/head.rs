//! Head parsing: a complete head to a [`Head`] and its [`body_framing`](super::body_framing),
//! by our own walk when the head is written the plain way
//! ([`parse_head_fast`]), else by `httparse` (RFC 9112 §2–§5), which the
//! walk follows exactly; and the blank-line search that finds a head's end.

#[cfg(test)]
use super::framing::body_framing;
use super::framing::{
    BodyFraming, CONTENT_LENGTH, CONTENT_TYPE, FramingError, FramingScan, Head, Kind, RequestHead,
    ResponseHead, TRANSFER_ENCODING, is_event_stream,
};
use crate::Headers;
use crate::swar::{tchar_end, tchar_run, value_stop};
use std::mem::MaybeUninit;

/// Headers parsed per head at first; doubled on `TooManyHeaders`.
const HEADERS_INITIAL: usize = 64;
/// Upper bound of headers per head; more is a parse error.
const HEADERS_MAX: usize = 1024;

/// Line-end scanner state, for finding the blank line that ends a head or a
/// trailer section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LineState {
    /// At the start of a line.
    Start,
    /// At the start of a line, after a CR.
    StartCr,
    /// Inside a non-empty line.
    Mid,
}

/// Finds the end (index just past the LF) of the first empty line in `data`,
/// continuing from `state`; updates `state` when not found.
pub(super) fn find_blank_line_end(state: &mut LineState, data: &[u8]) -> Option<usize> {
    let mut i = 0usize;
    loop {
        match *state {
            LineState::Start => match data.get(i) {
                None => return None,
                Some(b'\n') => return Some(i + 1),
                Some(b'\r') => {
                    *state = LineState::StartCr;
                    i += 1;
                }
                Some(_) => *state = LineState::Mid,
            },
            LineState::StartCr => match data.get(i) {
                None => return None,
                Some(b'\n') => return Some(i + 1),
                Some(_) => *state = LineState::Mid,
            },
            LineState::Mid => {
                let rest = data.get(i..).unwrap_or_default();
                match memchr::memchr(b'\n', rest) {
                    None => return None,
                    Some(j) => {
                        i = i + j + 1;
                        *state = LineState::Start;
                    }
                }
            }
        }
    }
}

/// Packs httparse's headers and computes from the same slots, in the same
/// walk, the body framing (`status`: `None` for a request; see
/// `framing_of`) and, for a response, whether its first `Content-Type`
/// is `text/event-stream` (see [`is_event_stream`]).
///
/// The values are stored as `httparse` gives them: it already strips the
/// spaces and tabs around a value (those after the colon, and trailing
/// SP/HTAB/CR/LF; obsolete line folding is not enabled), so they are
/// trimmed as [`trim_ows`](super::framing::trim_ows) would (the property test
/// `stored_headers_match_httparse_slots` checks it on odd whitespace).
fn convert_headers(headers: &[httparse::Header<'_>], status: Option<u16>) -> ParsedHeaders {
    let mut content_type: Option<&[u8]> = None;
    let mut scan = FramingScan::new();
    let (mut names_len, mut values_len) = (0, 0);
    for h in headers {
        names_len += h.name.len();
        values_len += h.value.len();
        match h.name.len() {
            12 if status.is_some()
                && content_type.is_none()
                && CONTENT_TYPE.matches(h.name.as_bytes()) =>
            {
                content_type = Some(h.value);
            }
            14 | 17 => scan.add(h.name.as_bytes(), h.value),
            _ => {}
        }
    }
    let event_stream = content_type.is_some_and(is_event_stream);
    let framing = scan.finish(status);
    let stored = Headers::pack(
        headers.len(),
        names_len,
        values_len,
        headers.iter().map(|h| (h.name.as_bytes(), h.value)),
    );
    ParsedHeaders {
        headers: stored,
        framing,
        event_stream,
    }
}

/// Stored headers, the body framing they give, and whether a response's
/// body is an event stream.
struct ParsedHeaders {
    headers: Headers,
    framing: Result<BodyFraming, FramingError>,
    event_stream: bool,
}

/// Parses a complete head (ending with its blank line) of the given kind;
/// returns it with its [`body_framing`](super::body_framing).
pub(super) fn parse_head(
    buf: &[u8],
    kind: Kind,
) -> Option<(Head, Result<BodyFraming, FramingError>)> {
    // The first attempt uses slots on the stack (no allocation per head),
    // left uninitialised (httparse writes the ones it fills: no 2 KiB of
    // empty headers written per head).
    let mut stack = [MaybeUninit::uninit(); HEADERS_INITIAL];
    let whole = |parsed: Option<ParsedHead>| match parsed {
        Some((len, head, framing)) if len == buf.len() => Some((head, framing)),
        _ => None,
    };
    if let Some(parsed) = parse_head_fast(buf, kind) {
        return whole(Some(parsed));
    }
    if let Ok(parsed) = parse_head_with(buf, kind, &mut stack) {
        return whole(parsed);
    }
    let mut n = HEADERS_INITIAL * 2;
    loop {
        let mut headers = vec![MaybeUninit::uninit(); n];
        match parse_head_with(buf, kind, &mut headers) {
            Ok(parsed) => return whole(parsed),
            Err(()) if n < HEADERS_MAX => n *= 2,
            Err(()) => return None,
        }
    }
}

/// A head parsed at the start of a buffer: its length in bytes (blank line
/// included), the head and its [`body_framing`](super::body_framing).
type ParsedHead = (usize, Head, Result<BodyFraming, FramingError>);

/// The head at the start of `buf` when `buf` holds all of it and it is
/// well formed within [`HEADERS_INITIAL`] headers (one `httparse` pass, no
/// separate search for the blank line); `None` otherwise (incomplete,
/// malformed or too many headers: the caller takes the general path, which
/// reaches the same verdict on those). `httparse` ends a head at its first
/// empty line, as [`find_blank_line_end`] does, so the length is the one
/// the general path would find.
pub(super) fn parse_head_prefix(buf: &[u8], kind: Kind) -> Option<ParsedHead> {
    if let Some(parsed) = parse_head_fast(buf, kind) {
        return Some(parsed);
    }
    let mut stack = [MaybeUninit::uninit(); HEADERS_INITIAL];
    parse_head_with(buf, kind, &mut stack).ok().flatten()
}

/// One attempt of [`parse_head`] with the given header slots on the head at
/// the start of `buf`: `Err(())` when they were too few, `Ok(None)` on any
/// other failure (incomplete head included).
fn parse_head_with<'b>(
    buf: &'b [u8],
    kind: Kind,
    headers: &mut [MaybeUninit<httparse::Header<'b>>],
) -> Result<Option<ParsedHead>, ()> {
    let config = httparse::ParserConfig::default();
    {
        let result = match kind {
            Kind::Request => {
                let mut req = httparse::Request::new(&mut []);
                match config.parse_request_with_uninit_headers(&mut req, buf, headers) {
                    Ok(httparse::Status::Complete(len)) => {
                        let ParsedHeaders {
                            headers, framing, ..
                        } = convert_headers(req.headers, None);
                        let head = Head::Request(RequestHead {
                            method: req.method.unwrap_or_default().to_owned(),
                            target: req.path.unwrap_or_default().to_owned(),
                            version_minor: req.version.unwrap_or(1),
                            headers,
                        });
                        Ok(Some((len, head, framing)))
                    }
                    Ok(_) => Ok(None),
                    Err(e) => Err(e),
                }
            }
            Kind::Response => {
                let mut resp = httparse::Response::new(&mut []);
                match config.parse_response_with_uninit_headers(&mut resp, buf, headers) {
                    Ok(httparse::Status::Complete(len)) => {
                        let status = resp.code.unwrap_or_default();
                        let ParsedHeaders {
                            headers,
                            framing,
                            event_stream,
                        } = convert_headers(resp.headers, Some(status));
                        let head = Head::Response(ResponseHead {
                            status,
                            version_minor: resp.version.unwrap_or(1),
                            headers,
                            event_stream,
                        });
                        Ok(Some((len, head, framing)))
                    }
                    Ok(_) => Ok(None),
                    Err(e) => Err(e),
                }
            }
        };
        match result {
            Ok(head) => Ok(head),
            Err(httparse::Error::TooManyHeaders) => Err(()),
            Err(_) => Ok(None),
        }
    }
}

/// Headers [`parse_head_fast`] records; a head with more takes `httparse`'s
/// path (which allows up to [`HEADERS_MAX`]).
const FAST_HEADERS: usize = 32;

/// `bytes` as text, one `char` per byte: the same as `str::from_utf8` for
/// the ASCII that the fast walk checked (method and target), without a
/// second validation pass or a `memcpy` call.
fn ascii_string(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len());
    s.extend(bytes.iter().map(|&b| char::from(b)));
    s
}

/// `HTTP/1.0` or `HTTP/1.1` followed by CRLF: the minor version.
fn version_crlf(s: Option<&[u8; 10]>) -> Option<u8> {
    match s? {
        b"HTTP/1.1\r\n" => Some(1),
        b"HTTP/1.0\r\n" => Some(0),
        _ => None,
    }
}

/// Differential check for the `http_head` fuzz target (compiled only under
/// `cargo fuzz`, which sets `--cfg fuzzing`): panics when [`parse_head_fast`]
/// accepts `buf` (as a request head or as a response head) and httparse,
/// given as many header slots as the general path allows, does not read the
/// same head (length, start line, packed headers, framing, event-stream flag).
#[cfg(fuzzing)]
pub(crate) fn fuzz_agree(buf: &[u8]) {
    for kind in [Kind::Request, Kind::Response] {
        if let Some(fast) = parse_head_fast(buf, kind) {
            let mut slots = vec![MaybeUninit::uninit(); HEADERS_MAX];
            let model = parse_head_with(buf, kind, &mut slots).ok().flatten();
            assert_eq!(
                Some(fast),
                model,
                "fast head walk and httparse disagree ({kind:?})"
            );
        }
    }
}

/// The head at the start of `buf` when it is complete and written the
/// plain way: CRLF line endings, a request target of visible ASCII, one
/// space between the parts of the start line, at most [`FAST_HEADERS`]
/// headers; `None` for anything else (incomplete, malformed, or just
/// unusual: the caller then asks `httparse`, whose verdict stands).
///
/// Whatever it accepts, `httparse` accepts with the same result: the same
/// length, method, target, version, status and header slots (values
/// trimmed of SP/HTAB as `httparse` trims them), hence the same packed
/// headers, framing and event-stream flag as [`parse_head_with`] (checked
/// by the proptest `fast_head_is_httparse`). It needs no header slots and
/// computes the framing and the event-stream flag while it walks.
fn parse_head_fast(buf: &[u8], kind: Kind) -> Option<ParsedHead> {
    let (i, request, status, version_minor) = match kind {
        Kind::Request => {
            let (i, method, target, version_minor) = fast_request_line(buf)?;
            (i, Some((method, target)), None, version_minor)
        }
        Kind::Response => {
            let (i, status, version_minor) = fast_status_line(buf)?;
            (i, None, Some(status), version_minor)
        }
    };
    let FastFields {
        end: i,
        headers,
        scan,
        content_type,
    } = fast_header_lines(buf, i, status.is_some())?;
    let framing = scan.finish(status);
    let head = match (request, status) {
        (Some((method, target)), _) => Head::Request(RequestHead {
            method: match method {
                // The usual methods from constants (no byte loop).
                b"POST" => String::from("POST"),
                b"GET" => String::from("GET"),
                b"DELETE" => String::from("DELETE"),
                _ => ascii_string(method),
            },
            target: ascii_string(target),
            version_minor,
            headers,
        }),
        (None, Some(status)) => Head::Response(ResponseHead {
            status,
            version_minor,
            headers,
            event_stream: content_type.is_some_and(is_event_stream),
        }),
        (None, None) => return None,
    };
    Some((i, head, framing))
}

/// The request line (RFC 9112 §3) at the start of `buf`, written the plain
/// way (see [`parse_head_fast`]): the index after its CRLF, the method, the
/// target and the minor version.
fn fast_request_line(buf: &[u8]) -> Option<(usize, &[u8], &[u8], u8)> {
    let m = tchar_run(buf)?;
    if m == 0 || buf.get(m) != Some(&b' ') {
        return None;
    }
    let t0 = m + 1;
    let t = buf
        .get(t0..)?
        .iter()
        .position(|&b| !(0x21..=0x7e).contains(&b))?;
    if t == 0 || buf.get(t0 + t) != Some(&b' ') {
        return None;
    }
    let v0 = t0 + t + 1;
    let version_minor = version_crlf(buf.get(v0..).and_then(|r| r.first_chunk::<10>()))?;
    Some((v0 + 10, buf.get(..m)?, buf.get(t0..t0 + t)?, version_minor))
}

/// The status line (RFC 9112 §4) at the start of `buf`, written the plain
/// way (see [`parse_head_fast`]): the index after its CRLF, the status code
/// and the minor version.
fn fast_status_line(buf: &[u8]) -> Option<(usize, u16, u8)> {
    let line = buf.first_chunk::<13>()?;
    let (version, rest) = line.split_at(8);
    let version_minor = match version {
        b"HTTP/1.1" => 1,
        b"HTTP/1.0" => 0,
        _ => return None,
    };
    let &[b' ', h, t, o, after] = rest else {
        return None;
    };
    if !(h.is_ascii_digit() && t.is_ascii_digit() && o.is_ascii_digit()) {
        return None;
    }
    let status = u16::from(h - b'0') * 100 + u16::from(t - b'0') * 10 + u16::from(o - b'0');
    let i = match after {
        b' ' => {
            let e = value_stop(buf, 13);
            if buf.get(e..e + 2) != Some(b"\r\n") {
                return None;
            }
            e + 2
        }
        b'\r' if buf.get(13) == Some(&b'\n') => 14,
        _ => return None,
    };
    Some((i, status, version_minor))
}

/// The header section [`fast_header_lines`] read.
struct FastFields<'b> {
    /// Index just past the empty line that ends the head.
    end: usize,
    /// The headers, packed.
    headers: Headers,
    /// The framing headers seen.
    scan: FramingScan<'b>,
    /// The first `Content-Type` value (responses only).
    content_type: Option<&'b [u8]>,
}

/// The header lines (RFC 9112 §5) from `i` to the empty line, each written
/// the plain way (see [`parse_head_fast`]), at most [`FAST_HEADERS`], in a
/// head of at most 65 535 bytes; `response`: look for `Content-Type`.
fn fast_header_lines(buf: &[u8], mut i: usize, response: bool) -> Option<FastFields<'_>> {
    let mut spans = [[0u16; 4]; FAST_HEADERS];
    let mut count = 0;
    let (mut names_len, mut values_len) = (0usize, 0usize);
    let mut scan = FramingScan::new();
    let mut content_type: Option<&[u8]> = None;
    loop {
        let rest = buf.get(i..)?;
        if rest.first() == Some(&b'\r') {
            if rest.get(1) != Some(&b'\n') {
                return None;
            }
            i += 2;
            break;
        }
        let (n, v, end, stop) = fast_header_line(buf, i)?;
        match n {
            12 if response && content_type.is_none() => {
                if let (Some(name), Some(value)) = (rest.get(..n), buf.get(v..end))
                    && CONTENT_TYPE.matches(name)
                {
                    content_type = Some(value);
                }
            }
            // (The name is tested here: `mcp-session-id` is 14 bytes too.)
            14 => {
                if let (Some(name), Some(value)) = (rest.get(..n), buf.get(v..end))
                    && CONTENT_LENGTH.matches(name)
                {
                    scan.add_length(value);
                }
            }
            17 => {
                if let (Some(name), Some(value)) = (rest.get(..n), buf.get(v..end))
                    && TRANSFER_ENCODING.matches(name)
                {
                    scan.add_codings(value);
                }
            }
            _ => {}
        }
        // Offsets are checked below (the whole head fits in u16).
        *spans.get_mut(count)? = [i as u16, n as u16, v as u16, (end - v) as u16];
        count += 1;
        names_len += n;
        values_len += end - v;
        i = stop + 2;
    }
    if i > usize::from(u16::MAX) {
        return None;
    }
    let headers = Headers::pack_spans(buf, spans.get(..count)?, names_len, values_len);
    Some(FastFields {
        end: i,
        headers,
        scan,
        content_type,
    })
}

/// The header line at `i` (not the empty line), written the plain way:
/// the name's length, the value's start and end (SP/HTAB around it left
/// out, as `httparse` trims them), and the index of the line's CR.
fn fast_header_line(buf: &[u8], i: usize) -> Option<(usize, usize, usize, usize)> {
    let colon = tchar_end(buf, i);
    let n = colon - i;
    if n == 0 || buf.get(colon) != Some(&b':') {
        return None;
    }
    let mut v = colon + 1;
    // Usually one space, then the value.
    if let Some(&[b' ', b]) = buf.get(v..).and_then(|r| r.first_chunk::<2>())
        && b != b' '
        && b != b'\t'
    {
        v += 1;
    } else {
        while let Some(b' ' | b'\t') = buf.get(v) {
            v += 1;
        }
    }
    let stop = value_stop(buf, v);
    if buf.get(stop..stop + 2) != Some(b"\r\n") {
        return None;
    }
    let mut end = stop;
    // Usually no trailing whitespace: one test of the byte before the CR.
    if matches!(buf.get(stop.wrapping_sub(1)), Some(b' ' | b'\t')) {
        while end > v && matches!(buf.get(end - 1), Some(b' ' | b'\t')) {
            end -= 1;
        }
    }
    Some((n, v, end, stop))
}

/// Checks a partial head (no blank line yet) for early errors; `false` when
/// `httparse` already rejects it (running out of header slots is not an error
/// here: the complete head is parsed with more).
pub(super) fn partial_head_ok(buf: &[u8], kind: Kind) -> bool {
    let mut headers = [MaybeUninit::uninit(); HEADERS_INITIAL];
    let config = httparse::ParserConfig::default();
    let result = match kind {
        Kind::Request => config
            .parse_request_with_uninit_headers(
                &mut httparse::Request::new(&mut []),
                buf,
                &mut headers,
            )
            .map(|_| ()),
        Kind::Response => config
            .parse_response_with_uninit_headers(
                &mut httparse::Response::new(&mut []),
                buf,
                &mut headers,
            )
            .map(|_| ()),
    };
    matches!(result, Ok(()) | Err(httparse::Error::TooManyHeaders))
}

#[cfg(test)]
mod tests {
    use super::super::framing::trim_ows;
    use super::*;
    use crate::Header;

    /// The framing a parsed head carries (computed from httparse's slots)
    /// is the framing of the packed head, for every mix of the two framing
    /// headers, for requests and responses.
    #[test]
    fn parsed_framing_matches_body_framing() {
        let values = [
            "",
            "0",
            "12",
            " 12 , 12",
            "12, 13",
            "x",
            "chunked",
            "gzip, chunked",
            "gzip",
        ];
        let starts: [&[u8]; 4] = [
            b"POST / HTTP/1.1\r\n",
            b"HTTP/1.1 200 OK\r\n",
            b"HTTP/1.1 204 No Content\r\n",
            b"HTTP/1.1 101 Switching\r\n",
        ];
        let mut checked = 0;
        for start in starts {
            let kind = if start.starts_with(b"HTTP/") {
                Kind::Response
            } else {
                Kind::Request
            };
            for cl in values {
                for te in values {
                    for order in [false, true] {
                        let mut buf = start.to_vec();
                        let mut lines = vec![];
                        if !cl.is_empty() {
                            lines.push(format!("Content-Length: {cl}\r\n"));
                            lines.push(format!("content-length:{cl}\r\n"));
                        }
                        if !te.is_empty() {
                            lines.push(format!("Transfer-Encoding: {te}\r\n"));
                        }
                        if order {
                            lines.reverse();
                        }
                        buf.extend(lines.concat().into_bytes());
                        buf.extend_from_slice(b"X: y\r\n\r\n");
                        let Some((head, framing)) = parse_head(&buf, kind) else {
                            panic!("unparsed head {:?}", String::from_utf8_lossy(&buf));
                        };
                        assert_eq!(
                            framing,
                            body_framing(&head),
                            "{}",
                            String::from_utf8_lossy(&buf)
                        );
                        checked += 1;
                    }
                }
            }
        }
        assert_eq!(checked, 4 * 9 * 9 * 2);
    }

    /// Every header of `stored` and every lookup agree with the trimmed
    /// `httparse` slots `want` (the simple model: a list, first match wins).
    fn check_stored(stored: &Headers, want: &[(String, Vec<u8>)]) {
        let got: Vec<(String, Vec<u8>)> = stored
            .iter()
            .map(|h| (h.name.to_owned(), h.value.to_vec()))
            .collect();
        assert_eq!(got, want);
        assert_eq!(stored.len(), want.len());
        let packed: Headers = want
            .iter()
            .map(|(name, value)| Header {
                name: name.clone(),
                value: value.clone(),
            })
            .collect();
        assert_eq!(stored, &packed);
        let mut names: Vec<String> = want.iter().map(|(n, _)| n.to_ascii_uppercase()).collect();
        names.extend(["", ":", "a:", "not-there", "x-a: b", "X-A\r\nB"].map(String::from));
        for (name, _) in want {
            // Prefixes and extensions of real names, and names spilling
            // into the value.
            names.push(
                name.get(..name.len().saturating_sub(1))
                    .unwrap_or("")
                    .to_owned(),
            );
            names.push(format!("{name}:"));
            names.push(format!("{name}x"));
        }
        for name in &names {
            let first = want
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| &v[..]);
            assert_eq!(crate::header(stored, name), first, "{name:?}");
            assert_eq!(crate::header(&packed, name), first, "{name:?}");
        }
    }

    proptest::proptest! {
        /// A response's `event_stream` (found while converting the head)
        /// is what a lookup of its first `Content-Type` gives, with case
        /// flips, spaces, parameters, repeated and look-alike headers.
        #[test]
        fn event_stream_flag_matches_content_type_lookup(
            types in proptest::collection::vec(
                (
                    proptest::sample::select(vec!["content-type", "Content-Type", "CONTENT-TYPE", "content-typ", "x-content-type"]),
                    proptest::sample::select(vec!["text/event-stream", "Text/Event-Stream", "text/event-stream; charset=utf-8", " text/event-stream ;x", "application/json", "text/event-streams", ""]),
                ),
                0..4,
            ),
        ) {
            let mut buf = b"HTTP/1.1 200 OK\r\n".to_vec();
            for (name, value) in &types {
                buf.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
            }
            buf.extend_from_slice(b"\r\n");
            let Some((Head::Response(r), _)) = parse_head(&buf, Kind::Response) else {
                panic!("unparsed {:?}", String::from_utf8_lossy(&buf));
            };
            let want = crate::header(&r.headers, "content-type").is_some_and(is_event_stream);
            proptest::prop_assert_eq!(r.event_stream, want);
        }
    }

    /// Headers of a parsed head keep names, trimmed values and order.
    #[test]
    fn parsed_headers_kept() {
        let buf: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type:  text/event-stream ; x=1\r\n\
            X-Empty:\r\nX-Tab:\tv \t\nmcp-session-id: abc\r\nX-Last: \r\n\r\n";
        let Some((Head::Response(r), _)) = parse_head(buf, Kind::Response) else {
            panic!("unparsed");
        };
        assert!(r.event_stream);
        check_stored(
            &r.headers,
            &[
                ("Content-Type".into(), b"text/event-stream ; x=1".to_vec()),
                ("X-Empty".into(), vec![]),
                ("X-Tab".into(), b"v".to_vec()),
                ("mcp-session-id".into(), b"abc".to_vec()),
                ("X-Last".into(), vec![]),
            ],
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(1024))]
        /// Stored headers give back exactly `httparse`'s trimmed slots and
        /// are found by the same lookups as the simple model, on heads with
        /// odd whitespace, empty values, bare LFs, colons and non-UTF-8
        /// bytes in values (whatever `httparse` accepts).
        #[test]
        fn stored_headers_match_httparse_slots(
            response in proptest::prelude::any::<bool>(),
            lines in proptest::collection::vec(
                (
                    "[A-Za-z0-9!#$%&'*+.^_`|~-]{0,6}",
                    proptest::collection::vec(
                        proptest::sample::select(vec![b'a', b'Z', b' ', b'\t', b':', 0x80, 0xff, b'\r', b'\n', 0]),
                        0..8,
                    ),
                    proptest::prelude::any::<bool>(),
                ),
                0..8,
            ),
        ) {
            let mut buf: Vec<u8> = if response {
                b"HTTP/1.1 200 OK\r\n".to_vec()
            } else {
                b"POST /mcp HTTP/1.1\r\n".to_vec()
            };
            for (name, value, crlf) in &lines {
                buf.extend_from_slice(name.as_bytes());
                buf.push(b':');
                buf.extend_from_slice(value);
                buf.extend_from_slice(if *crlf { b"\r\n" } else { b"\n" });
            }
            buf.extend_from_slice(b"\r\n");
            let kind = if response { Kind::Response } else { Kind::Request };
            if let Some((head, _)) = parse_head(&buf, kind) {
                let mut slots = [httparse::EMPTY_HEADER; 16];
                let n = if response {
                    let mut r = httparse::Response::new(&mut slots);
                    proptest::prop_assert!(r.parse(&buf).is_ok_and(|s| s.is_complete()));
                    r.headers.len()
                } else {
                    let mut r = httparse::Request::new(&mut slots);
                    proptest::prop_assert!(r.parse(&buf).is_ok_and(|s| s.is_complete()));
                    r.headers.len()
                };
                let want: Vec<(String, Vec<u8>)> = slots[..n]
                    .iter()
                    .map(|h| (h.name.to_owned(), trim_ows(h.value).to_vec()))
                    .collect();
                check_stored(head.headers(), &want);
            }
        }
    }

    /// `httparse` alone (the model of [`parse_head_fast`]): the head at the
    /// start of `buf` with as many header slots as the general path allows.
    fn httparse_head(buf: &[u8], kind: Kind) -> Option<ParsedHead> {
        let mut slots = vec![MaybeUninit::uninit(); HEADERS_MAX];
        parse_head_with(buf, kind, &mut slots).ok().flatten()
    }

    proptest::proptest! {
        /// The eight-bytes-at-a-time scans stop where a byte loop over
        /// `httparse`'s tables stops, from any start, on bytes near every
        /// class boundary.
        #[test]
        fn word_scans_match_byte_loops(
            bytes in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::sample::select(vec![
                        0u8, 0x08, b'\t', 0x0a, b'\r', 0x1f, b' ', b'!', b'"', b',', b'-', b'.',
                        b'/', b'0', b'9', b':', b'@', b'A', b'Z', b'[', b'_', b'`', b'a', b'z',
                        b'{', b'|', b'}', b'~', 0x7f, 0x80, 0xad, 0xe0, 0xff,
                    ]),
                    proptest::prelude::any::<u8>(),
                    proptest::sample::select(vec![b'a', b'Z', b'-', b'5']),
                ],
                0..40,
            ),
            start in 0usize..42,
        ) {
            let tchar = bytes
                .iter()
                .skip(start)
                .position(|&b| !httparse_tchar(b))
                .map_or(bytes.len().max(start), |p| start + p);
            proptest::prop_assert_eq!(tchar_end(&bytes, start), tchar);
            let value = bytes
                .iter()
                .skip(start)
                .position(|&b| !(b == b'\t' || (b' '..=0x7e).contains(&b) || b >= 0x80))
                .map_or(bytes.len().max(start), |p| start + p);
            proptest::prop_assert_eq!(value_stop(&bytes, start), value);
        }
    }

    /// `httparse`'s `TOKEN_MAP`, spelled out (RFC 9110 §5.6.2 `tchar`).
    fn httparse_tchar(b: u8) -> bool {
        b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
    }

    #[test]
    fn tchar_table_is_rfc_tchar() {
        use crate::swar::TCHAR;
        for b in 0..=255u8 {
            assert_eq!(TCHAR[usize::from(b)], httparse_tchar(b), "{b:#x}");
        }
    }

    /// One of `good` (most of the time) or of `bad`.
    fn pick<T: Copy + std::fmt::Debug + 'static>(
        good: &'static [T],
        bad: &'static [T],
    ) -> impl proptest::strategy::Strategy<Value = T> {
        use proptest::prelude::*;
        prop_oneof![
            40 => proptest::sample::select(good),
            1 => proptest::sample::select(bad),
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4096))]
        /// Whatever the fast head parser accepts, `httparse` accepts with
        /// the same length, start line, packed headers, framing and
        /// event-stream flag; on start lines and header lines built from
        /// pieces that are valid, odd or wrong (spaces, tabs, bare LFs,
        /// CRs, controls, DEL, obs-text, colons, non-tchar names), cut
        /// anywhere, with a body or nothing after the head.
        #[test]
        fn fast_head_is_httparse(
            start in pick(
                &["POST /mcp HTTP/1.1\r\n", "GET / HTTP/1.0\r\n", "M-X_! /a?b=c%20 HTTP/1.1\r\n",
                  "HTTP/1.1 200 OK\r\n", "HTTP/1.0 204 \r\n", "HTTP/1.1 404\r\n",
                  "HTTP/1.1 200 O\tK \u{e9}\r\n", "HTTP/1.1 100 Continue\r\n"],
                &["POST  /mcp HTTP/1.1\r\n", "POST /mcp HTTP/1.1\n", "POST /m\u{e9} HTTP/1.1\r\n",
                  "POST /mcp HTTP/1.2\r\n", "POST /mcp HTTP/1.1 \r\n", "PO(ST /mcp HTTP/1.1\r\n",
                  "HTTP/1.1 20 OK\r\n", "HTTP/1.1  200 OK\r\n", "HTTP/1.1 200 OK\n",
                  "HTTP/1.1 200\rOK\r\n", "HTTP/2.0 200 OK\r\n", "\r\nPOST /mcp HTTP/1.1\r\n"],
            ),
            lines in proptest::collection::vec(
                (
                    pick(
                        &["Content-Type", "content-length", "Transfer-Encoding", "X_y.z~1", "a",
                          "Host", "mcp-session-id", "Accept"],
                        &["Bad Name", "Bad\"", "", "N\u{e9}", "Host "],
                    ),
                    pick(&[": ", ":", ":\t ", ":  "], &[" :", "\r\n:"]),
                    proptest::collection::vec(
                        pick(
                            &[b'a', b'Z', b'0', b'5', b' ', b'\t', b':', b',', b'/', b';', 0x80, 0xff],
                            &[0x7f, 0, 0x1f, b'\r', b'\n'],
                        ),
                        0..6,
                    ),
                    proptest::sample::select(vec![
                        "text/event-stream", "chunked", "12", "1, 1", "", " x ", "gzip, chunked",
                        "0123456789abcdef0123456789abcdef0123456789",
                    ]),
                    pick(&["\r\n", " \r\n", "\t\r\n"], &["\n", "\r", "\r\r\n"]),
                ),
                0..36,
            ),
            end in pick(&["\r\n", "\r\n5\r\nhello\r\n0\r\n\r\n"], &["\n", "\r", ""]),
            cut in proptest::prelude::any::<proptest::sample::Index>(),
            do_cut in proptest::prelude::any::<u8>(),
        ) {
            let mut buf = start.as_bytes().to_vec();
            for (name, sep, raw, word, eol) in &lines {
                buf.extend_from_slice(name.as_bytes());
                buf.extend_from_slice(sep.as_bytes());
                buf.extend_from_slice(raw);
                buf.extend_from_slice(word.as_bytes());
                buf.extend_from_slice(eol.as_bytes());
            }
            buf.extend_from_slice(end.as_bytes());
            if do_cut < 64 {
                buf.truncate(cut.index(buf.len() + 1));
            }
            for kind in [Kind::Request, Kind::Response] {
                if let Some(fast) = parse_head_fast(&buf, kind) {
                    proptest::prop_assert_eq!(Some(fast), httparse_head(&buf, kind));
                }
            }
        }
    }

    /// Plain heads (as the SDKs send them) take the fast path.
    #[test]
    fn plain_heads_take_the_fast_path() {
        let heads: [(&[u8], Kind); 3] = [
            (
                b"POST /mcp HTTP/1.1\r\nHost: a:1\r\ncontent-type: application/json\r\n\
                  Content-Length: 5\r\nX-Tab:\tv\t \r\nX-Empty:\r\n\r\nhello",
                Kind::Request,
            ),
            (
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
                  Transfer-Encoding: chunked\r\n\r\n",
                Kind::Response,
            ),
            (b"HTTP/1.0 204\r\nX: \x80\xff\r\n\r\n", Kind::Response),
        ];
        for (buf, kind) in heads {
            let fast = parse_head_fast(buf, kind);
            assert!(fast.is_some(), "{:?}", String::from_utf8_lossy(buf));
            assert_eq!(fast, httparse_head(buf, kind));
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2048))]
        /// The in-place fast path (`parse_head_prefix`) agrees with the
        /// general one (blank-line search, then `parse_head` of exactly that
        /// prefix) whenever it answers, on heads with random bytes replaced
        /// by line breaks, spaces, colons and other troublemakers.
        #[test]
        fn head_fast_path_agrees_with_blank_line_search(
            response in proptest::prelude::any::<bool>(),
            edits in proptest::collection::vec((0usize..200, 0usize..10), 0..6),
            cut in 0usize..220,
        ) {
            let base: &[u8] = if response {
                b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: 5\r\n\r\nhello"
            } else {
                b"POST /mcp HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nX: y\r\n\r\n5\r\nhello\r\n"
            };
            let mut buf = base.to_vec();
            let alphabet = [b'\r', b'\n', b' ', b':', b'\t', b'a', 0x80, b'H', 0, b'/'];
            for (pos, b) in edits {
                if let Some(x) = buf.get_mut(pos % base.len()) {
                    *x = alphabet[b];
                }
            }
            buf.truncate(cut);
            // `MessageParser::next` skips line breaks before a head.
            let skip = buf.iter().take_while(|&&b| b == b'\r' || b == b'\n').count();
            let d = &buf[skip..];
            for kind in [Kind::Request, Kind::Response] {
                if let Some((len, head, framing)) = parse_head_prefix(d, kind) {
                    let mut line = LineState::Mid;
                    proptest::prop_assert_eq!(find_blank_line_end(&mut line, d), Some(len));
                    proptest::prop_assert_eq!(parse_head(&d[..len], kind), Some((head, framing)));
                }
            }
        }
    }
}
