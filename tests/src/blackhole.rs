//! A server that accepts connections and never answers: a hung database, a Secrets Manager
//! endpoint behind a broken proxy. Connecting works; every read then waits forever.

use std::net::SocketAddr;

use tokio::net::TcpListener;
use tokio::sync::watch;

pub struct Blackhole {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
}

impl Blackhole {
    /// Listens on 127.0.0.1 (a free port); stops accepting, and closes what it holds, on drop.
    pub async fn start() -> std::io::Result<Blackhole> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let (stop, mut stopped) = watch::channel(false);
        tokio::spawn(async move {
            // Held, never read from or written to, until the blackhole is dropped.
            let mut held = Vec::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok((socket, _)) => held.push(socket),
                        Err(_) => break,
                    },
                    _ = stopped.changed() => break,
                }
            }
        });
        Ok(Blackhole { addr, stop })
    }

    /// `127.0.0.1:PORT`.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    /// A Postgres URL that reaches the blackhole (TLS off: the start-up packet is the first
    /// thing that waits for an answer).
    pub fn postgres_url(&self) -> String {
        format!(
            "postgres://app:secret@{}/app?sslmode=disable",
            self.address()
        )
    }

    /// An `http://` endpoint URL (for the AWS SDK's `AWS_ENDPOINT_URL`).
    pub fn http_url(&self) -> String {
        format!("http://{}", self.address())
    }
}

impl Drop for Blackhole {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}
