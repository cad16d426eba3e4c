//! A model provider on a loopback port that answers each request with the next of its
//! scripted responses, and says when each request arrived (for the retry tests of the facade
//! and of the client integrations).

#![allow(dead_code)] // each test binary uses a part

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Instant;

pub struct StubProvider {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    arrivals: Arc<Mutex<Vec<Instant>>>,
}

impl StubProvider {
    /// `responses`: `(status line, extra header lines, body)`, one per request, in order.
    pub fn start(responses: Vec<(&'static str, &'static str, &'static str)>) -> StubProvider {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let arrivals = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&arrivals);
        std::thread::spawn(move || {
            for (status, headers, body) in responses {
                let (stream, _) = listener.accept().unwrap();
                seen.lock().unwrap().push(Instant::now());
                let mut reader = BufReader::new(stream);
                // The request whole (head and body), so that closing the connection does not
                // reset it under a client still writing.
                let mut length = 0;
                let mut line = String::new();
                while reader.read_line(&mut line).unwrap() > 2 {
                    if let Some((name, value)) = line.split_once(':')
                        && name.eq_ignore_ascii_case("content-length")
                    {
                        length = value.trim().parse().unwrap();
                    }
                    line.clear();
                }
                reader.read_exact(&mut vec![0; length]).unwrap();
                let answer = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\n{headers}\
                     content-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                reader.get_mut().write_all(answer.as_bytes()).unwrap();
            }
        });
        StubProvider { base, arrivals }
    }

    /// When each request arrived.
    pub fn arrivals(&self) -> Vec<Instant> {
        self.arrivals.lock().unwrap().clone()
    }
}
