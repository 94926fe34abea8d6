//! A TCP proxy a test controls. It forwards 127.0.0.1:`port` to a target port while the link
//! is open, and breaks the link two ways:
//! - [cut](Proxy::cut): every open connection is closed both ways, and new ones are closed as
//!   soon as they are accepted (the peer sees its connection reset or refused);
//! - [black hole](Proxy::black_hole): nothing passes either way, but every socket stays open
//!   (as when a network partition drops packets: the peers notice only by their own timeouts),
//!   and new connections are accepted and never answered.
//!
//! [heal](Proxy::heal) opens the link again: black-holed connections resume where they stopped
//! (no byte is lost: each direction holds what it read until it may write it), cut ones stay
//! closed. The NATS cluster rig puts one in front of every route link and every client port, so
//! a test can partition a node without touching the process.

use std::sync::{
    Arc,
    atomic::{AtomicU16, AtomicU64, Ordering},
};

use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::watch,
    task::JoinHandle,
};

/// The state of the link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    Open,
    BlackHole,
    Cut,
}

/// A forwarding listener on a free loopback port, stopped on Drop.
pub struct Proxy {
    port: u16,
    state: Arc<State>,
    accept: JoinHandle<()>,
}

struct State {
    /// Where new connections go.
    target: AtomicU16,
    /// The link, and the number of cuts so far (a connection closes when it changes).
    link: watch::Sender<(Link, u64)>,
    /// Connections forwarded so far.
    forwarded: AtomicU64,
}

impl Proxy {
    /// Forward a fresh loopback port to 127.0.0.1:`target` (which need not listen yet).
    pub async fn start(target: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("proxy: cannot bind 127.0.0.1:0: {e}"));
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
        let state = Arc::new(State {
            target: AtomicU16::new(target),
            link: watch::Sender::new((Link::Open, 0)),
            forwarded: AtomicU64::new(0),
        });
        let accept = tokio::spawn(accept_loop(listener, state.clone()));
        Self {
            port,
            state,
            accept,
        }
    }

    /// The port clients connect to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port it forwards to.
    pub fn target(&self) -> u16 {
        self.state.target.load(Ordering::SeqCst)
    }

    /// Forward new connections to another port (the server moved, say after losing a port
    /// race); open connections stay where they are.
    pub fn set_target(&self, target: u16) {
        self.state.target.store(target, Ordering::SeqCst);
    }

    /// Close every open connection both ways, and every new one as soon as it is accepted.
    pub fn cut(&self) {
        self.state.link.send_modify(|(link, cuts)| {
            *link = Link::Cut;
            *cuts += 1;
        });
    }

    /// Let nothing through either way, keeping every socket open; new connections are
    /// accepted and never answered.
    pub fn black_hole(&self) {
        self.state
            .link
            .send_modify(|(link, _)| *link = Link::BlackHole);
    }

    /// Forward again (black-holed connections resume).
    pub fn heal(&self) {
        self.state.link.send_modify(|(link, _)| *link = Link::Open);
    }

    pub fn link(&self) -> Link {
        self.state.link.borrow().0
    }

    /// How many connections it has forwarded.
    pub fn forwarded(&self) -> u64 {
        self.state.forwarded.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        // Every connection task watches the link: a last cut closes them all.
        self.cut();
    }
}

async fn accept_loop(listener: TcpListener, state: Arc<State>) {
    loop {
        let inbound = match listener.accept().await {
            Ok((inbound, _)) => inbound,
            Err(_) => {
                // Out of descriptors, say: back off a moment rather than spin.
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let mut link = state.link.subscribe();
        let (now, cuts) = *link.borrow_and_update();
        match now {
            // Cut: the peer sees its connection closed at once.
            Link::Cut => drop(inbound),
            // Black hole: held, unanswered, until the link changes; then closed.
            Link::BlackHole => {
                tokio::spawn(async move {
                    let _ = link.changed().await;
                    drop(inbound);
                });
            }
            Link::Open => {
                let state = state.clone();
                let target = state.target.load(Ordering::SeqCst);
                tokio::spawn(async move {
                    let Ok(outbound) = TcpStream::connect(("127.0.0.1", target)).await else {
                        return; // the target is down: the inbound connection closes
                    };
                    // A connect to a loopback port nobody listens on can pick that very port
                    // as its own and connect to itself (TCP simultaneous open): it would hold
                    // the port a restarting server needs. Drop it as if refused.
                    if outbound.local_addr().ok() == outbound.peer_addr().ok() {
                        return;
                    }
                    state.forwarded.fetch_add(1, Ordering::SeqCst);
                    forward(inbound, outbound, link, cuts).await;
                });
            }
        }
    }
}

/// Copy both ways until either side closes or the link is cut; then both sockets close.
async fn forward(
    inbound: TcpStream,
    outbound: TcpStream,
    link: watch::Receiver<(Link, u64)>,
    cuts: u64,
) {
    let _ = inbound.set_nodelay(true);
    let _ = outbound.set_nodelay(true);
    let (from_in, to_in) = inbound.into_split();
    let (from_out, to_out) = outbound.into_split();
    let mut cut = link.clone();
    tokio::select! {
        () = pump(from_in, to_out, link.clone()) => {}
        () = pump(from_out, to_in, link) => {}
        _ = cut.wait_for(|(l, n)| *l == Link::Cut || *n != cuts) => {}
    }
}

/// One direction: read a chunk, wait while the link is a black hole, write it.
async fn pump(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    mut link: watch::Receiver<(Link, u64)>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        match link.wait_for(|(l, _)| *l != Link::BlackHole).await {
            Ok(state) if state.0 == Link::Open => {}
            _ => return,
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::Proxy;

    async fn echo_server() -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 64];
                    while let Ok(n) = s.read(&mut buf).await {
                        if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        port
    }

    async fn round_trip(s: &mut tokio::net::TcpStream) -> Option<Vec<u8>> {
        s.write_all(b"ping").await.ok()?;
        let mut buf = [0u8; 4];
        let n = tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut buf))
            .await
            .ok()?
            .ok()?;
        Some(buf[..n].to_vec())
    }

    #[tokio::test]
    async fn forwards_cuts_both_ways_and_heals() {
        let proxy = Proxy::start(echo_server().await).await;
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", proxy.port()))
            .await
            .expect("connect");
        assert_eq!(round_trip(&mut s).await.as_deref(), Some(&b"ping"[..]));

        proxy.cut();
        // The open connection ends (EOF or reset), within the read's timeout.
        let mut buf = [0u8; 4];
        let read = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .expect("the cut connection ends, not hangs");
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
        // A new one is closed at once.
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", proxy.port()))
            .await
            .expect("accepted, then closed");
        assert_eq!(round_trip(&mut s).await, None);

        proxy.heal();
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", proxy.port()))
            .await
            .expect("connect");
        assert_eq!(round_trip(&mut s).await.as_deref(), Some(&b"ping"[..]));
        assert_eq!(proxy.forwarded(), 2);
    }

    #[tokio::test]
    async fn a_black_hole_holds_bytes_until_healed() {
        let proxy = Proxy::start(echo_server().await).await;
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", proxy.port()))
            .await
            .expect("connect");
        assert_eq!(round_trip(&mut s).await.as_deref(), Some(&b"ping"[..]));

        proxy.black_hole();
        s.write_all(b"pong").await.expect("write into the hole");
        let mut buf = [0u8; 4];
        let silent = tokio::time::timeout(Duration::from_millis(300), s.read(&mut buf)).await;
        assert!(
            silent.is_err(),
            "nothing comes back through a black hole: {silent:?}"
        );
        // A new connection is accepted and never answered.
        let mut fresh = tokio::net::TcpStream::connect(("127.0.0.1", proxy.port()))
            .await
            .expect("accepted");
        fresh.write_all(b"ping").await.expect("write");
        let silent = tokio::time::timeout(Duration::from_millis(300), fresh.read(&mut buf)).await;
        assert!(
            silent.is_err(),
            "a new connection is not answered: {silent:?}"
        );

        proxy.heal();
        tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut buf))
            .await
            .expect("the held bytes arrive once healed")
            .expect("read");
        assert_eq!(&buf, b"pong");
        assert_eq!(round_trip(&mut s).await.as_deref(), Some(&b"ping"[..]));
    }
}
