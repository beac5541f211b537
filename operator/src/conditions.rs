//! The status conditions, kstatus-compatible so `kubectl wait --for=condition=Ready`, Flux and
//! Argo CD read a mirror's health without knowing its kind: `Ready` always, `Reconciling` while
//! a failure is being retried, `Stalled` when retrying is not helping (or cannot help), and
//! `Suspended` while `spec.suspend`. kstatus treats `Reconciling`/`Stalled` as "abnormal-true",
//! so they are removed rather than set False once they no longer apply.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub const READY: &str = "Ready";
pub const RECONCILING: &str = "Reconciling";
pub const STALLED: &str = "Stalled";
pub const SUSPENDED: &str = "Suspended";

/// Failures in a row after which a mirror is reported Stalled instead of Reconciling.
pub const STALL_AFTER: u32 = 3;

/// One condition, as `metav1.Condition` has it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    pub reason: String,
    #[serde(default)]
    pub message: String,
    /// When `status` last changed (RFC 3339).
    pub last_transition_time: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// What a reconcile concluded, as far as the conditions are concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// `spec.suspend`: nothing was asked of any registry.
    Suspended,
    /// Every tag and manifest list is synced.
    Synced { message: String },
    /// The spec cannot work until it changes; retrying is pointless.
    InvalidSpec { message: String },
    /// Something failed; `failures` in a row so far, this one included.
    Failed {
        reason: &'static str,
        message: String,
        failures: u32,
    },
}

/// The conditions after `verdict`, from the `previous` ones (whose transition times are kept
/// when a status does not change).
pub fn next(
    previous: &[Condition],
    verdict: &Verdict,
    generation: Option<i64>,
    now: &str,
) -> Vec<Condition> {
    let make = |type_: &str, status: &str, reason: &str, message: &str| {
        let last_transition_time = previous
            .iter()
            .find(|c| c.type_ == type_ && c.status == status)
            .map_or_else(|| now.to_string(), |c| c.last_transition_time.clone());
        Condition {
            type_: type_.to_string(),
            status: status.to_string(),
            reason: reason.to_string(),
            message: message.to_string(),
            last_transition_time,
            observed_generation: generation,
        }
    };
    match verdict {
        Verdict::Suspended => {
            // The last sync's verdict still describes what is at the destination.
            let ready = previous
                .iter()
                .find(|c| c.type_ == READY)
                .map(|c| Condition {
                    observed_generation: generation,
                    ..c.clone()
                })
                .unwrap_or_else(|| {
                    make(READY, "Unknown", "Suspended", "suspended before any sync")
                });
            vec![
                ready,
                make(SUSPENDED, "True", "Suspended", "spec.suspend is true"),
            ]
        }
        Verdict::Synced { message } => vec![make(READY, "True", "Synced", message)],
        Verdict::InvalidSpec { message } => vec![
            make(READY, "False", "InvalidSpec", message),
            make(STALLED, "True", "InvalidSpec", message),
        ],
        Verdict::Failed {
            reason,
            message,
            failures,
        } => {
            let progress = if *failures >= STALL_AFTER {
                make(
                    STALLED,
                    "True",
                    reason,
                    &format!("{failures} failures in a row: {message}"),
                )
            } else {
                make(RECONCILING, "True", "RetryingAfterFailure", message)
            };
            vec![make(READY, "False", reason, message), progress]
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn failed(failures: u32) -> Verdict {
        Verdict::Failed {
            reason: "SyncFailed",
            message: "registry down".into(),
            failures,
        }
    }

    #[test]
    fn repeated_failures_turn_reconciling_into_stalled() {
        let first = next(&[], &failed(1), Some(1), "t1");
        assert!(first.iter().any(|c| c.type_ == RECONCILING));
        assert!(!first.iter().any(|c| c.type_ == STALLED));
        let third = next(&first, &failed(STALL_AFTER), Some(1), "t3");
        assert!(
            third
                .iter()
                .any(|c| c.type_ == STALLED && c.status == "True")
        );
        assert!(!third.iter().any(|c| c.type_ == RECONCILING));
        // Ready stayed False since t1: its transition time is kept.
        let ready = third.iter().find(|c| c.type_ == READY).unwrap();
        assert_eq!(ready.last_transition_time, "t1");
    }

    #[test]
    fn success_clears_abnormal_conditions_and_suspend_keeps_ready() {
        let failed = next(&[], &failed(5), Some(1), "t1");
        let synced = next(
            &failed,
            &Verdict::Synced {
                message: "1 tag synced".into(),
            },
            Some(2),
            "t2",
        );
        assert_eq!(synced.len(), 1);
        assert_eq!(synced[0].status, "True");
        assert_eq!(synced[0].last_transition_time, "t2");
        let suspended = next(&synced, &Verdict::Suspended, Some(3), "t3");
        let ready = suspended.iter().find(|c| c.type_ == READY).unwrap();
        assert_eq!(
            (ready.status.as_str(), ready.observed_generation),
            ("True", Some(3))
        );
        assert!(suspended.iter().any(|c| c.type_ == SUSPENDED));
    }
}
