//! `GET /images/{name}/get`, read synchronously on the thread that consumes the tar.
//!
//! Why not the async client the other endpoints use: an export is the one large transfer (the
//! whole image), and the Engine sends it in 32 KiB chunks. Through an async body and a
//! sync bridge each chunk cost a task wake-up and a thread hand-over — thousands per image, a
//! third of a first push's CPU. Read here, on a blocking socket with a 1 MiB buffer, the bytes
//! go from the socket to the reader's buffer with one copy and no hand-over.
//!
//! The response is HTTP/1.1 from the Engine's Go server: a head, then a chunked body (or one
//! with a `Content-Length`, or one that ends when the connection does). `Connection: close`
//! means the connection is never reused.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use super::{
    CONNECT_TIMEOUT, DockerEngine, DockerError, ERROR_BODY_LIMIT, Endpoint, RESPONSE_TIMEOUT,
    encode_name, engine_error_tail, error_message,
};

/// The socket buffer: most reads of a large export are served from it in one go.
const BUFFER: usize = 1024 * 1024;
/// A response head or chunk-size line longer than this is not from a Docker Engine.
const LINE_LIMIT: usize = 64 * 1024;
/// The last bytes of the body are held back until its end is known: once the Engine has
/// started sending an export it can no longer fail the request, so on a late error it appends
/// `{"errorDetail":{"message":…},"error":…}` to the tar and closes the stream. Held back, that
/// tail becomes [`DockerError::ExportFailed`] instead of a tar reader's "bad header" far from
/// the cause. Far more than the Engine's error messages, which are a line.
const TAIL_HOLD: usize = 16 * 1024;
const TAR_BLOCK: u64 = 512;

impl DockerEngine {
    /// `GET /images/{name}/get`: the image as a `docker save` tar, streamed as the Engine sends
    /// it (never held whole). Blocking: call it, and read the result, on a blocking thread.
    pub fn export(&self, name: &str) -> Result<ExportReader, DockerError> {
        let path = format!("/images/{}/get", encode_name(name)?);
        let request = format!("GET {path}");
        let stream = self.connect_blocking()?;
        let mut reader = BufReader::with_capacity(BUFFER, stream);
        let head = format!(
            "GET {path} HTTP/1.1\r\nHost: docker\r\nUser-Agent: ecr-ferry/{}\r\n\
             Accept: application/x-tar\r\nConnection: close\r\n\r\n",
            env!("CARGO_PKG_VERSION")
        );
        reader
            .get_mut()
            .write_all(head.as_bytes())
            .map_err(|e| failure(e, &request))?;
        let (status, framing) = read_head(&mut reader).map_err(|e| failure(e, &request))?;
        // The Engine answers once it has written the whole image out: the wait is its work.
        tracing::debug!(status, "the Engine's export began");
        let body = Body {
            inner: reader,
            framing,
        };
        if status == 404 {
            return Err(DockerError::NoSuchImage {
                name: name.to_string(),
            });
        }
        if status != 200 {
            // The status alone is still worth reporting if the body cannot be read.
            let mut text = Vec::new();
            let _ = body.take(ERROR_BODY_LIMIT as u64).read_to_end(&mut text);
            return Err(DockerError::Api {
                status,
                message: error_message(&text),
                request,
            });
        }
        Ok(ExportReader(Held::new(body, name, &request)))
    }

    fn connect_blocking(&self) -> Result<Socket, DockerError> {
        let socket = match &self.endpoint {
            Endpoint::Unix(path) => {
                Socket::Unix(UnixStream::connect(path).map_err(|e| self.unreachable(&e))?)
            }
            Endpoint::Tcp(authority) => {
                let addresses = authority
                    .to_socket_addrs()
                    .map_err(|e| self.unreachable(&e))?;
                let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
                let mut connected = None;
                for address in addresses {
                    match TcpStream::connect_timeout(&address, CONNECT_TIMEOUT) {
                        Ok(stream) => {
                            connected = Some(stream);
                            break;
                        }
                        Err(e) => last = e,
                    }
                }
                Socket::Tcp(connected.ok_or_else(|| self.unreachable(&last))?)
            }
        };
        // The Engine writes the whole export to a temp directory before it sends a byte, and
        // waits on its image store's lock first; in the body it never pauses that long.
        socket
            .set_timeouts(Some(RESPONSE_TIMEOUT))
            .map_err(|e| self.unreachable(&e))?;
        Ok(socket)
    }
}

enum Socket {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Socket {
    fn set_timeouts(&self, timeout: Option<Duration>) -> io::Result<()> {
        match self {
            Socket::Unix(s) => {
                s.set_read_timeout(timeout)?;
                s.set_write_timeout(timeout)
            }
            Socket::Tcp(s) => {
                s.set_read_timeout(timeout)?;
                s.set_write_timeout(timeout)
            }
        }
    }
}

impl Read for Socket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Socket::Unix(s) => s.read(buf),
            Socket::Tcp(s) => s.read(buf),
        }
    }
}

impl Write for Socket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Socket::Unix(s) => s.write(buf),
            Socket::Tcp(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Socket::Unix(s) => s.flush(),
            Socket::Tcp(s) => s.flush(),
        }
    }
}

/// How the body's end is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// Chunked: bytes left in the current chunk (0: a chunk-size line comes next).
    Chunked {
        left: u64,
        done: bool,
    },
    Length {
        left: u64,
    },
    /// Until the connection closes.
    Close,
}

fn invalid(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.into())
}

/// One line (ending in `\n`, which is kept), at most [`LINE_LIMIT`] bytes.
fn read_line(input: &mut impl BufRead, line: &mut Vec<u8>) -> io::Result<()> {
    line.clear();
    let n = input
        .by_ref()
        .take(LINE_LIMIT as u64)
        .read_until(b'\n', line)?;
    if n == 0 || line.last() != Some(&b'\n') {
        return Err(if n >= LINE_LIMIT {
            invalid("a line of the response is too long")
        } else {
            io::Error::new(io::ErrorKind::UnexpectedEof, "the connection closed early")
        });
    }
    Ok(())
}

/// Reads the response head: the status and how the body is framed.
fn read_head(input: &mut impl BufRead) -> io::Result<(u16, Framing)> {
    let mut head = Vec::new();
    let mut line = Vec::new();
    loop {
        read_line(input, &mut line)?;
        head.extend_from_slice(&line);
        if head.len() > LINE_LIMIT {
            return Err(invalid("the response head is too long"));
        }
        if line == b"\r\n" || line == b"\n" {
            break;
        }
    }
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    match response.parse(&head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err(invalid("the response head is incomplete")),
        Err(e) => return Err(invalid(format!("not an HTTP response: {e}"))),
    }
    let status = response.code.unwrap_or(0);
    let header = |name: &str| {
        response
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).trim().to_ascii_lowercase())
    };
    let framing = if header("transfer-encoding").is_some_and(|v| v.ends_with("chunked")) {
        Framing::Chunked {
            left: 0,
            done: false,
        }
    } else if let Some(length) = header("content-length") {
        Framing::Length {
            left: length
                .parse()
                .map_err(|_| invalid(format!("Content-Length {length:?} is not a number")))?,
        }
    } else {
        Framing::Close
    };
    Ok((status, framing))
}

/// The body's bytes, with the framing taken off.
struct Body<R> {
    inner: BufReader<R>,
    framing: Framing,
}

impl<R: Read> Body<R> {
    /// Moves to the next chunk's data; false at the last chunk.
    fn next_chunk(&mut self) -> io::Result<bool> {
        let mut line = Vec::new();
        read_line(&mut self.inner, &mut line)?;
        let text = String::from_utf8_lossy(&line);
        // Chunk extensions (`;name=value`) carry nothing for us.
        let size = text.split(';').next().unwrap_or("").trim();
        let size = u64::from_str_radix(size, 16)
            .map_err(|_| invalid(format!("bad chunk size line {:?}", text.trim_end())))?;
        if size == 0 {
            // Trailer fields, if any, up to the empty line.
            loop {
                read_line(&mut self.inner, &mut line)?;
                if line == b"\r\n" || line == b"\n" {
                    break;
                }
            }
            self.framing = Framing::Chunked {
                left: 0,
                done: true,
            };
            return Ok(false);
        }
        self.framing = Framing::Chunked {
            left: size,
            done: false,
        };
        Ok(true)
    }

    /// Data of the current chunk; at its end, the CRLF after it is consumed.
    fn read_chunk_data(&mut self, buf: &mut [u8], left: u64) -> io::Result<usize> {
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the connection closed in the middle of a chunk",
            ));
        }
        let left = left - n as u64;
        if left == 0 {
            let mut crlf = [0u8; 2];
            self.inner.read_exact(&mut crlf)?;
            if &crlf != b"\r\n" {
                return Err(invalid("a chunk does not end in CRLF"));
            }
        }
        self.framing = Framing::Chunked { left, done: false };
        Ok(n)
    }
}

impl<R: Read> Read for Body<R> {
    /// Fills as much of `buf` as the bytes already buffered allow (across chunks), reading
    /// from the socket only when nothing is buffered: the Engine's 32 KiB chunks must not make
    /// every read small.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut filled = 0;
        while filled < buf.len() {
            // Only the first step of a read may wait on the socket.
            if filled > 0 && self.inner.buffer().is_empty() {
                break;
            }
            let n = match self.framing {
                Framing::Chunked { done: true, .. } => break,
                Framing::Chunked { left: 0, .. } => {
                    if !self.next_chunk()? {
                        break;
                    }
                    continue;
                }
                Framing::Chunked { left, .. } => self.read_chunk_data(&mut buf[filled..], left)?,
                Framing::Length { left: 0 } => break,
                Framing::Length { left } => {
                    let want =
                        (buf.len() - filled).min(usize::try_from(left).unwrap_or(usize::MAX));
                    let n = self.inner.read(&mut buf[filled..filled + want])?;
                    if n == 0 {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            format!("the connection closed with {left} bytes of the body to come"),
                        ));
                    }
                    self.framing = Framing::Length {
                        left: left - n as u64,
                    };
                    n
                }
                Framing::Close => match self.inner.read(&mut buf[filled..])? {
                    0 => break,
                    n => n,
                },
            };
            filled += n;
        }
        Ok(filled)
    }
}

/// The exported image as a tar, checked at its end (see [`TAIL_HOLD`]). Errors are
/// [`DockerError`]s inside `io::Error`s (`get_ref`/`into_inner` give them back).
pub struct ExportReader(Held<Body<Socket>>);

impl Read for ExportReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

/// A body whose newest [`TAIL_HOLD`] bytes are kept back until it ends and [`check_end`] has
/// seen them.
struct Held<R> {
    body: R,
    held: Vec<u8>,
    total: u64,
    ended: bool,
    name: String,
    request: String,
}

impl<R: Read> Held<R> {
    fn new(body: R, name: &str, request: &str) -> Self {
        Held {
            body,
            held: Vec::with_capacity(TAIL_HOLD),
            total: 0,
            ended: false,
            name: name.to_string(),
            request: request.to_string(),
        }
    }

    fn read_held(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if self.ended {
                let n = buf.len().min(self.held.len());
                buf[..n].copy_from_slice(&self.held[..n]);
                self.held.drain(..n);
                return Ok(n);
            }
            if buf.len() <= self.held.len() {
                // A small read (a tar header): served from the front of what is held, once
                // enough has followed it.
                if self.held.len() >= TAIL_HOLD + buf.len() {
                    let n = buf.len();
                    buf.copy_from_slice(&self.held[..n]);
                    self.held.drain(..n);
                    return Ok(n);
                }
                let h = self.held.len();
                self.held.resize(h + TAIL_HOLD, 0);
                let read = self.body.read(&mut self.held[h..]);
                self.held.truncate(h + *read.as_ref().unwrap_or(&0));
                match read? {
                    0 => self.end()?,
                    n => self.total += n as u64,
                }
                continue;
            }
            // A large read: what is held, then as much as the body gives at once, all in
            // `buf`; the newest bytes go back into `held`.
            let h = self.held.len();
            buf[..h].copy_from_slice(&self.held);
            self.held.clear();
            let n = match self.body.read(&mut buf[h..]) {
                Ok(n) => n,
                Err(e) => {
                    self.held.extend_from_slice(&buf[..h]);
                    return Err(e);
                }
            };
            if n == 0 {
                self.held.extend_from_slice(&buf[..h]);
                self.end()?;
                continue;
            }
            self.total += n as u64;
            let have = h + n;
            let keep = have.min(TAIL_HOLD);
            self.held.extend_from_slice(&buf[have - keep..have]);
            if have > keep {
                return Ok(have - keep);
            }
        }
    }

    fn end(&mut self) -> io::Result<()> {
        self.ended = true;
        match check_end(&self.held, self.total, &self.name, &self.request) {
            Some(error) => {
                // The Engine's message is more use than a tar reader's complaint about the
                // rest, so the rest is dropped.
                self.held.clear();
                Err(io::Error::other(error))
            }
            None => Ok(()),
        }
    }
}

impl<R: Read> Read for Held<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_held(buf).map_err(|e| {
            if e.get_ref().is_some_and(|inner| inner.is::<DockerError>()) {
                return e;
            }
            io::Error::other(failure(e, &self.request))
        })
    }
}

/// What a failed read or write of `request` on the Engine's socket means to a user.
fn failure(e: io::Error, request: &str) -> DockerError {
    let request = request.to_string();
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => DockerError::Timeout {
            request,
            after: RESPONSE_TIMEOUT,
        },
        // Framing that no HTTP server sends.
        io::ErrorKind::InvalidData => DockerError::Protocol {
            request,
            reason: e.to_string(),
        },
        _ => DockerError::Transfer {
            request,
            cause: e.to_string(),
        },
    }
}

/// At the end of the body: the error, if it ended badly.
fn check_end(tail: &[u8], total: u64, name: &str, request: &str) -> Option<DockerError> {
    if let Some(message) = engine_error_tail(tail) {
        Some(DockerError::ExportFailed {
            name: name.to_string(),
            message,
        })
    } else if total == 0 {
        Some(DockerError::Protocol {
            request: request.to_string(),
            reason: "the export is empty".into(),
        })
    } else if !total.is_multiple_of(TAR_BLOCK) {
        Some(DockerError::Transfer {
            request: request.to_string(),
            cause: format!("the export ended after {total} bytes, in the middle of a tar block"),
        })
    } else {
        None
    }
}

#[cfg(test)]
#[path = "export_tests.rs"]
mod tests;
