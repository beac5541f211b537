#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufReader, Read, Write};
use std::os::unix::net::UnixListener;

use super::*;

/// `payload` as a chunked body in chunks of `size`, with an extension and a trailer.
fn chunked(payload: &[u8], size: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, chunk) in payload.chunks(size).enumerate() {
        if i == 1 {
            write!(out, "{:X};name=value\r\n", chunk.len()).unwrap();
        } else {
            write!(out, "{:x}\r\n", chunk.len()).unwrap();
        }
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\nX-Trailer: yes\r\n\r\n");
    out
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// Reads `input` to its end in reads of `read_size`.
fn read_all(input: &mut impl Read, read_size: usize) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; read_size];
    loop {
        match input.read(&mut buf)? {
            0 => return Ok(out),
            n => out.extend_from_slice(&buf[..n]),
        }
    }
}

fn body(raw: &[u8], framing: Framing, buffer: usize) -> Body<&[u8]> {
    Body {
        inner: BufReader::with_capacity(buffer, raw),
        framing,
    }
}

const CHUNKED: Framing = Framing::Chunked {
    left: 0,
    done: false,
};

#[test]
fn chunked_bodies_decode_across_any_buffer_and_read_size() {
    let payload = pattern(200_000);
    let raw = chunked(&payload, 32 * 1024);
    for buffer in [7, 1000, 64 * 1024, 1024 * 1024] {
        for read_size in [1, 512, 100_000, 1024 * 1024] {
            let got = read_all(&mut body(&raw, CHUNKED, buffer), read_size).unwrap();
            assert_eq!(got, payload, "buffer {buffer}, reads of {read_size}");
        }
    }
}

#[test]
fn a_read_takes_every_buffered_chunk_at_once() {
    let payload = pattern(100_000);
    let raw = chunked(&payload, 1000);
    let mut body = body(&raw, CHUNKED, 1024 * 1024);
    let mut buf = vec![0u8; 1024 * 1024];
    assert_eq!(body.read(&mut buf).unwrap(), payload.len());
}

#[test]
fn length_and_close_delimited_bodies() {
    let payload = pattern(5000);
    let mut with_more = payload.clone();
    with_more.extend_from_slice(b"next response");
    let framing = Framing::Length { left: 5000 };
    assert_eq!(
        read_all(&mut body(&with_more, framing, 999), 700).unwrap(),
        payload
    );
    assert_eq!(
        read_all(&mut body(&payload, Framing::Close, 999), 700).unwrap(),
        payload
    );

    let framing = Framing::Length { left: 6000 };
    let err = read_all(&mut body(&payload, framing, 999), 700).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    assert!(
        err.to_string().contains("1000 bytes of the body to come"),
        "{err}"
    );
}

#[test]
fn broken_chunked_bodies_are_errors() {
    let payload = pattern(3000);
    let raw = chunked(&payload, 1000);
    // Cut in the middle of a chunk.
    let err = read_all(&mut body(&raw[..1500], CHUNKED, 64), 512).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof, "{err}");
    let err = read_all(&mut body(b"zz\r\nabc", CHUNKED, 64), 512).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    assert!(
        err.to_string().contains("bad chunk size line \"zz\""),
        "{err}"
    );
    let err = read_all(&mut body(b"3\r\nabcXY0\r\n\r\n", CHUNKED, 64), 512).unwrap_err();
    assert!(err.to_string().contains("CRLF"), "{err}");
}

#[test]
fn response_heads() {
    let head = b"HTTP/1.1 200 OK\r\nContent-Type: application/x-tar\r\n\
                 Transfer-Encoding: chunked\r\n\r\nrest";
    let mut input = &head[..];
    assert_eq!(read_head(&mut input).unwrap(), (200, CHUNKED));
    assert_eq!(input, b"rest");
    let mut input = &b"HTTP/1.1 404 Not Found\r\ncontent-length: 42\r\n\r\n"[..];
    assert_eq!(
        read_head(&mut input).unwrap(),
        (404, Framing::Length { left: 42 })
    );
    let mut input = &b"HTTP/1.0 200 OK\r\n\r\n"[..];
    assert_eq!(read_head(&mut input).unwrap(), (200, Framing::Close));

    let mut input = &b"SSH-2.0-OpenSSH_9.2\r\n\r\n"[..];
    let err = read_head(&mut input).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    assert!(err.to_string().contains("not an HTTP response"), "{err}");
    let mut input = &b"HTTP/1.1 200 OK\r\nContent-"[..];
    assert_eq!(
        read_head(&mut input).unwrap_err().kind(),
        io::ErrorKind::UnexpectedEof
    );
}

/// A reader that hands out the given parts one per read, then an error if one is given.
struct Parts {
    parts: Vec<Vec<u8>>,
    then: Option<io::Error>,
}

impl Read for Parts {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(part) = self.parts.first_mut() else {
            return match self.then.take() {
                Some(e) => Err(e),
                None => Ok(0),
            };
        };
        let n = buf.len().min(part.len());
        buf[..n].copy_from_slice(&part[..n]);
        part.drain(..n);
        if part.is_empty() {
            self.parts.remove(0);
        }
        Ok(n)
    }
}

fn held(parts: &[&[u8]], then: Option<io::Error>) -> Held<Parts> {
    let parts = Parts {
        parts: parts.iter().map(|p| p.to_vec()).collect(),
        then,
    };
    Held::new(parts, "app:1", "GET /x")
}

/// Reads to the end in reads of `read_size`: the data handed on, and the error that ended it.
fn drain(mut input: Held<Parts>, read_size: usize) -> (Vec<u8>, Option<DockerError>) {
    let mut out = Vec::new();
    let mut buf = vec![0u8; read_size];
    loop {
        match input.read(&mut buf) {
            Ok(0) => return (out, None),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => {
                let error = *e.into_inner().unwrap().downcast::<DockerError>().unwrap();
                return (out, Some(error));
            }
        }
    }
}

#[test]
fn a_whole_export_passes_through_unchanged() {
    let tar = pattern(100 * 1024);
    let parts: Vec<&[u8]> = tar.chunks(7000).collect();
    for read_size in [1, 512, 10_000, 16 * 1024, 1024 * 1024] {
        let (data, err) = drain(held(&parts, None), read_size);
        assert!(err.is_none(), "{err:?}");
        assert_eq!(data, tar, "reads of {read_size}");
    }
}

#[test]
fn an_error_the_engine_appends_to_the_export_is_reported() {
    let block = [1u8; 512];
    let error = br#"{"errorDetail":{"message":"open /var/lib/docker/x: no such file"},"error":"open /var/lib/docker/x: no such file"}"#;
    let big = vec![1u8; 64 * 1024];
    // Split across the last parts, as the socket may deliver it.
    let parts: [&[u8]; 5] = [&big, &block, &error[..20], &error[20..], b"\n"];
    for read_size in [512, 64 * 1024, 1024 * 1024] {
        let (data, err) = drain(held(&parts, None), read_size);
        assert!(
            data.len() <= big.len() + 512,
            "the garbage tail is not handed on (reads of {read_size})"
        );
        let err = err.unwrap();
        assert!(matches!(err, DockerError::ExportFailed { .. }));
        assert_eq!(
            err.to_string(),
            "the Docker Engine failed while exporting app:1: open /var/lib/docker/x: no such file"
        );
    }
}

#[test]
fn a_truncated_or_broken_export_is_an_error() {
    let (_, err) = drain(held(&[&[1u8; 700]], None), 4096);
    assert!(err.unwrap().to_string().contains("after 700 bytes"));
    let (_, err) = drain(held(&[], None), 4096);
    assert!(err.unwrap().to_string().contains("empty"));
    let reset = io::Error::new(io::ErrorKind::ConnectionReset, "connection reset");
    let (_, err) = drain(held(&[&[1u8; 512]], Some(reset)), 4096);
    assert_eq!(
        err.unwrap().to_string(),
        "reading GET /x from the Docker Engine failed: connection reset"
    );
    let stalled = io::Error::new(io::ErrorKind::WouldBlock, "timed out");
    let (_, err) = drain(held(&[&[1u8; 512]], Some(stalled)), 4096);
    assert!(matches!(err, Some(DockerError::Timeout { .. })), "{err:?}");
}

/// An Engine stand-in on a unix socket that answers one request with `response`; the request
/// it read comes back through the join handle.
fn fake_engine(
    response: Vec<u8>,
) -> (
    tempfile::TempDir,
    DockerEngine,
    std::thread::JoinHandle<String>,
) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("docker.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut request = Vec::new();
        let mut byte = [0u8; 1];
        while !request.ends_with(b"\r\n\r\n") {
            stream.read_exact(&mut byte).unwrap();
            request.push(byte[0]);
        }
        stream.write_all(&response).unwrap();
        String::from_utf8(request).unwrap()
    });
    let engine = DockerEngine::new(&format!("unix://{}", path.display())).unwrap();
    (dir, engine, server)
}

#[test]
fn exports_from_a_chunked_answer() {
    let tar = pattern(3 * 512 * 100);
    let mut response = b"HTTP/1.1 200 OK\r\nContent-Type: application/x-tar\r\n\
                         Transfer-Encoding: chunked\r\n\r\n"
        .to_vec();
    response.extend_from_slice(&chunked(&tar, 32 * 1024));
    let (_dir, engine, server) = fake_engine(response);
    let mut reader = engine.export("app:1").unwrap();
    assert_eq!(read_all(&mut reader, 1024 * 1024).unwrap(), tar);
    let request = server.join().unwrap();
    assert!(
        request.starts_with("GET /images/app:1/get HTTP/1.1\r\n"),
        "{request}"
    );
    assert!(request.contains("\r\nConnection: close\r\n"), "{request}");
}

#[test]
fn export_errors_carry_the_engines_message() {
    let answer = |status: &str, body: &[u8]| {
        let head = format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        [head.as_bytes(), body].concat()
    };
    let body = br#"{"message":"reference does not exist"}"#;
    let (_dir, engine, _server) = fake_engine(answer("404 Not Found", body));
    let err = engine.export("app:1").err().unwrap();
    assert!(matches!(err, DockerError::NoSuchImage { .. }), "{err:?}");

    let body = br#"{"message":"write /var/lib/docker/tmp: no space left on device"}"#;
    let (_dir, engine, _server) = fake_engine(answer("500 Internal Server Error", body));
    let err = engine.export("app:1").err().unwrap();
    assert_eq!(
        err.to_string(),
        "Docker Engine: GET /images/app:1/get: 500: write /var/lib/docker/tmp: no space left on device"
    );

    let (_dir, engine, _server) = fake_engine(b"not http at all\r\n\r\n".to_vec());
    let err = engine.export("app:1").err().unwrap();
    assert!(matches!(err, DockerError::Protocol { .. }), "{err:?}");
}
