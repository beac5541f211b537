//! A registry behind a lossy, slow link, and what the fault tests ask of its record.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::seen;
use ferry_testkit::wan::WanConfig;
use ferry_testkit::{Fault, FaultAction, FaultProxy, Recorded, TestRegistry, WanProxy};

/// A registry across a WAN-like link with a fault-injecting proxy in front:
/// client → `FaultProxy` → `WanProxy` (5 ms each way) → registry, so every request, faulted or
/// retried, also pays the round trip. The registry sees the `FaultProxy`'s `Host` and points
/// upload `Location`s back at it, so uploads are faulted too.
pub struct FaultyLink {
    // In this order so each hop stops before the one behind it.
    pub faults: FaultProxy,
    pub wan: WanProxy,
    pub registry: TestRegistry,
}

impl FaultyLink {
    pub async fn start() -> FaultyLink {
        let registry = TestRegistry::anonymous().await.unwrap();
        let upstream = SocketAddr::from(([127, 0, 0, 1], registry.port()));
        let wan = WanProxy::start(upstream, WanConfig::new(5, None))
            .await
            .unwrap();
        let faults = FaultProxy::start(&format!("http://{}", wan.host()))
            .await
            .unwrap();
        FaultyLink {
            faults,
            wan,
            registry,
        }
    }

    pub fn host(&self) -> String {
        self.faults.host()
    }
}

/// Answers `code` with `Retry-After: 1` to every `every`-th request.
pub fn throttle(code: u16, every: usize) -> Fault {
    let action = FaultAction::Status {
        code,
        retry_after: Some(1),
    };
    Fault::new("/v2/", action).every(every).times(usize::MAX)
}

/// How many recorded requests a fault matching `is` was applied to.
pub fn fired(proxy: &FaultProxy, is: impl Fn(&FaultAction) -> bool) -> usize {
    proxy
        .requests()
        .iter()
        .filter(|r| r.fault.as_ref().is_some_and(&is))
        .count()
}

/// Polls `proxy`'s record until `ready` holds, for a watcher acting mid-copy.
pub async fn wait_for(proxy: &FaultProxy, what: &str, ready: impl Fn(&[Recorded]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ready(&proxy.requests()) {
        assert!(
            Instant::now() < deadline,
            "never saw {what}: {:#?}",
            seen(proxy)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

pub fn is_blob_commit(r: &Recorded) -> bool {
    r.method == "PUT" && r.path_and_query.contains("/blobs/uploads/")
}

pub fn is_delay(r: &Recorded) -> bool {
    matches!(r.fault, Some(FaultAction::Delay(_)))
}
