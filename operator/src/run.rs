//! `ferry-operator run`: the process around the controller — the shared engine, the HTTP
//! endpoints, leader election, and shutdown. On SIGTERM the controllers take no new reconciles;
//! syncs already running get the grace period to finish, then are cancelled through the
//! engine's token (a sync cancelled mid-way keeps what it copied and reports the rest).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context as _, bail};
use kube_lease_manager::LeaseManagerBuilder;
use tokio_util::sync::CancellationToken;

use crate::cli::RunArgs;
use crate::context::Context;
use crate::controller;
use crate::engine::{AwsSettings, Engine};
use crate::metrics::Metrics;
use crate::server::{self, Health};
use crate::shutdown;

/// Seconds a lease holder's claim lasts without renewal, and how early it renews.
const LEASE_DURATION: u64 = 30;
const LEASE_GRACE: u64 = 10;

pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let metrics = Arc::new(Metrics::default());
    // No docker config: the operator's own credentials must never leak to a tenant's mirror.
    let base = ferry_registry::Client::builder()
        .docker_config(false)
        .observer(metrics.clone())
        .build()
        .context("cannot set up the registry client")?;
    let engine = Engine::new(
        base,
        args.transfers as usize,
        usize::from(args.concurrency),
        AwsSettings {
            region: args.region.clone(),
            endpoint_url: None,
        },
    );
    let client = kube::Client::try_default()
        .await
        .context("cannot set up the Kubernetes client (in-cluster config or KUBECONFIG)")?;
    let ctx = Arc::new(Context::new(
        client.clone(),
        engine.clone(),
        metrics.clone(),
    ));

    let ready = Arc::new(AtomicBool::new(false));
    let server_stop = CancellationToken::new();
    let health = Health {
        metrics,
        ready: ready.clone(),
    };
    let server = server::serve(args.metrics_address, health, server_stop.clone())
        .await
        .with_context(|| format!("--metrics-address {}", args.metrics_address))?;

    let stop = CancellationToken::new();
    tokio::spawn(shutdown::on_signal(
        stop.clone(),
        engine.cancel.clone(),
        args.shutdown_grace,
    ));

    let lease = if args.leader_elect {
        let Some(namespace) = args.lease_namespace.clone() else {
            bail!(
                "leader election needs the Lease's namespace: set POD_NAMESPACE or --lease-namespace (or --leader-elect false)"
            );
        };
        let identity = std::env::var("POD_NAME")
            .or_else(|_| std::env::var("HOSTNAME"))
            .unwrap_or_else(|_| format!("ferry-operator-{}", rand::random::<u32>()));
        let manager = LeaseManagerBuilder::new(client.clone(), &args.lease_name)
            .with_namespace(&namespace)
            .with_identity(&identity)
            .with_duration(LEASE_DURATION)
            .with_grace(LEASE_GRACE)
            .build()
            .await
            .with_context(|| format!("Lease {namespace}/{}", args.lease_name))?;
        let (mut leader, task) = manager.watch().await;
        ready.store(true, Ordering::Relaxed);
        tracing::info!(%identity, lease = %args.lease_name, "waiting for leadership");
        while !*leader.borrow_and_update() {
            tokio::select! {
                () = stop.cancelled() => {
                    server_stop.cancel();
                    return Ok(());
                }
                changed = leader.changed() => changed.context("leader election ended")?,
            }
        }
        tracing::info!(%identity, "leading: starting the controller");
        // Losing the lease means another replica may start syncing: stop like on SIGTERM.
        let mut watch = leader.clone();
        let lost = stop.clone();
        tokio::spawn(async move {
            while watch.changed().await.is_ok() {
                if !*watch.borrow_and_update() {
                    tracing::warn!("lost leadership: stopping");
                    lost.cancel();
                    return;
                }
            }
        });
        Some((leader, task))
    } else {
        ready.store(true, Ordering::Relaxed);
        None
    };

    let namespaces: Vec<Option<String>> = if args.namespaces.is_empty() {
        vec![None]
    } else {
        args.namespaces.iter().cloned().map(Some).collect()
    };
    futures::future::join_all(
        namespaces
            .into_iter()
            .map(|ns| controller::run(ctx.clone(), ns, args.concurrency, stop.clone())),
    )
    .await;
    tracing::info!("controller stopped");

    if let Some((leader, task)) = lease {
        // Closing the channel makes the lease task release the Lease for the next replica.
        drop(leader);
        if let Ok(Err(error)) = task.await {
            tracing::warn!(%error, "cannot release the Lease");
        }
    }
    server_stop.cancel();
    let _ = server.await;
    Ok(())
}
