//! The analysis parameters shared by the engine, the rules, the readiness verdict and the
//! service: the time [`Range`] and the rule thresholds ([`Config`], [`SpikeConfig`]).
//!
//! They live apart from [`crate::engine`] so that the rules and the readiness verdict, which the
//! engine calls, do not import the engine (the module graph is acyclic; `tests/modules.rs`
//! checks it).

use crate::timeutil::{MAX_RANGE_NS, MIN_RANGE_NS, format_rfc3339_ns};
use anyhow::{Result, bail};
use serde::Serialize;

/// A half-open time range `[since_ns, until_ns)` in Unix nanoseconds (span start times).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Range {
    /// Inclusive start.
    pub since_ns: i64,
    /// Exclusive end.
    pub until_ns: i64,
}

impl Range {
    /// Checks `since < until` and that both lie in the accepted span
    /// [`MIN_RANGE_NS`, `MAX_RANGE_NS`] (1970-01-01 .. 2200-01-01), so that lengths and step
    /// counts never overflow.
    ///
    /// # Errors
    /// An empty or inverted range, or a time outside the accepted span.
    pub fn new(since_ns: i64, until_ns: i64) -> Result<Self> {
        for (what, t) in [("since", since_ns), ("until", until_ns)] {
            if !(MIN_RANGE_NS..=MAX_RANGE_NS).contains(&t) {
                bail!(
                    "{what} {} is outside the accepted span 1970-01-01T00:00:00Z .. \
                     2200-01-01T00:00:00Z",
                    format_rfc3339_ns(t)
                );
            }
        }
        if since_ns >= until_ns {
            bail!("empty time range: since must be before until");
        }
        Ok(Self { since_ns, until_ns })
    }

    /// Length in ns (0 for a range built by hand with `until <= since`; never overflows).
    pub fn len_ns(&self) -> i64 {
        self.until_ns
            .checked_sub(self.since_ns)
            .unwrap_or(i64::MAX)
            .max(0)
    }
}

/// Sensitivity of `status_4xx_spike` (see `rules::status_4xx_spike`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpikeConfig {
    /// Window (bucket) length in ns. Default 60 s.
    pub bucket_ns: i64,
    /// Trailing baseline length, in buckets. Default 60 (one hour of 1-minute buckets).
    pub baseline_buckets: u32,
    /// Minimum 4xx answers in a window to flag it. Default 5.
    pub min_count: u64,
    /// Minimum 4xx rate (0..1) in a window to flag it. Default 0.05.
    pub min_rate: f64,
    /// The window rate must be at least `factor` × the baseline rate. Default 3.
    pub factor: f64,
    /// Rate at/above which a spike is `critical` instead of `warning`. Default 0.5.
    pub critical_rate: f64,
    /// Also split windows by MCP method. Default false.
    pub by_method: bool,
    /// Also split windows by client identity. Default false.
    pub by_client: bool,
}

impl Default for SpikeConfig {
    fn default() -> Self {
        Self {
            bucket_ns: 60 * crate::timeutil::NS_PER_SEC,
            baseline_buckets: 60,
            min_count: 5,
            min_rate: 0.05,
            factor: 3.0,
            critical_rate: 0.5,
            by_method: false,
            by_client: false,
        }
    }
}

/// Rule thresholds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Config {
    /// `status_4xx_spike` sensitivity.
    pub spike: SpikeConfig,
    /// How far before `since` `cross_instance_handle_failure` looks for the mint of a handle
    /// used in range, in ns. Default 24 h.
    pub handle_lookback_ns: i64,
    /// How far before the range start the client identity looks for the span that minted a
    /// session (`mcptap.session.minted`), to name the client of session spans that carry no
    /// clientInfo (answered by an instance that never saw the `initialize`), in ns.
    /// Default 24 h.
    pub session_lookback_ns: i64,
    /// Sample trace ids per finding. Default 5.
    pub samples: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            spike: SpikeConfig::default(),
            handle_lookback_ns: 24 * 3600 * crate::timeutil::NS_PER_SEC,
            session_lookback_ns: 24 * 3600 * crate::timeutil::NS_PER_SEC,
            samples: 5,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timeutil::parse_rfc3339_ns;

    #[test]
    fn range_accepts_only_the_span() {
        let t = |s: &str| parse_rfc3339_ns(s).unwrap_or_else(|e| panic!("{e}"));
        let e = Range::new(t("1700-01-01T00:00:00Z"), t("2262-01-01T00:00:00Z"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            e.contains("since 1700-01-01T00:00:00.000000000Z is outside"),
            "{e}"
        );
        assert!(Range::new(0, t("2200-01-02T00:00:00Z")).is_err());
        assert!(Range::new(-1, 5).is_err());
        let r = Range::new(0, MAX_RANGE_NS).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.len_ns(), MAX_RANGE_NS);
        let hand = Range {
            since_ns: i64::MIN,
            until_ns: i64::MAX,
        };
        assert_eq!(hand.len_ns(), i64::MAX);
    }
}
