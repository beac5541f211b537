//! Shutdown in two steps: on SIGTERM (or Ctrl-C, or a lost lease) the controllers take no new
//! reconciles at once; syncs already running get a grace period to finish, since a cancelled
//! sync leaves tags for the next replica to copy again, and are then cancelled through the
//! engine's token so the pod exits before Kubernetes kills it.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// Waits for SIGTERM or Ctrl-C (or `stop` cancelled elsewhere), then [`shutdown_after`].
pub async fn on_signal(stop: CancellationToken, cancel: CancellationToken, grace: Duration) {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    let signal = async {
        tokio::select! {
            () = terminate => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    };
    shutdown_after(signal, stop, cancel, grace).await;
}

/// Once `trigger` fires or `stop` is cancelled: cancels `stop`, then `cancel` after `grace`.
pub async fn shutdown_after(
    trigger: impl Future<Output = ()>,
    stop: CancellationToken,
    cancel: CancellationToken,
    grace: Duration,
) {
    tokio::select! {
        () = trigger => {}
        () = stop.cancelled() => {}
    }
    tracing::info!(
        ?grace,
        "shutting down: no new syncs; running ones get the grace period"
    );
    stop.cancel();
    tokio::time::sleep(grace).await;
    tracing::warn!("grace period over: cancelling running syncs");
    cancel.cancel();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn new_work_stops_at_once_and_running_syncs_are_cancelled_after_the_grace() {
        let (stop, cancel) = (CancellationToken::new(), CancellationToken::new());
        let (fire, fired) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(shutdown_after(
            async {
                let _ = fired.await;
            },
            stop.clone(),
            cancel.clone(),
            Duration::from_secs(30),
        ));
        tokio::time::sleep(Duration::from_secs(3600)).await;
        assert!(!stop.is_cancelled(), "nothing asked for a shutdown yet");
        let _ = fire.send(());
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(stop.is_cancelled());
        assert!(
            !cancel.is_cancelled(),
            "running syncs keep their grace period"
        );
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert!(cancel.is_cancelled());
        assert!(task.is_finished());
    }
}
