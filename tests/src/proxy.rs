//! A TCP proxy a test controls: it forwards 127.0.0.1:`port` to a target port until it is
//! [cut](Proxy::cut) (every open connection is closed both ways and new ones are closed as soon
//! as they are accepted, so the peer sees a refused or reset connection), then again once it is
//! [healed](Proxy::heal). The NATS cluster rig puts one in front of every route link and every
//! client port, so a test can partition a node without touching the process.

use std::sync::{
    Arc,
    atomic::{AtomicBool, AtomicU64, Ordering},
};

use tokio::{
    net::{TcpListener, TcpStream},
    sync::watch,
    task::JoinHandle,
};

/// A forwarding listener on a free loopback port, stopped on Drop.
pub struct Proxy {
    port: u16,
    target: u16,
    state: Arc<State>,
    accept: JoinHandle<()>,
}

struct State {
    cut: AtomicBool,
    /// Bumped by every cut: each connection closes when it changes.
    epoch: watch::Sender<u64>,
    /// Connections forwarded so far (for failure messages and tests of the proxy itself).
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
            cut: AtomicBool::new(false),
            epoch: watch::Sender::new(0),
            forwarded: AtomicU64::new(0),
        });
        let accept = tokio::spawn(accept_loop(listener, target, state.clone()));
        Self {
            port,
            target,
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
        self.target
    }

    /// Close every open connection both ways, and every new one as soon as it is accepted.
    pub fn cut(&self) {
        self.state.cut.store(true, Ordering::SeqCst);
        self.state.epoch.send_modify(|e| *e += 1);
    }

    /// Forward new connections again.
    pub fn heal(&self) {
        self.state.cut.store(false, Ordering::SeqCst);
    }

    pub fn is_cut(&self) -> bool {
        self.state.cut.load(Ordering::SeqCst)
    }

    /// How many connections it has forwarded.
    pub fn forwarded(&self) -> u64 {
        self.state.forwarded.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        // Every connection task watches the epoch: a last cut closes them all.
        self.cut();
    }
}

async fn accept_loop(listener: TcpListener, target: u16, state: Arc<State>) {
    loop {
        let inbound = match listener.accept().await {
            Ok((inbound, _)) => inbound,
            Err(_) => {
                // Out of descriptors, say: back off a moment rather than spin.
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        if state.cut.load(Ordering::SeqCst) {
            // Cut: the peer sees its connection closed at once.
            drop(inbound);
            continue;
        }
        let epoch = state.epoch.subscribe();
        let state = state.clone();
        tokio::spawn(async move {
            let Ok(outbound) = TcpStream::connect(("127.0.0.1", target)).await else {
                return; // the target is down: the inbound connection closes
            };
            if state.cut.load(Ordering::SeqCst) {
                return;
            }
            state.forwarded.fetch_add(1, Ordering::SeqCst);
            forward(inbound, outbound, epoch).await;
        });
    }
}

/// Copy both ways until either side closes or the proxy is cut; then both sockets close.
async fn forward(mut inbound: TcpStream, mut outbound: TcpStream, mut epoch: watch::Receiver<u64>) {
    let _ = inbound.set_nodelay(true);
    let _ = outbound.set_nodelay(true);
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
        _ = epoch.changed() => {}
    }
    // Dropping with unread data or SO_LINGER unset closes with FIN; either way the peers see
    // their connection end, as when a link goes down and a keepalive notices.
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
}
