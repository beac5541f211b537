//! Leader election on a `coordination.k8s.io` Lease (kube-lease-manager): only the replica
//! holding the Lease runs the controller, so two replicas never copy the same mirror at once.
//! A replica that loses the Lease stops as on SIGTERM (and is restarted as a standby).

use std::time::Duration;

use anyhow::Context as _;
use kube_lease_manager::{LeaseManagerBuilder, LeaseManagerError};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Which Lease, and who this replica is.
#[derive(Debug, Clone)]
pub struct LeaseSettings {
    pub name: String,
    pub namespace: String,
    pub identity: String,
    /// How long a claim lasts without renewal.
    pub duration: Duration,
    /// How long before expiry the holder renews.
    pub grace: Duration,
}

/// This replica holds the Lease; dropping the channel (in [`Leadership::release`]) frees it.
pub struct Leadership {
    leader: watch::Receiver<bool>,
    task: JoinHandle<Result<kube_lease_manager::LeaseManager, LeaseManagerError>>,
}

/// Waits until this replica holds the Lease; `None` when `stop` is cancelled first.
pub async fn lead(
    client: kube::Client,
    settings: &LeaseSettings,
    stop: &CancellationToken,
) -> anyhow::Result<Option<Leadership>> {
    let manager = LeaseManagerBuilder::new(client, &settings.name)
        .with_namespace(&settings.namespace)
        .with_identity(&settings.identity)
        .with_duration(settings.duration.as_secs())
        .with_grace(settings.grace.as_secs())
        .build()
        .await
        .with_context(|| format!("Lease {}/{}", settings.namespace, settings.name))?;
    let (mut leader, task) = manager.watch().await;
    while !*leader.borrow_and_update() {
        tokio::select! {
            () = stop.cancelled() => return Ok(None),
            changed = leader.changed() => changed.context("leader election ended")?,
        }
    }
    Ok(Some(Leadership { leader, task }))
}

impl Leadership {
    /// Cancels `stop` once the Lease is lost. Ends when `stop` is cancelled, as
    /// [`Leadership::release`] needs every receiver of the channel gone.
    pub fn stop_on_loss(&self, stop: CancellationToken) {
        let mut leader = self.leader.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    changed = leader.changed() => {
                        if changed.is_err() {
                            return;
                        }
                        if !*leader.borrow_and_update() {
                            tracing::warn!("lost the Lease: stopping");
                            stop.cancel();
                            return;
                        }
                    }
                }
            }
        });
    }

    /// Frees the Lease for the next replica.
    pub async fn release(self) {
        // Closing the channel makes the lease task release the Lease and end.
        drop(self.leader);
        match self.task.await {
            Ok(Err(error)) => tracing::warn!(%error, "cannot release the Lease"),
            Err(error) => tracing::warn!(%error, "the Lease task failed"),
            Ok(Ok(_)) => {}
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::{Instant, SystemTime};

    use ferry_registry::mirror::time::rfc3339;
    use http::{Method, Request, Response, StatusCode};
    use kube::client::Body;
    use serde_json::{Value, json};

    use super::*;

    type Stored = Arc<Mutex<Value>>;

    /// A Lease API holding one Lease: GET, create, and patches merged into its spec.
    fn lease_api(lease: Stored) -> kube::Client {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        tokio::spawn(async move {
            while let Some((request, send)) = handle.next_request().await {
                let method = request.method().clone();
                let body = request.into_body().collect_bytes().await.unwrap();
                let mut stored = lease.lock().unwrap();
                if method == Method::PATCH {
                    let patch: Value = serde_json::from_slice(&body).unwrap();
                    let spec = stored["spec"].as_object_mut().unwrap();
                    for (key, value) in patch["spec"].as_object().unwrap() {
                        match value {
                            Value::Null => spec.remove(key),
                            value => spec.insert(key.clone(), value.clone()),
                        };
                    }
                } else {
                    assert_eq!(method, Method::GET, "the Lease exists: nothing to create");
                }
                let response = Response::builder()
                    .status(StatusCode::OK)
                    .header("content-type", "application/json")
                    .body(Body::from(stored.to_string().into_bytes()))
                    .unwrap();
                send.send_response(response);
            }
        });
        kube::Client::new(service, "ops")
    }

    fn held_by(stored: &Stored, holder: &str, seconds: u64) {
        let mut lease = stored.lock().unwrap();
        lease["spec"] = json!({
            "holderIdentity": holder,
            "renewTime": rfc3339(SystemTime::now()),
            "leaseDurationSeconds": seconds,
        });
    }

    fn holder(stored: &Stored) -> Value {
        stored.lock().unwrap()["spec"]["holderIdentity"].clone()
    }

    #[tokio::test]
    async fn only_the_lease_holder_leads_and_losing_the_lease_stops_it() {
        let stored: Stored = Arc::new(Mutex::new(json!({
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": "ferry-operator", "namespace": "ops", "resourceVersion": "1"},
            "spec": {},
        })));
        held_by(&stored, "other", 30);
        let settings = LeaseSettings {
            name: "ferry-operator".into(),
            namespace: "ops".into(),
            identity: "me".into(),
            duration: Duration::from_secs(2),
            grace: Duration::from_secs(1),
        };

        // While another replica holds the Lease, this one waits (and gives up when stopped).
        let stop = CancellationToken::new();
        let stopper = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            stopper.cancel();
        });
        let client = lease_api(stored.clone());
        assert!(lead(client, &settings, &stop).await.unwrap().is_none());
        assert_eq!(holder(&stored), "other");

        // The other replica stops renewing: this one takes over once the claim expires.
        held_by(&stored, "other", 2);
        let started = Instant::now();
        let stop = CancellationToken::new();
        let client = lease_api(stored.clone());
        let leadership =
            tokio::time::timeout(Duration::from_secs(20), lead(client, &settings, &stop))
                .await
                .expect("the expired Lease is taken over")
                .unwrap()
                .unwrap();
        assert_eq!(holder(&stored), "me");
        assert!(
            started.elapsed() >= Duration::from_secs(1),
            "not before the claim expired"
        );

        // Someone else takes the Lease: this replica stops.
        leadership.stop_on_loss(stop.clone());
        held_by(&stored, "thief", 30);
        tokio::time::timeout(Duration::from_secs(20), stop.cancelled())
            .await
            .expect("a lost Lease stops the replica");
        tokio::time::timeout(Duration::from_secs(20), leadership.release())
            .await
            .expect("the Lease task ends");
        assert_eq!(
            holder(&stored),
            "thief",
            "a released Lease another replica holds is left alone"
        );
    }
}
