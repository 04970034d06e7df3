//! A TCP proxy in front of a real server that can be told to go silent: connections stay
//! open, nothing more is delivered either way. A database that hangs in the middle of a
//! session (after the connection was opened and pooled), which `statement_timeout` cannot
//! end because the server never sees the statement. It can also sever the connections open so
//! far: each is cut at its client's next write, which is what a Lambda thawed after the
//! database dropped its idle connections sees (the pool still holds them as open).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct FreezableProxy {
    addr: SocketAddr,
    frozen: watch::Sender<bool>,
    stop: watch::Sender<bool>,
    /// Connections are numbered as accepted; those numbered below this are severed.
    accepted: Arc<AtomicU64>,
    severed_below: watch::Sender<u64>,
}

impl FreezableProxy {
    /// Forwards 127.0.0.1:PORT to `upstream` (`host:port`) until dropped.
    pub async fn start(upstream: String) -> std::io::Result<FreezableProxy> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let (frozen, _) = watch::channel(false);
        let (stop, mut stopped) = watch::channel(false);
        let (severed_below, _) = watch::channel(0u64);
        let accepted = Arc::new(AtomicU64::new(0));
        let frozen_for_accept = frozen.clone();
        let (severed_for_accept, accepted_for_accept) = (severed_below.clone(), accepted.clone());
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    accepted = listener.accept() => accepted,
                    _ = stopped.changed() => break,
                };
                let Ok((client, _)) = accepted else { break };
                let Ok(server) = TcpStream::connect(&upstream).await else {
                    continue;
                };
                let number = accepted_for_accept.fetch_add(1, Ordering::SeqCst);
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                let stop = stopped.clone();
                let sever = Some((number, severed_for_accept.subscribe()));
                tokio::spawn(pump(
                    client_read,
                    server_write,
                    frozen_for_accept.subscribe(),
                    stop.clone(),
                    sever,
                ));
                tokio::spawn(pump(
                    server_read,
                    client_write,
                    frozen_for_accept.subscribe(),
                    stop,
                    None,
                ));
            }
        });
        Ok(FreezableProxy {
            addr,
            frozen,
            stop,
            accepted,
            severed_below,
        })
    }

    /// A Postgres URL like `url` that goes through the proxy.
    pub fn postgres_url(&self, url: &str) -> String {
        let mut url = url::Url::parse(url).expect("a Postgres URL");
        url.set_host(Some("127.0.0.1")).expect("a host can be set");
        url.set_port(Some(self.addr.port()))
            .expect("a port can be set");
        url.into()
    }

    /// From now on nothing is delivered in either direction; connections stay open.
    pub fn freeze(&self) {
        self.frozen.send_replace(true);
    }

    /// Every connection open now is cut when its client next writes (the server sees it
    /// close, and so does the client, after its write); later connections work.
    pub fn sever_open_connections(&self) {
        self.severed_below
            .send_replace(self.accepted.load(Ordering::SeqCst));
    }

    /// Delivers again, what was held first.
    pub fn thaw(&self) {
        self.frozen.send_replace(false);
    }
}

impl Drop for FreezableProxy {
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}

/// Copies one direction, holding every chunk while frozen; ends when either side closes, the
/// proxy is dropped (which closes both sockets), or (client to server, `sever`: the
/// connection's number and the mark) the connection was severed.
async fn pump(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    mut frozen: watch::Receiver<bool>,
    mut stop: watch::Receiver<bool>,
    sever: Option<(u64, watch::Receiver<u64>)>,
) {
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        let n = tokio::select! {
            read = from.read(&mut chunk) => match read {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            },
            _ = stop.changed() => break,
        };
        if sever
            .as_ref()
            .is_some_and(|(number, below)| *number < *below.borrow())
        {
            break;
        }
        tokio::select! {
            thawed = frozen.wait_for(|frozen| !*frozen) => if thawed.is_err() { break },
            _ = stop.changed() => break,
        }
        if to.write_all(&chunk[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}
