//! The arithmetic of one lane's limits: additive increase, multiplicative decrease.
//!
//! Kept free of clocks and locks so it can be tested exactly.

/// The limits one (host, action) lane starts from and never exceeds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Requests in flight at once: the starting value and the ceiling.
    pub concurrency: f64,
    /// The floor a run of throttling answers cannot push the concurrency below.
    pub min_concurrency: f64,
    /// Requests started per second (a token bucket holding one second's worth), if the lane is
    /// rate limited at all: the starting value and the ceiling.
    pub rate: Option<f64>,
    /// The floor of the rate.
    pub min_rate: f64,
    /// What a throttling answer multiplies the limits by (0 < factor < 1).
    pub decrease: f64,
}

impl Limits {
    /// Only a concurrency limit; no rate.
    pub const fn concurrency(limit: f64) -> Limits {
        Limits {
            concurrency: limit,
            min_concurrency: 1.0,
            rate: None,
            min_rate: 0.5,
            decrease: 0.5,
        }
    }

    /// A rate of `per_second` (the published quota of an API) and a generous concurrency.
    pub const fn rate(per_second: f64) -> Limits {
        Limits {
            rate: Some(per_second),
            ..Limits::concurrency(64.0)
        }
    }
}

/// The current limits of a lane and how far they have been cut.
#[derive(Debug, Clone, PartialEq)]
pub struct Aimd {
    limits: Limits,
    concurrency: f64,
    rate: Option<f64>,
    /// Bumped by every decrease; a throttling answer to a request admitted before the last
    /// decrease is news of congestion already reacted to (as TCP ignores losses from the old
    /// window), so many 429s to one burst halve the limits once, not once each.
    epoch: u64,
}

impl Aimd {
    pub fn new(limits: Limits) -> Aimd {
        Aimd {
            limits,
            concurrency: limits.concurrency,
            rate: limits.rate,
            epoch: 0,
        }
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Requests allowed in flight now (at least one).
    pub fn concurrency(&self) -> f64 {
        self.concurrency
    }

    /// Whole requests allowed in flight now.
    pub fn slots(&self) -> usize {
        // Bounded by `Limits::concurrency`, a small positive number: the cast cannot wrap.
        self.concurrency.floor().max(1.0) as usize
    }

    pub fn rate(&self) -> Option<f64> {
        self.rate
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// A request succeeded: one more slot, and a tenth of the ceiling more rate, up to the
    /// ceilings. Recovery after a halving takes as many successes as slots were lost.
    pub fn on_success(&mut self) {
        self.concurrency = (self.concurrency + 1.0).min(self.limits.concurrency);
        if let (Some(rate), Some(ceiling)) = (self.rate, self.limits.rate) {
            self.rate = Some((rate + ceiling / 10.0).min(ceiling));
        }
    }

    /// The registry said "too many requests" to a request admitted at `admitted_epoch`:
    /// multiply the limits down, unless that already happened since the request was admitted.
    /// Returns whether the limits changed.
    pub fn on_throttle(&mut self, admitted_epoch: u64) -> bool {
        if admitted_epoch < self.epoch {
            return false;
        }
        let factor = self.limits.decrease;
        self.concurrency = (self.concurrency * factor).max(self.limits.min_concurrency);
        if let Some(rate) = self.rate {
            self.rate = Some((rate * factor).max(self.limits.min_rate));
        }
        self.epoch += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_throttle_halves_and_successes_add_back_one_slot_each() {
        let mut aimd = Aimd::new(Limits::concurrency(32.0));
        assert_eq!(aimd.slots(), 32);
        assert!(aimd.on_throttle(aimd.epoch()));
        assert_eq!(aimd.slots(), 16);
        for _ in 0..10 {
            aimd.on_success();
        }
        assert_eq!(aimd.slots(), 26);
        for _ in 0..100 {
            aimd.on_success();
        }
        assert_eq!(aimd.slots(), 32, "never above the ceiling");
    }

    #[test]
    fn throttles_to_one_burst_cut_once() {
        let mut aimd = Aimd::new(Limits::concurrency(64.0));
        let admitted = aimd.epoch();
        assert!(aimd.on_throttle(admitted));
        // Four more answers to requests that were already in flight: no further cut.
        for _ in 0..4 {
            assert!(!aimd.on_throttle(admitted));
        }
        assert_eq!(aimd.slots(), 32);
        // A request admitted after the cut that is throttled again cuts again.
        assert!(aimd.on_throttle(aimd.epoch()));
        assert_eq!(aimd.slots(), 16);
    }

    #[test]
    fn limits_never_fall_below_their_floors() {
        let mut aimd = Aimd::new(Limits::rate(10.0));
        for _ in 0..20 {
            aimd.on_throttle(aimd.epoch());
        }
        assert_eq!(aimd.slots(), 1);
        assert_eq!(aimd.rate(), Some(0.5));
        aimd.on_success();
        assert_eq!(
            aimd.rate(),
            Some(1.5),
            "a tenth of the 10/s ceiling per success"
        );
        for _ in 0..50 {
            aimd.on_success();
        }
        assert_eq!(aimd.rate(), Some(10.0));
    }
}
