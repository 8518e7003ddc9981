//! A TCP proxy in front of a peer that injects faults: the peer down, slow, answering HTTP 500,
//! or the connection cut after some bytes of the answer (a dropped download mid-blob).
//!
//! Switching the fault cuts every open connection (a client's pooled keep-alive connection
//! would otherwise go on as before) and applies to the next ones; the proxy counts
//! connections, so a test can tell a retry with backoff from a hot loop.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::PeerError;

/// What the proxy does with the next connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forward both ways.
    None,
    /// Close every connection at once, without a byte: the peer is down.
    Down,
    /// Forward, but hold every chunk of the answer this long first.
    Slow(Duration),
    /// Answer `HTTP/1.1 500 Internal Server Error` to the request without asking the peer.
    Http500,
    /// Forward the request, and cut the connection after this many bytes of the answer.
    CutAfter(u64),
}

struct Shared {
    upstream: SocketAddr,
    fault: Mutex<Fault>,
    connections: AtomicU64,
    /// The client side of every connection accepted since the last switch.
    open: Mutex<Vec<TcpStream>>,
    stop: AtomicBool,
}

/// The running proxy; dropping it stops accepting.
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl FaultProxy {
    /// Listens on a free 127.0.0.1 port and forwards to `upstream`, with no fault.
    pub fn start(upstream: SocketAddr) -> Result<FaultProxy, PeerError> {
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|source| PeerError::Io {
            what: "bind the fault proxy".into(),
            source,
        })?;
        let addr = listener.local_addr().map_err(|source| PeerError::Io {
            what: "the fault proxy's address".into(),
            source,
        })?;
        let shared = Arc::new(Shared {
            upstream,
            fault: Mutex::new(Fault::None),
            connections: AtomicU64::new(0),
            open: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
        });
        let accepting = shared.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if accepting.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                accepting.connections.fetch_add(1, Ordering::SeqCst);
                if let Ok(clone) = client.try_clone() {
                    lock(&accepting.open).push(clone);
                }
                let fault = *lock(&accepting.fault);
                let upstream = accepting.upstream;
                std::thread::spawn(move || serve(client, upstream, fault));
            }
        });
        Ok(FaultProxy { addr, shared })
    }

    /// `127.0.0.1:PORT` of the proxy.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Sets the fault for the next connections and cuts the open ones.
    pub fn set(&self, fault: Fault) {
        *lock(&self.shared.fault) = fault;
        for open in lock(&self.shared.open).drain(..) {
            let _ = open.shutdown(Shutdown::Both);
        }
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.shared.connections.load(Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

/// A poisoned lock still holds a usable value here (a fault or a list of sockets).
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

fn serve(mut client: TcpStream, upstream: SocketAddr, fault: Fault) {
    match fault {
        Fault::Down => {
            let _ = client.shutdown(Shutdown::Both);
        }
        Fault::Http500 => {
            // Read the request head so that the client sees an answer, not a reset.
            let mut head = [0u8; 8192];
            let _ = client.set_read_timeout(Some(Duration::from_secs(5)));
            let _ = client.read(&mut head);
            let body = "injected fault\n";
            let _ = write!(
                client,
                "HTTP/1.1 500 Internal Server Error\r\ncontent-type: text/plain\r\n\
                 content-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = client.shutdown(Shutdown::Both);
        }
        Fault::None | Fault::Slow(_) | Fault::CutAfter(_) => {
            let Ok(server) = TcpStream::connect(upstream) else {
                let _ = client.shutdown(Shutdown::Both);
                return;
            };
            let (Ok(mut client_w), Ok(mut server_r)) = (client.try_clone(), server.try_clone())
            else {
                return;
            };
            let mut server_w = server;
            // The request way is plain; the faults are on the answer way.
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut client, &mut server_w);
                let _ = server_w.shutdown(Shutdown::Write);
            });
            answer(&mut server_r, &mut client_w, fault);
            let _ = client_w.shutdown(Shutdown::Both);
            let _ = server_r.shutdown(Shutdown::Both);
        }
    }
}

fn answer(from: &mut TcpStream, to: &mut TcpStream, fault: Fault) {
    let mut sent = 0u64;
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let mut chunk = &buf[..n];
        match fault {
            Fault::Slow(pause) => std::thread::sleep(pause),
            Fault::CutAfter(limit) => {
                let room = limit.saturating_sub(sent) as usize;
                if room < chunk.len() {
                    chunk = &chunk[..room];
                    let _ = to.write_all(chunk);
                    return;
                }
            }
            _ => {}
        }
        if to.write_all(chunk).is_err() {
            return;
        }
        sent += chunk.len() as u64;
    }
}
