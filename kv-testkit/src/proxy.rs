//! A fault-injecting TCP proxy: put it between a store and its server and
//! break the connection on purpose.
//!
//! [`FaultProxy::start`] listens on a free loopback port and forwards every
//! connection to the target. From the test it can then:
//!
//! - [`cut_after`](FaultProxy::cut_after) a number of client bytes: the
//!   proxy forwards exactly that many more bytes from clients to the server
//!   (counted over all connections) and then closes the connection that
//!   carried the last of them, in both directions: a request cut in the
//!   middle, or, when the budget covers it whole, a request the server got
//!   but whose answer is lost;
//! - [`cut_next_answer`](FaultProxy::cut_next_answer) (or
//!   [`cut_answer_after`](FaultProxy::cut_answer_after) some client bytes):
//!   close the connection of the next request instead of forwarding its
//!   answer (the request arrived whole; its answer is lost);
//! - [`stall`](FaultProxy::stall) every connection: nothing is forwarded
//!   either way and nothing is closed, until [`resume`](FaultProxy::resume);
//! - [`delay`](FaultProxy::delay) every chunk it forwards;
//! - [`refuse`](FaultProxy::refuse) new connections (accepted and closed at
//!   once, before a byte is forwarded);
//! - [`drop_connections`](FaultProxy::drop_connections) that are open now.
//!
//! The proxy itself is deterministic; tests draw their byte budgets from a
//! seeded generator ([`seed`]) so a failure replays with the same
//! `KV_TEST_SEED`.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let Some(redis) = kv_testkit::redis().await else { return Ok(()) };
//! let proxy = kv_testkit::FaultProxy::start(redis.url()).await?;
//! let url = format!("redis://{}", proxy.addr()); // connect the store here
//! proxy.cut_after(20); // the next request is cut after 20 bytes
//! # let _ = url;
//! # Ok(()) }
//! ```

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

/// The environment variable that replays a seeded fault test.
pub const SEED_ENV: &str = "KV_TEST_SEED";

/// The seed for a test's random faults: `KV_TEST_SEED` when set, else a new
/// one from the clock. Prints it with the line that replays it.
pub fn seed() -> u64 {
    let seed = std::env::var(SEED_ENV)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            now.as_nanos() as u64 ^ u64::from(std::process::id())
        });
    eprintln!("fault seed {seed} (replay with {SEED_ENV}={seed})");
    seed
}

/// A loopback address where nothing listens (a port just bound and
/// released): connecting there is refused.
///
/// # Panics
///
/// When no loopback port can be bound at all.
pub fn closed_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap_or_else(|e| panic!("cannot bind a loopback port: {e}"));
    listener
        .local_addr()
        .unwrap_or_else(|e| panic!("cannot read a bound port: {e}"))
}

/// A TCP proxy on loopback that forwards to one server and injects faults
/// when told. Stops when dropped. See the [module docs](self).
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

#[derive(Default)]
struct Shared {
    /// Client bytes still to forward before the next cut; `None` = no cut.
    budget: Mutex<Option<u64>>,
    /// Client bytes to forward before the connection carrying the next one
    /// is doomed: its next answer is not forwarded but cut.
    answer_budget: Mutex<Option<u64>>,
    stalled: StallFlag,
    delay: Mutex<Duration>,
    refuse: AtomicBool,
    /// Wakes every connection task to close its connection.
    drop_all: Notify,
    cuts: AtomicU64,
    accepted: AtomicU64,
    client_bytes: AtomicU64,
}

struct StallFlag(watch::Sender<bool>);

impl Default for StallFlag {
    fn default() -> Self {
        Self(watch::channel(false).0)
    }
}

impl FaultProxy {
    /// Starts a proxy to `target`: a `host:port`, or a URL whose authority
    /// is one (`redis://127.0.0.1:6379/0`, `postgres://u@127.0.0.1:5432/db`;
    /// user info is ignored). Needs a Tokio runtime.
    ///
    /// # Errors
    ///
    /// The target cannot be parsed, or no loopback port can be bound.
    pub async fn start(target: &str) -> io::Result<FaultProxy> {
        let target = authority(target).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("no host:port in {target:?}"),
            )
        })?;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::default());
        let accept = tokio::spawn(accept_loop(listener, target, shared.clone()));
        Ok(FaultProxy {
            addr,
            shared,
            accept,
        })
    }

    /// The proxy's address (`127.0.0.1:port`): point the store here.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `url` with its `host:port` replaced by the proxy's address (the
    /// first one of a list), so a store built from it connects through the
    /// proxy: `redis://127.0.0.1:6379/0` becomes `redis://127.0.0.1:<proxy>/0`.
    /// A URL without a `host:port` comes back unchanged.
    pub fn url_for(&self, url: &str) -> String {
        match authority(url) {
            Some(target) => url.replacen(&target, &self.addr.to_string(), 1),
            None => url.to_owned(),
        }
    }

    /// Forwards `client_bytes` more bytes from clients to the server, then
    /// closes the connection that carried the last one (0 = the next byte
    /// any client sends closes its connection). Replaces an earlier budget.
    pub fn cut_after(&self, client_bytes: u64) {
        *lock(&self.shared.budget) = Some(client_bytes);
    }

    /// Closes the connection that carries the next request (the next
    /// client bytes) when its answer comes, without forwarding it: the
    /// server got the whole request (and may have applied it) but the
    /// client never sees the answer.
    pub fn cut_next_answer(&self) {
        self.cut_answer_after(0);
    }

    /// Like [`cut_next_answer`](Self::cut_next_answer) for the request
    /// carrying the client byte after the next `client_bytes`: requests
    /// before it (a pool's liveness ping) pass.
    pub fn cut_answer_after(&self, client_bytes: u64) {
        *lock(&self.shared.answer_budget) = Some(client_bytes);
    }

    /// Cancels a pending [`cut_after`](Self::cut_after) or
    /// [`cut_next_answer`](Self::cut_next_answer); returns whether one was
    /// still pending (no cut happened since it was armed).
    pub fn disarm(&self) -> bool {
        let budget = lock(&self.shared.budget).take().is_some();
        let answer = lock(&self.shared.answer_budget).take().is_some();
        budget || answer
    }

    /// Stops forwarding on every connection, open and new, without closing
    /// any, until [`resume`](Self::resume).
    pub fn stall(&self) {
        self.shared.stalled.0.send_replace(true);
    }

    /// Forwards again after a [`stall`](Self::stall).
    pub fn resume(&self) {
        self.shared.stalled.0.send_replace(false);
    }

    /// Waits this long before forwarding each chunk from a client
    /// (`Duration::ZERO` = no delay).
    pub fn delay(&self, delay: Duration) {
        *lock(&self.shared.delay) = delay;
    }

    /// While `true`, new connections are closed as soon as they are
    /// accepted, before anything is forwarded.
    pub fn refuse(&self, refuse: bool) {
        self.shared.refuse.store(refuse, Ordering::SeqCst);
    }

    /// Closes every connection open now (new ones are served).
    pub fn drop_connections(&self) {
        self.shared.drop_all.notify_waiters();
    }

    /// Connections cut by [`cut_after`](Self::cut_after) so far.
    pub fn cuts(&self) -> u64 {
        self.shared.cuts.load(Ordering::SeqCst)
    }

    /// Connections accepted so far (refused ones included).
    pub fn accepted(&self) -> u64 {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// Bytes forwarded from clients to the server so far.
    pub fn client_bytes(&self) -> u64 {
        self.shared.client_bytes.load(Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.shared.drop_all.notify_waiters();
    }
}

impl fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultProxy")
            .field("addr", &self.addr)
            .field("cuts", &self.cuts())
            .field("accepted", &self.accepted())
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The proxy's locks guard plain values; a panic elsewhere cannot leave
    // them half-updated.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `host:port` of a URL or of a bare `host:port`.
fn authority(target: &str) -> Option<String> {
    let rest = target.split_once("://").map_or(target, |(_, rest)| rest);
    let host = rest.split(['/', '?']).next()?;
    let host = host.rsplit('@').next()?;
    // A list of hosts (etcd, MongoDB): the first.
    let host = host.split(',').next()?;
    host.contains(':').then(|| host.to_owned())
}

async fn accept_loop(listener: TcpListener, target: String, shared: Arc<Shared>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        shared.accepted.fetch_add(1, Ordering::SeqCst);
        if shared.refuse.load(Ordering::SeqCst) {
            drop(client);
            continue;
        }
        tokio::spawn(serve(client, target.clone(), shared.clone()));
    }
}

/// Forwards one connection until either side closes, a cut, or
/// [`FaultProxy::drop_connections`].
async fn serve(client: TcpStream, target: String, shared: Arc<Shared>) {
    let dropped = shared.drop_all.notified();
    tokio::pin!(dropped);
    dropped.as_mut().enable();
    let Ok(server) = TcpStream::connect(&target).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    // Set when this connection carried the request whose answer is cut.
    let doomed = AtomicBool::new(false);
    tokio::select! {
        () = upstream(client_read, server_write, &shared, &doomed) => {}
        () = downstream(server_read, client_write, &shared, &doomed) => {}
        () = dropped => {}
    }
    // Both halves of both sockets drop here: the connection is closed.
}

/// Client to server, where cuts, stalls and delays happen.
async fn upstream(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    shared: &Shared,
    doomed: &AtomicBool,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        wait_while_stalled(shared).await;
        let delay = *lock(&shared.delay);
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        // How much of this chunk goes through, and whether the cut falls in it.
        let (send, cut) = {
            let mut budget = lock(&shared.budget);
            match *budget {
                Some(left) if left <= n as u64 => {
                    *budget = None;
                    // `left <= n`, a usize: the cast cannot truncate.
                    (left as usize, true)
                }
                Some(left) => {
                    *budget = Some(left - n as u64);
                    (n, false)
                }
                None => (n, false),
            }
        };
        {
            let mut answer = lock(&shared.answer_budget);
            match *answer {
                Some(left) if left < send as u64 => {
                    *answer = None;
                    doomed.store(true, Ordering::SeqCst);
                }
                Some(left) => *answer = Some(left - send as u64),
                None => {}
            }
        }
        if to.write_all(&buf[..send]).await.is_err() {
            return;
        }
        shared.client_bytes.fetch_add(send as u64, Ordering::SeqCst);
        if cut {
            let _ = to.flush().await;
            shared.cuts.fetch_add(1, Ordering::SeqCst);
            return;
        }
    }
}

/// Server to client: stalls and answer cuts.
async fn downstream(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    shared: &Shared,
    doomed: &AtomicBool,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        wait_while_stalled(shared).await;
        if doomed.load(Ordering::SeqCst) {
            shared.cuts.fetch_add(1, Ordering::SeqCst);
            return;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

async fn wait_while_stalled(shared: &Shared) {
    let mut stalled = shared.stalled.0.subscribe();
    // The sender lives as long as `shared`: waiting cannot fail.
    let _ = stalled.wait_for(|s| !*s).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorities_of_urls_and_bare_addresses() {
        assert_eq!(
            authority("redis://127.0.0.1:6379/0").as_deref(),
            Some("127.0.0.1:6379")
        );
        assert_eq!(
            authority("postgres://u:p@127.0.0.1:5432/db?sslmode=disable").as_deref(),
            Some("127.0.0.1:5432")
        );
        assert_eq!(
            authority("127.0.0.1:2379,127.0.0.1:2380").as_deref(),
            Some("127.0.0.1:2379")
        );
        assert_eq!(authority("mongodb://host/db"), None);
    }

    #[tokio::test]
    async fn cuts_after_exactly_the_budget_and_counts() {
        let echo = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let target = echo
            .local_addr()
            .unwrap_or_else(|e| panic!("{e}"))
            .to_string();
        let received = tokio::spawn(async move {
            let (mut s, _) = echo.accept().await.unwrap_or_else(|e| panic!("{e}"));
            let mut got = Vec::new();
            let _ = s.read_to_end(&mut got).await;
            got
        });
        let proxy = FaultProxy::start(&target)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        proxy.cut_after(5);
        let mut c = TcpStream::connect(proxy.addr())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        c.write_all(b"0123456789")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let got = received.await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(got, b"01234");
        assert_eq!(proxy.cuts(), 1);
        assert_eq!(proxy.client_bytes(), 5);
        assert!(!proxy.disarm(), "the budget was spent");
        // The client sees the connection closed.
        let mut rest = Vec::new();
        let n = c.read_to_end(&mut rest).await.unwrap_or(0);
        assert_eq!(n, 0);
    }
}
