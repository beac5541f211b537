//! Watch streams: newline-delimited `{"type": …, "object": …}` events, replayed from the
//! store's history after the client's resourceVersion, then live, with optional bookmarks
//! and a server-side timeout.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::StreamBody;
use hyper::body::Frame;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use super::resources::ResourceType;
use super::selector::{FieldSelector, LabelSelector};
use super::status::ApiError;
use super::store::{Event, Store, matches_event, served};
use super::table;
use crate::server::BoxError;

pub type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, BoxError>;

/// How the client wants its watch.
pub struct WatchParams {
    /// Resume after this resourceVersion; `None` (absent or `0`) starts with the current
    /// state as synthetic ADDED events.
    pub resource_version: Option<u64>,
    pub timeout: Option<Duration>,
    pub bookmarks: bool,
    /// `sendInitialEvents=true`: the current state, then a bookmark marking its end.
    pub send_initial_events: bool,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    pub table: bool,
    pub metadata_only: bool,
}

pub fn start(
    store: &Mutex<Store>,
    ty: &ResourceType,
    ns: Option<&str>,
    params: WatchParams,
    bookmark_interval: Duration,
) -> Result<Body, ApiError> {
    let (initial, rx, start_rv) = {
        let store = store.lock().unwrap_or_else(|e| e.into_inner());
        let current = store.resource_version();
        match params.resource_version {
            Some(rv) if !params.send_initial_events => {
                let (replay, rx) = store.watch_from(ty, ns, rv)?;
                let replay: Vec<Arc<Event>> = replay;
                (replay, rx, current)
            }
            _ => {
                let added = store
                    .list(ty, ns)
                    .into_iter()
                    .map(|object| {
                        Arc::new(Event {
                            rv: current,
                            type_: "ADDED",
                            group: ty.group.clone(),
                            plural: ty.plural.clone(),
                            namespace: String::new(),
                            object,
                            previous: None,
                        })
                    })
                    .collect();
                (added, store.subscribe(), current)
            }
        }
    };
    let (tx, body_rx) = mpsc::channel::<Bytes>(64);
    let ty = ty.clone();
    let ns = ns.map(str::to_string);
    tokio::spawn(async move {
        let watcher = Watcher { ty, ns, params, tx };
        watcher.run(initial, rx, start_rv, bookmark_interval).await;
    });
    let stream = futures::stream::unfold(body_rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|chunk| (Ok::<_, BoxError>(Frame::data(chunk)), rx))
    });
    Ok(http_body_util::BodyExt::boxed_unsync(StreamBody::new(
        stream.boxed(),
    )))
}

struct Watcher {
    ty: ResourceType,
    ns: Option<String>,
    params: WatchParams,
    tx: mpsc::Sender<Bytes>,
}

impl Watcher {
    async fn run(
        self,
        initial: Vec<Arc<Event>>,
        mut rx: broadcast::Receiver<Arc<Event>>,
        start_rv: u64,
        bookmark_interval: Duration,
    ) {
        for event in initial {
            if !self.send_event(&event).await {
                return;
            }
        }
        // Every event up to here has been considered: what a bookmark may promise.
        let mut seen = start_rv;
        if self.params.send_initial_events {
            let end = json!({"k8s.io/initial-events-end": "true"});
            if !self.send_bookmark(seen, Some(end)).await {
                return;
            }
        }
        let deadline = self.params.timeout.map(|t| tokio::time::Instant::now() + t);
        let mut ticks = tokio::time::interval(bookmark_interval);
        ticks.tick().await;
        loop {
            tokio::select! {
                received = rx.recv() => match received {
                    Ok(event) => {
                        if event.rv <= seen {
                            continue;
                        }
                        seen = event.rv;
                        if matches_event(&self.ty, self.ns.as_deref(), &event)
                            && !self.send_event(&event).await
                        {
                            return;
                        }
                    }
                    // Lagged or closed: end the stream; clients re-watch from their last
                    // resourceVersion, as after any watch ends.
                    Err(_) => return,
                },
                _ = ticks.tick(), if self.params.bookmarks => {
                    if !self.send_bookmark(seen, None).await {
                        return;
                    }
                }
                _ = sleep_until(deadline) => return,
                _ = self.tx.closed() => return,
            }
        }
    }

    /// Sends `event` as this watch's selectors see it: a modification that moves an object
    /// out of the selection is a deletion, into it an addition.
    async fn send_event(&self, event: &Event) -> bool {
        let p = &self.params;
        let selected = |o: &Value| p.labels.matches(o) && p.fields.matches(o);
        let now = selected(&event.object);
        let before = event.previous.as_ref().map(selected);
        let type_ = match (event.type_, before, now) {
            ("MODIFIED", Some(false), true) => "ADDED",
            ("MODIFIED", Some(true), false) => "DELETED",
            (t, _, true) => t,
            _ => return true,
        };
        let obj = served(&self.ty, &event.object);
        let object = if p.table {
            table::table(&self.ty, std::slice::from_ref(&obj), None)
        } else if p.metadata_only {
            table::partial_metadata(&obj)
        } else {
            obj
        };
        self.send(json!({"type": type_, "object": object})).await
    }

    async fn send_bookmark(&self, rv: u64, annotations: Option<Value>) -> bool {
        let mut metadata = json!({"resourceVersion": rv.to_string()});
        if let Some(a) = annotations {
            metadata["annotations"] = a;
        }
        let object = json!({
            "kind": self.ty.kind,
            "apiVersion": self.ty.api_version(),
            "metadata": metadata,
        });
        self.send(json!({"type": "BOOKMARK", "object": object}))
            .await
    }

    async fn send(&self, event: Value) -> bool {
        let mut line = event.to_string().into_bytes();
        line.push(b'\n');
        self.tx.send(Bytes::from(line)).await.is_ok()
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
