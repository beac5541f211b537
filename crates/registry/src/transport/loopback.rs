//! Which protocol a registry on a loopback address speaks.
//!
//! A loopback registry is usually a test rig or a local mirror on plain HTTP, but a
//! port-forwarded registry or a local one with a certificate speaks TLS. Like docker, ferry finds
//! out rather than assuming: the first request to such a host sends a TLS ClientHello on a bare
//! TCP connection and reads the first bytes of the answer. A TLS server answers with a TLS record
//! (a handshake or an alert: `0x16`/`0x15`, then major version `0x03`); a plain HTTP server
//! answers `HTTP/1.x 400` or hangs up. The answer is kept per host for the life of the client.
//!
//! Why a hand-made hello rather than a real handshake: a real one needs the TLS client, whose
//! trust store costs milliseconds to load — most of a warm push to a local registry — and a
//! failed handshake does not tell "not TLS" from "TLS with a certificate we do not trust". This
//! probe costs one loopback round trip and tells them apart; certificate errors then surface
//! from the real request, with their own message.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::OnceCell;

/// How long a server may take to answer the hello before it counts as plain HTTP (a plain
/// server that waits for a request line ending is the only one that does not answer at once).
const ANSWER_TIMEOUT: Duration = Duration::from_millis(1500);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Speaks {
    Tls,
    PlainHttp,
}

/// The answers learned so far, per `host:port`.
#[derive(Default)]
pub(crate) struct LoopbackSchemes {
    known: Mutex<HashMap<String, Arc<OnceCell<Speaks>>>>,
}

impl LoopbackSchemes {
    /// What `authority` (`host:port` of a loopback address) speaks; probes it once. A host that
    /// cannot be reached is not remembered: the request that follows reports why, and the next
    /// one probes again.
    pub async fn speaks(&self, authority: &str, connect_timeout: Duration) -> Speaks {
        let cell = {
            let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
            known.entry(authority.to_string()).or_default().clone()
        };
        if let Some(answer) = cell.get() {
            return *answer;
        }
        match probe(authority, connect_timeout).await {
            Some(answer) => *cell.get_or_init(|| async { answer }).await,
            None => Speaks::PlainHttp,
        }
    }
}

/// `None` when no TCP connection could be made.
async fn probe(authority: &str, connect_timeout: Duration) -> Option<Speaks> {
    let mut stream = tokio::time::timeout(connect_timeout, TcpStream::connect(authority))
        .await
        .ok()?
        .ok()?;
    let answer = async {
        stream.write_all(&client_hello()).await?;
        let mut head = [0u8; 2];
        stream.read_exact(&mut head).await?;
        Ok::<_, std::io::Error>(head)
    };
    let speaks = match tokio::time::timeout(ANSWER_TIMEOUT, answer).await {
        Ok(Ok(head)) if is_tls_record(&head) => Speaks::Tls,
        _ => Speaks::PlainHttp,
    };
    tracing::debug!(authority, ?speaks, "probed a loopback registry");
    Some(speaks)
}

/// The start of a TLS record: content type handshake (22) or alert (21), then major version 3.
fn is_tls_record(head: &[u8; 2]) -> bool {
    matches!(head[0], 0x15 | 0x16) && head[1] == 0x03
}

/// A TLS 1.2 ClientHello any TLS 1.2/1.3 server answers, with a ServerHello or an alert.
fn client_hello() -> Vec<u8> {
    let mut body = Vec::with_capacity(96);
    body.extend_from_slice(&[0x03, 0x03]); // client_version TLS 1.2
    body.extend_from_slice(&rand::random::<[u8; 32]>());
    body.push(0); // no session id
    // ECDHE with AES-GCM or ChaCha20, ECDSA and RSA certificates.
    let suites: [u16; 6] = [0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8];
    body.extend_from_slice(&((suites.len() * 2) as u16).to_be_bytes());
    for suite in suites {
        body.extend_from_slice(&suite.to_be_bytes());
    }
    body.extend_from_slice(&[0x01, 0x00]); // compression: null
    let extensions: [(u16, &[u8]); 3] = [
        // supported_groups: x25519, secp256r1, secp384r1
        (0x000a, &[0x00, 0x06, 0x00, 0x1d, 0x00, 0x17, 0x00, 0x18]),
        // ec_point_formats: uncompressed
        (0x000b, &[0x01, 0x00]),
        // signature_algorithms: ecdsa_secp256r1_sha256, rsa_pss_rsae_sha256, rsa_pkcs1_sha256
        (0x000d, &[0x00, 0x06, 0x04, 0x03, 0x08, 0x04, 0x04, 0x01]),
    ];
    let mut ext = Vec::new();
    for (kind, data) in extensions {
        ext.extend_from_slice(&kind.to_be_bytes());
        ext.extend_from_slice(&(data.len() as u16).to_be_bytes());
        ext.extend_from_slice(data);
    }
    body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    body.extend_from_slice(&ext);

    let mut handshake = vec![0x01]; // ClientHello
    handshake.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    handshake.extend_from_slice(&body);
    let mut record = vec![0x16, 0x03, 0x01];
    record.extend_from_slice(&(handshake.len() as u16).to_be_bytes());
    record.extend_from_slice(&handshake);
    record
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_hello_is_one_well_formed_record() {
        let hello = client_hello();
        let record_len = u16::from_be_bytes([hello[3], hello[4]]) as usize;
        assert_eq!(hello.len(), 5 + record_len);
        let handshake_len = u32::from_be_bytes([0, hello[6], hello[7], hello[8]]) as usize;
        assert_eq!(record_len, 4 + handshake_len);
    }

    #[tokio::test]
    async fn plain_http_and_silent_servers_are_plain_and_tls_records_are_tls() {
        use tokio::net::TcpListener;
        async fn serve(answer: &'static [u8]) -> String {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let addr = listener.local_addr().expect("address").to_string();
            tokio::spawn(async move {
                let (mut socket, _) = listener.accept().await.expect("accept");
                let mut buf = [0u8; 512];
                let _ = socket.read(&mut buf).await;
                let _ = socket.write_all(answer).await;
            });
            addr
        }
        let schemes = LoopbackSchemes::default();
        let timeout = Duration::from_secs(2);
        let http = serve(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
        assert_eq!(schemes.speaks(&http, timeout).await, Speaks::PlainHttp);
        let alert = serve(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28]).await;
        assert_eq!(schemes.speaks(&alert, timeout).await, Speaks::Tls);
        let closed = serve(b"").await;
        assert_eq!(schemes.speaks(&closed, timeout).await, Speaks::PlainHttp);
        // Remembered: the listener is gone, the answer stays.
        assert_eq!(schemes.speaks(&alert, timeout).await, Speaks::Tls);
    }
}
