//! `ferry-operator run`: the process around the controller — the shared engine, the HTTP
//! endpoints, leader election, and shutdown. On SIGTERM the controllers take no new reconciles;
//! syncs already running get the grace period to finish, then are cancelled through the
//! engine's token (a sync cancelled mid-way keeps what it copied and reports the rest).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context as _, bail};
use tokio_util::sync::CancellationToken;

use crate::cli::RunArgs;
use crate::context::Context;
use crate::controller;
use crate::engine::{AwsSettings, Engine};
use crate::leader::{self, LeaseSettings};
use crate::metrics::Metrics;
use crate::server::{self, Health};
use crate::shutdown;

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
        args.transfer_budget as usize,
        usize::from(args.concurrency),
        AwsSettings {
            region: args.region.clone(),
            endpoint_url: None,
            credentials: None,
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
        args.shutdown_grace_period,
    ));

    let leadership = if !args.no_leader_election {
        let Some(namespace) = args.lease_namespace.clone() else {
            bail!(
                "leader election needs the Lease's namespace: set POD_NAMESPACE or \
                 --lease-namespace (or --no-leader-election)"
            );
        };
        let settings = LeaseSettings {
            name: args.lease_name.clone(),
            namespace,
            identity: std::env::var("POD_NAME")
                .or_else(|_| std::env::var("HOSTNAME"))
                .unwrap_or_else(|_| format!("ferry-operator-{}", rand::random::<u32>())),
            duration: args.lease_duration,
            // Renewing a third of the duration early leaves two tries before a standby may
            // take over.
            grace: args.lease_duration / 3,
        };
        // A standby is ready: it serves, and takes over when the leader goes.
        ready.store(true, Ordering::Relaxed);
        tracing::info!(identity = %settings.identity, lease = %settings.name, "waiting for the Lease");
        let Some(leadership) = leader::lead(client.clone(), &settings, &stop).await? else {
            server_stop.cancel();
            return Ok(());
        };
        tracing::info!(identity = %settings.identity, "holding the Lease: starting the controller");
        leadership.stop_on_loss(stop.clone());
        Some(leadership)
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

    if let Some(leadership) = leadership {
        leadership.release().await;
    }
    server_stop.cancel();
    let _ = server.await;
    Ok(())
}
