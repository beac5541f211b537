//! Retry policy: exponential backoff with full jitter, honouring `Retry-After`.
//!
//! Full jitter (a uniform delay up to the exponential cap) spreads out clients that failed
//! together, which matters when many parallel blob uploads hit the same throttled registry.

use std::time::{Duration, SystemTime};

use rand::Rng;

use crate::error::Error;

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Total attempts including the first; 1 disables retries.
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// Cap on an honoured `Retry-After`, so a hostile or confused server cannot stall a copy
    /// for hours.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(20),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// A policy that makes one attempt and never retries.
    pub fn none() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// Delay before attempt `attempt+1` after `attempt` failures (attempt starts at 1): full
    /// jitter = uniform(0, min(max_delay, base_delay * 2^(attempt-1))); if `retry_after` is
    /// Some, the delay is max(retry_after capped at max_retry_after, jitter).
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        self.delay_with_rng(attempt, retry_after, &mut rand::rng())
    }

    /// [`delay`](Self::delay) with a caller-supplied random source, for reproducible tests.
    pub fn delay_with_rng<R: Rng + ?Sized>(
        &self,
        attempt: u32,
        retry_after: Option<Duration>,
        rng: &mut R,
    ) -> Duration {
        let cap = self.backoff_cap(attempt);
        // Nanosecond resolution in a u64 covers ~584 years; saturate beyond that.
        let cap_nanos = u64::try_from(cap.as_nanos()).unwrap_or(u64::MAX);
        let jitter = Duration::from_nanos(rng.random_range(0..=cap_nanos));
        match retry_after {
            Some(retry_after) => retry_after.min(self.max_retry_after).max(jitter),
            None => jitter,
        }
    }

    /// The upper bound of the jittered delay after `attempt` failures:
    /// min(max_delay, base_delay * 2^(attempt-1)), saturating instead of overflowing.
    pub fn backoff_cap(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1);
        let exponential = 1u32
            .checked_shl(exponent)
            .and_then(|factor| self.base_delay.checked_mul(factor))
            .unwrap_or(Duration::MAX);
        exponential.min(self.max_delay)
    }

    /// Whether another attempt is allowed after `attempt` attempts have been made.
    pub fn should_retry(&self, attempt: u32) -> bool {
        attempt < self.max_attempts
    }
}

/// Restarts of a unit of work that streams a body and so cannot be retried request by request
/// (a blob's transfer in a copy, a pass of a push): the unit is run again whole.
///
/// A 401 earns one restart without counting as an attempt: `send` cannot re-authenticate a
/// streamed request, so a token that expired under it (ECR's, every 12 h) failed the unit, and
/// the restart's first request gets the same 401 and fetches new credentials. A second refusal
/// is real. Other failures restart as the policy allows.
#[derive(Debug, Clone)]
pub struct Restarts {
    policy: RetryPolicy,
    attempt: u32,
    refused: bool,
}

impl Restarts {
    pub fn new(policy: RetryPolicy) -> Self {
        Self {
            policy,
            attempt: 1,
            refused: false,
        }
    }

    /// How long to wait before running the unit again after it failed with `error`; `None`:
    /// give up with that error.
    pub fn after(&mut self, error: &Error) -> Option<Duration> {
        if error.status() == Some(401) && !self.refused {
            self.refused = true;
            return Some(Duration::ZERO);
        }
        if error.is_retryable() && self.policy.should_retry(self.attempt) {
            let delay = self.policy.delay(self.attempt, None);
            self.attempt += 1;
            return Some(delay);
        }
        None
    }

    /// The attempt about to run (1 for the first).
    pub fn attempt(&self) -> u32 {
        self.attempt
    }
}

/// `retrying in 0.4 s, attempt 2 of 5: <cause>`: what is logged (at info, so `-v` shows it)
/// before attempt `next` of `max` after `delay`.
pub fn retry_line(delay: Duration, next: u32, max: u32, cause: &dyn std::fmt::Display) -> String {
    let secs = delay.as_secs_f64();
    // Jittered delays can be a few milliseconds; "0.0 s" would read as "no wait at all".
    let precision = if secs > 0.0 && secs < 0.1 { 2 } else { 1 };
    format!("retrying in {secs:.precision$} s, attempt {next} of {max}: {cause}")
}

impl RetryPolicy {
    /// Logs the retry that follows `failed` failed attempts; returns the wait of `delay`.
    pub(crate) fn wait(
        &self,
        failed: u32,
        delay: Duration,
        cause: &dyn std::fmt::Display,
    ) -> tokio::time::Sleep {
        tracing::info!(
            "{}",
            retry_line(delay, failed + 1, self.max_attempts, cause)
        );
        tokio::time::sleep(delay)
    }
}

/// How many attempts a request's final answer took, kept on the response when that answer is
/// still a retryable failure, so the error made from it can say the retries were spent.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Attempts(pub u32);

/// `error` after `attempts` attempts: said so in its message when there was more than one.
pub(crate) fn gave_up(error: Error, attempts: u32) -> Error {
    if attempts > 1 {
        Error::GaveUp {
            attempts,
            source: Box::new(error),
        }
    } else {
        error
    }
}

/// Marks `response`, the answer to attempt `attempt`, as the last of spent retries when its
/// status is one that would have been retried.
pub(crate) fn mark_attempts(mut response: reqwest::Response, attempt: u32) -> reqwest::Response {
    if attempt > 1 && is_retryable_status(response.status().as_u16()) {
        response.extensions_mut().insert(Attempts(attempt));
    }
    response
}

/// Parses a Retry-After header value: delta-seconds or an HTTP-date (relative to now; past →
/// zero).
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    parse_retry_after_at(value, SystemTime::now())
}

/// [`parse_retry_after`] relative to a given `now`.
pub fn parse_retry_after_at(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    if value.bytes().all(|b| b.is_ascii_digit()) {
        // Absurdly long numbers are still a clear "wait a long time"; the policy caps it.
        let secs = value.parse::<u64>().unwrap_or(u64::MAX);
        return Some(Duration::from_secs(secs));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The `Retry-After` of a response, if present and parseable.
pub fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    let value = headers.get(http::header::RETRY_AFTER)?.to_str().ok()?;
    parse_retry_after(value)
}

/// Whether an HTTP status is worth retrying: 408, 429, 500, 502, 503, 504.
pub fn is_retryable_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    const SAMPLES: usize = 2_000;

    fn answered(status: u16) -> Error {
        Error::Registry {
            request: crate::error::RequestInfo {
                method: "PUT".into(),
                url: "https://r.example/v2/app/blobs/uploads/1".into(),
            },
            status,
            code: None,
            message: String::new(),
        }
    }

    #[test]
    fn restarts_once_after_a_401_then_as_the_policy_allows() {
        let policy = RetryPolicy {
            max_attempts: 3,
            ..RetryPolicy::default()
        };
        let mut restarts = Restarts::new(policy.clone());
        assert_eq!(restarts.after(&answered(401)), Some(Duration::ZERO));
        assert_eq!(restarts.attempt(), 1, "a refusal is not an attempt");
        assert_eq!(
            restarts.after(&answered(401)),
            None,
            "a second refusal is real"
        );

        let mut restarts = Restarts::new(policy.clone());
        for attempt in 1..3 {
            let delay = restarts.after(&answered(503)).unwrap();
            assert!(delay <= policy.backoff_cap(attempt));
        }
        assert_eq!(restarts.attempt(), 3);
        assert_eq!(restarts.after(&answered(503)), None, "attempts spent");
        assert_eq!(Restarts::new(policy).after(&answered(404)), None);
    }

    #[test]
    fn defaults() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.max_attempts, 5);
        assert_eq!(policy.base_delay, Duration::from_millis(200));
        assert_eq!(policy.max_delay, Duration::from_secs(20));
        assert_eq!(policy.max_retry_after, Duration::from_secs(60));
    }

    #[test]
    fn should_retry_counts_total_attempts() {
        let policy = RetryPolicy::default();
        assert!((1..5).all(|attempt| policy.should_retry(attempt)));
        assert!(!policy.should_retry(5));
        assert!(!policy.should_retry(6));
        assert!(!RetryPolicy::none().should_retry(1));
    }

    #[test]
    fn backoff_cap_grows_exponentially_then_caps() {
        let policy = RetryPolicy::default();
        let caps: Vec<_> = (1..=9).map(|a| policy.backoff_cap(a).as_millis()).collect();
        assert_eq!(
            caps,
            [200, 400, 800, 1_600, 3_200, 6_400, 12_800, 20_000, 20_000]
        );
        // attempt 0 is treated like the first failure rather than halving the base.
        assert_eq!(policy.backoff_cap(0), Duration::from_millis(200));
    }

    #[test]
    fn delay_stays_within_jitter_bounds() {
        let policy = RetryPolicy::default();
        let mut rng = StdRng::seed_from_u64(7);
        for attempt in 1..=10 {
            let cap = policy.backoff_cap(attempt);
            let samples: Vec<_> = (0..SAMPLES)
                .map(|_| policy.delay_with_rng(attempt, None, &mut rng))
                .collect();
            assert!(samples.iter().all(|d| *d <= cap), "attempt {attempt}");
            // Full jitter: samples spread over the whole range, not clustered near the cap.
            let below_half = samples.iter().filter(|d| **d < cap / 2).count();
            assert!(
                (SAMPLES * 2 / 5..SAMPLES * 3 / 5).contains(&below_half),
                "attempt {attempt}: {below_half} of {SAMPLES} below half the cap"
            );
        }
        // The thread-local generator obeys the same bounds.
        for _ in 0..SAMPLES {
            assert!(policy.delay(3, None) <= Duration::from_millis(800));
        }
    }

    #[test]
    fn retry_after_is_honoured_and_capped() {
        let policy = RetryPolicy::default();
        let mut rng = StdRng::seed_from_u64(11);
        for _ in 0..SAMPLES {
            let d = policy.delay_with_rng(1, Some(Duration::from_secs(5)), &mut rng);
            assert_eq!(d, Duration::from_secs(5));
            let d = policy.delay_with_rng(1, Some(Duration::from_secs(3_600)), &mut rng);
            assert_eq!(d, Duration::from_secs(60));
        }
        // A short Retry-After never shortens the backoff below the jittered delay.
        let d = policy.delay_with_rng(1, Some(Duration::ZERO), &mut StdRng::seed_from_u64(1));
        let jitter = policy.delay_with_rng(1, None, &mut StdRng::seed_from_u64(1));
        assert_eq!(d, jitter);
        let late = (0..SAMPLES)
            .map(|_| policy.delay_with_rng(8, Some(Duration::from_secs(1)), &mut rng))
            .filter(|d| *d > Duration::from_secs(1))
            .count();
        assert!(late > SAMPLES / 2, "{late}");
    }

    #[test]
    fn large_attempts_do_not_overflow() {
        let policy = RetryPolicy {
            max_delay: Duration::MAX,
            base_delay: Duration::MAX,
            ..RetryPolicy::default()
        };
        for attempt in [1, 2, 31, 32, 33, 64, 1_000, u32::MAX] {
            assert_eq!(policy.backoff_cap(attempt), Duration::MAX);
            let _ = policy.delay(attempt, Some(Duration::MAX));
        }
        let default = RetryPolicy::default();
        for attempt in [32, 33, 64, u32::MAX] {
            assert_eq!(default.backoff_cap(attempt), default.max_delay);
            assert!(default.delay(attempt, None) <= default.max_delay);
        }
    }

    #[test]
    fn parses_delta_seconds() {
        assert_eq!(parse_retry_after("120"), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after(" 0 "), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("99999999999999999999999"),
            Some(Duration::from_secs(u64::MAX))
        );
        for bad in ["", " ", "-1", "1.5", "soon", "12s"] {
            assert_eq!(parse_retry_after(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn parses_http_dates_relative_to_now() {
        let now = httpdate::parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").unwrap();
        let at = |v: &str| parse_retry_after_at(v, now);
        assert_eq!(
            at("Wed, 21 Oct 2015 07:28:30 GMT"),
            Some(Duration::from_secs(30))
        );
        // The obsolete RFC 850 and asctime forms are still valid HTTP-dates.
        assert_eq!(
            at("Wednesday, 21-Oct-15 07:29:00 GMT"),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            at("Wed Oct 21 07:28:10 2015"),
            Some(Duration::from_secs(10))
        );
        assert_eq!(at("Tue, 20 Oct 2015 07:28:00 GMT"), Some(Duration::ZERO));
        assert_eq!(at("Wed, 21 Oct 2015 25:00:00 GMT"), None);
        assert_eq!(
            parse_retry_after("Thu, 01 Jan 1970 00:00:00 GMT"),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn reads_retry_after_from_headers() {
        let mut headers = http::HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(http::header::RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
    }

    #[test]
    fn retry_lines_name_the_wait_the_attempt_and_the_cause() {
        let cause = "GET http://127.0.0.1:1/v2/: cannot connect: Connection refused";
        assert_eq!(
            retry_line(Duration::from_millis(400), 2, 5, &cause),
            format!("retrying in 0.4 s, attempt 2 of 5: {cause}")
        );
        assert_eq!(
            retry_line(Duration::from_millis(1_650), 4, 5, &"x"),
            "retrying in 1.6 s, attempt 4 of 5: x"
        );
        assert_eq!(
            retry_line(Duration::from_millis(7), 2, 5, &"x"),
            "retrying in 0.01 s, attempt 2 of 5: x"
        );
        assert_eq!(
            retry_line(Duration::ZERO, 2, 3, &"x"),
            "retrying in 0.0 s, attempt 2 of 3: x"
        );
    }

    #[test]
    fn a_spent_error_says_how_many_attempts_it_took() {
        let error = || Error::Other("503".into());
        assert_eq!(gave_up(error(), 1).to_string(), "503");
        let spent = gave_up(error(), 5);
        assert_eq!(spent.to_string(), "503 (gave up after 5 attempts)");
        assert!(!spent.is_retryable());
    }

    #[test]
    fn retryable_statuses() {
        let retryable: Vec<u16> = (100..600).filter(|s| is_retryable_status(*s)).collect();
        assert_eq!(retryable, [408, 429, 500, 502, 503, 504]);
    }
}
