//! One pool of upstream connections per thread: hyper runs a connection's
//! task on the runtime that opened it, so a serving thread that sends only on
//! connections it opened never wakes another thread on the path of a call.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The user agent every upstream request carries.
const USER_AGENT: &str = concat!("vbs-gateway/", env!("CARGO_PKG_VERSION"));
/// Clients one thread keeps (one per transport); a thread that met more
/// forgets the oldest, whose connections then close.
const MAX_CLIENTS_PER_THREAD: usize = 16;

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static CLIENTS: RefCell<Vec<(u64, reqwest::Client)>> = const { RefCell::new(Vec::new()) };
}

/// How every client of one transport is built.
#[derive(Clone)]
pub(crate) struct ClientSettings {
    pub(crate) connect_timeout: Duration,
    pub(crate) insecure_skip_tls_verify: bool,
    pub(crate) extra_roots: Vec<reqwest::Certificate>,
}

impl ClientSettings {
    fn build(&self) -> reqwest::Result<reqwest::Client> {
        let mut builder = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .connect_timeout(self.connect_timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            .redirect(reqwest::redirect::Policy::none())
            .tls_danger_accept_invalid_certs(self.insecure_skip_tls_verify);
        for root in &self.extra_roots {
            builder = builder.add_root_certificate(root.clone());
        }
        builder.build()
    }
}

/// A transport's HTTP clients, one per thread that sends.
pub(crate) struct ThreadPools {
    id: u64,
    settings: ClientSettings,
    /// Built first, which checks the settings; for callers off the hot path.
    shared: reqwest::Client,
}

impl std::fmt::Debug for ThreadPools {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreadPools")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl ThreadPools {
    pub(crate) fn new(settings: ClientSettings) -> reqwest::Result<ThreadPools> {
        // rustls needs one process-wide crypto provider; ring is the one we ship.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let shared = settings.build()?;
        Ok(ThreadPools {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            settings,
            shared,
        })
    }

    /// A client shared by every thread: for the rare calls (credentials).
    pub(crate) fn shared(&self) -> &reqwest::Client {
        &self.shared
    }

    /// This thread's client, made on first use.
    pub(crate) fn here(&self) -> reqwest::Client {
        CLIENTS.with(|clients| {
            let mut clients = clients.borrow_mut();
            if let Some((_, client)) = clients.iter().find(|(id, _)| *id == self.id) {
                return client.clone();
            }
            // The same settings built once already; should that ever fail,
            // the shared client still works.
            let client = self.settings.build().unwrap_or_else(|_| self.shared.clone());
            if clients.len() == MAX_CLIENTS_PER_THREAD {
                clients.remove(0);
            }
            clients.push((self.id, client.clone()));
            client
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> ClientSettings {
        ClientSettings {
            connect_timeout: Duration::from_secs(1),
            insecure_skip_tls_verify: false,
            extra_roots: Vec::new(),
        }
    }

    /// How many clients of `pools` this thread holds.
    fn held_here(pools: &ThreadPools) -> usize {
        CLIENTS.with(|c| c.borrow().iter().filter(|(id, _)| *id == pools.id).count())
    }

    #[test]
    fn each_thread_makes_its_own_client_once() {
        let pools = ThreadPools::new(settings()).expect("client");
        assert_eq!(held_here(&pools), 0);
        // A new client on every call would open new connections every time.
        let _ = pools.here();
        let _ = pools.here();
        assert_eq!(held_here(&pools), 1);
        let (before, after) = std::thread::scope(|s| {
            s.spawn(|| {
                let before = held_here(&pools);
                let _ = pools.here();
                (before, held_here(&pools))
            })
            .join()
            .expect("thread")
        });
        assert_eq!((before, after), (0, 1), "another thread makes a client of its own");
    }

    #[test]
    fn a_thread_keeps_a_bounded_number_of_clients() {
        let all: Vec<ThreadPools> = (0..MAX_CLIENTS_PER_THREAD + 3)
            .map(|_| ThreadPools::new(settings()).expect("client"))
            .collect();
        for pools in &all {
            let _ = pools.here();
        }
        assert_eq!(CLIENTS.with(|c| c.borrow().len()), MAX_CLIENTS_PER_THREAD);
        let newest = all.last().expect("pools").id;
        assert!(CLIENTS.with(|c| c.borrow().iter().any(|(id, _)| *id == newest)));
    }
}
