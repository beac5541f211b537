//! Minimal hyper HTTP/1.1 server loop (plain or TLS) shared by the token issuer, the fault
//! proxy and the Kubernetes API stand-in.

use std::future::Future;

use hyper::body::{Body, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Owns the accept loop; dropping it aborts the loop and, through the `JoinSet` the loop
/// owns, every open connection, so a dropped proxy really stops answering.
pub struct ServerTask {
    handle: JoinHandle<()>,
}

impl Drop for ServerTask {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

/// Serves `handler` on `listener`, through TLS when there is an `acceptor`.
pub fn spawn<H, Fut, B>(
    listener: TcpListener,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    handler: H,
) -> ServerTask
where
    H: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Response<B>, BoxError>> + Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let handle = tokio::spawn(async move {
        let mut conns = JoinSet::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else {
                        // Out of file descriptors or similar: back off instead of spinning.
                        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                        continue;
                    };
                    let _ = stream.set_nodelay(true);
                    let handler = handler.clone();
                    let acceptor = acceptor.clone();
                    conns.spawn(async move {
                        let svc = service_fn(&handler);
                        let conn = http1::Builder::new();
                        let _ = match acceptor {
                            Some(acceptor) => match acceptor.accept(stream).await {
                                Ok(tls) => conn.serve_connection(TokioIo::new(tls), svc).await,
                                // A failed handshake is the client's problem; nothing to serve.
                                Err(_) => return,
                            },
                            None => conn.serve_connection(TokioIo::new(stream), svc).await,
                        };
                    });
                }
                Some(_) = conns.join_next(), if !conns.is_empty() => {}
            }
        }
    });
    ServerTask { handle }
}
