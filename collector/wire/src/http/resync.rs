//! The resync classifier: where a plausible message start line begins in
//! bytes that are not known to be at a message boundary (see the `http`
//! module's **Resync**).

use super::Kind;

/// Longest candidate start line (bytes, including its line ending) that resync
/// recognises as a message start.
pub const RESYNC_LINE_MAX: usize = 4096;

/// Request methods accepted as a resync point (with the following space).
const RESYNC_METHODS: [&[u8]; 7] = [
    b"GET ",
    b"POST ",
    b"PUT ",
    b"DELETE ",
    b"HEAD ",
    b"OPTIONS ",
    b"PATCH ",
];

/// Outcome of checking a candidate start line.
pub(super) enum Class {
    Yes,
    No,
    NeedMore,
}

/// Compares `s` with the literal `lit`: `Some(true)` when `s` starts with it,
/// `None` when `s` is a proper prefix of it, `Some(false)` otherwise.
fn starts_with_partial(s: &[u8], lit: &[u8]) -> Option<bool> {
    let n = s.len().min(lit.len());
    if s.get(..n) != lit.get(..n) {
        Some(false)
    } else if s.len() >= lit.len() {
        Some(true)
    } else {
        None
    }
}

/// Checks that `s` continues with `[CR] LF` (index `i` is the first byte after
/// the version).
fn class_line_end(s: &[u8], i: usize) -> Class {
    match s.get(i) {
        None => Class::NeedMore,
        Some(b'\n') => Class::Yes,
        Some(b'\r') => match s.get(i + 1) {
            None => Class::NeedMore,
            Some(b'\n') => Class::Yes,
            Some(_) => Class::No,
        },
        Some(_) => Class::No,
    }
}

/// Is `s` (from a candidate position) a plausible status line?
fn classify_status_line(s: &[u8]) -> Class {
    match starts_with_partial(s, b"HTTP/1.") {
        Some(false) => return Class::No,
        None => return Class::NeedMore,
        Some(true) => {}
    }
    let fixed = [
        s.get(7).map(|&b| b == b'0' || b == b'1'),
        s.get(8).map(|&b| b == b' '),
        s.get(9).map(u8::is_ascii_digit),
        s.get(10).map(u8::is_ascii_digit),
        s.get(11).map(u8::is_ascii_digit),
    ];
    for f in fixed {
        match f {
            Some(false) => return Class::No,
            None => return Class::NeedMore,
            Some(true) => {}
        }
    }
    match s.get(12) {
        None => Class::NeedMore,
        Some(b'\r' | b'\n') => class_line_end(s, 12),
        Some(b' ') => {
            // Reason phrase: HTAB / SP / VCHAR / obs-text, then the line end.
            let rest = s.get(13..).unwrap_or_default();
            match rest
                .iter()
                .position(|&b| !(b == b'\t' || b == b' ' || b >= 0x21 && b != 0x7f))
            {
                None => Class::NeedMore,
                Some(j) => class_line_end(s, 13 + j),
            }
        }
        Some(_) => Class::No,
    }
}

/// Is `s` (from a candidate position) a plausible request line?
fn classify_request_line(s: &[u8]) -> Class {
    let mut need_more = false;
    for m in RESYNC_METHODS {
        match starts_with_partial(s, m) {
            Some(false) => continue,
            None => {
                need_more = true;
                continue;
            }
            Some(true) => {}
        }
        let rest = s.get(m.len()..).unwrap_or_default();
        let Some(t) = rest.iter().position(|&b| !(0x21..=0x7e).contains(&b)) else {
            return Class::NeedMore;
        };
        if t == 0 || rest.get(t) != Some(&b' ') {
            return Class::No;
        }
        let after = rest.get(t + 1..).unwrap_or_default();
        return match starts_with_partial(after, b"HTTP/1.") {
            Some(false) => Class::No,
            None => Class::NeedMore,
            Some(true) => match after.get(7) {
                None => Class::NeedMore,
                Some(b'0' | b'1') => class_line_end(s, m.len() + t + 1 + 8),
                Some(_) => Class::No,
            },
        };
    }
    if need_more {
        Class::NeedMore
    } else {
        Class::No
    }
}

/// A start-line check.
type Classifier = fn(&[u8]) -> Class;

/// Classifies a candidate message start, limited to the kinds allowed.
pub(super) fn classify(s: &[u8], expect: Option<Kind>) -> Class {
    let window = s.get(..RESYNC_LINE_MAX).unwrap_or(s);
    let mut need_more = false;
    let checks: [(Kind, Classifier); 2] = [
        (Kind::Response, classify_status_line),
        (Kind::Request, classify_request_line),
    ];
    for (kind, check) in checks {
        if expect.is_some_and(|k| k != kind) {
            continue;
        }
        match check(window) {
            Class::Yes => return Class::Yes,
            Class::NeedMore => need_more = true,
            Class::No => {}
        }
    }
    if need_more && s.len() < RESYNC_LINE_MAX {
        Class::NeedMore
    } else {
        Class::No
    }
}

/// Where a resync scan over a slice stopped.
pub(super) enum Scan {
    /// A complete plausible start line begins at this index.
    Found(usize),
    /// A possible start line begins at this index but the slice ends first.
    Partial(usize),
    /// No candidate in the slice.
    Nothing,
}

pub(super) fn scan_for_start(s: &[u8], expect: Option<Kind>) -> Scan {
    let mut i = 0usize;
    while let Some(off) = s.get(i..).and_then(|r| {
        r.iter()
            .position(|b| matches!(b, b'H' | b'G' | b'P' | b'D' | b'O'))
    }) {
        let p = i + off;
        match classify(s.get(p..).unwrap_or_default(), expect) {
            Class::Yes => return Scan::Found(p),
            Class::NeedMore => return Scan::Partial(p),
            Class::No => i = p + 1,
        }
    }
    Scan::Nothing
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_start_lines() {
        assert!(matches!(
            classify(b"POST /mcp HTTP/1.1\r\n", None),
            Class::Yes
        ));
        assert!(matches!(classify(b"HTTP/1.1 200 OK\r\n", None), Class::Yes));
        assert!(matches!(classify(b"HTTP/1.1 202\n", None), Class::Yes));
        assert!(matches!(
            classify(b"HTTP/1.1 200 OK", None),
            Class::NeedMore
        ));
        assert!(matches!(classify(b"PO", None), Class::NeedMore));
        assert!(matches!(classify(b"POSTX", None), Class::No));
        assert!(matches!(classify(b"GET  / HTTP/1.1\r\n", None), Class::No));
        assert!(matches!(classify(b"GET / HTTP/2.0\r\n", None), Class::No));
        assert!(matches!(classify(b"GET / HTTP/1.1x", None), Class::No));
        assert!(matches!(
            classify(b"HTTP/1.1 200 OK\r\n", Some(Kind::Request)),
            Class::No
        ));
    }
}
