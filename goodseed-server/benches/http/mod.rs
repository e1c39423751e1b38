//! A keep-alive HTTP/1.1 client for the server's benchmarks: one request at a time, the
//! body read whole (by length, chunked, or to the close of a server that speaks
//! HTTP/1.0, as goodseed 0.4.0's does, reconnecting for the next request).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;

/// A keep-alive HTTP/1.1 connection.
pub(crate) struct Conn {
    reader: BufReader<TcpStream>,
    port: u16,
}

impl Conn {
    pub(crate) fn new(port: u16) -> Conn {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        Conn { reader: BufReader::new(stream), port }
    }

    /// Sends a GET and reads the whole answer: its status and body. A server that
    /// closed the connection since is reconnected to, and pays for it.
    pub(crate) fn get(&mut self, target: &str) -> (u16, Vec<u8>) {
        let req = format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n\r\n", self.port);
        let mut line = String::new();
        let sent = self.reader.get_mut().write_all(req.as_bytes()).is_ok();
        if !sent || self.reader.read_line(&mut line).map_or(true, |n| n == 0) {
            *self = Conn::new(self.port);
            self.reader.get_mut().write_all(req.as_bytes()).expect("send");
            line.clear();
            self.reader.read_line(&mut line).expect("status");
        }
        let status: u16 = line.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("status");
        let (mut length, mut chunked) = (None, false);
        loop {
            line.clear();
            self.reader.read_line(&mut line).expect("header");
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            let lower = l.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("content-length:") {
                length = v.trim().parse::<usize>().ok();
            }
            if lower.starts_with("transfer-encoding:") && lower.contains("chunked") {
                chunked = true;
            }
        }
        let mut body = Vec::new();
        if !chunked {
            match length {
                Some(n) => {
                    body.resize(n, 0);
                    self.reader.read_exact(&mut body).expect("body");
                }
                // No length: the body ends when the server closes.
                None => {
                    self.reader.read_to_end(&mut body).expect("body");
                }
            }
            return (status, body);
        }
        loop {
            line.clear();
            self.reader.read_line(&mut line).expect("chunk size");
            let size = usize::from_str_radix(line.trim(), 16).expect("hex");
            let mut chunk = vec![0; size + 2];
            self.reader.read_exact(&mut chunk).expect("chunk");
            if size == 0 {
                return (status, body);
            }
            body.extend_from_slice(&chunk[..size]);
        }
    }

    /// [`Conn::get`] that must answer 200; the body's length.
    #[allow(dead_code, reason = "not every benchmark asks this way")]
    pub(crate) fn get_ok(&mut self, target: &str) -> usize {
        let (status, body) = self.get(target);
        assert_eq!(
            status,
            200,
            "{target}: {}",
            String::from_utf8_lossy(&body[..body.len().min(200)])
        );
        body.len()
    }
}
