//! A session store with TTL: a session expires by itself, each request
//! slides its expiry forward, logout removes it. Runs on any backend with
//! TTL and versions (conditional writes).
//!
//! ```text
//! cargo run --example session_store                            # memory://
//! cargo run --example session_store --features redis -- redis://127.0.0.1:6379
//! ```

use std::time::Duration;

use kv::{Condition, Key, Kv};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Session {
    user: String,
    roles: Vec<String>,
}

/// Sessions under `sessions:`, each living `ttl` after its last use.
struct Sessions {
    kv: Kv,
    ttl: Duration,
}

impl Sessions {
    fn new(kv: &Kv, ttl: Duration) -> kv::Result<Self> {
        Ok(Self {
            kv: kv.namespace("sessions")?,
            ttl,
        })
    }

    /// Creates a session under a new random id, written only if the id is
    /// free, so a colliding id never overwrites another user's session.
    async fn login(&self, user: &str, roles: &[&str]) -> kv::Result<String> {
        let session = Session {
            user: user.to_owned(),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        };
        loop {
            let id = new_id();
            let created = self
                .kv
                .set_if_with_ttl(&id, Condition::Absent, &session, self.ttl)
                .await?;
            if created {
                return Ok(id);
            }
        }
    }

    /// The session, its expiry pushed `ttl` ahead. The write only happens
    /// while the session is still at the version read, so a session logged
    /// out (or replaced) meanwhile is not brought back.
    async fn touch(&self, id: &str) -> kv::Result<Option<Session>> {
        let Some(read) = self.kv.get_versioned::<Session>(id).await? else {
            return Ok(None); // expired, logged out, or never existed
        };
        let still_there = self
            .kv
            .set_if_with_ttl(id, Condition::Version(read.version), &read.value, self.ttl)
            .await?;
        Ok(still_there.then_some(read.value))
    }

    /// How long the session has left, read with its value in one round trip.
    async fn remaining(&self, id: &str) -> kv::Result<Option<Duration>> {
        // The namespaced client's store adds `sessions:` itself.
        let key = Key::new(id)?;
        let found = self.kv.store().batch_get_with_ttl(&[key]).await?;
        Ok(found
            .into_iter()
            .next()
            .flatten()
            .and_then(|entry| entry.ttl))
    }

    async fn logout(&self, id: &str) -> kv::Result<bool> {
        self.kv.delete(id).await
    }
}

/// 128 random bits from the operating system, as hex.
fn new_id() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the OS random source"); // fails only without one
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::main]
async fn main() -> kv::Result<()> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "memory://".to_owned());
    // Session ids are secrets: keep them out of every error's text (errors
    // end up in logs). Code can still read a key with `Error::key`.
    kv::hide_keys_in_errors(true);
    let kv = kv::connect(&url).await?;
    let caps = kv.capabilities();
    if !caps.ttl || !caps.versions {
        println!(
            "{} has no TTL or versions: sessions need both",
            kv.store().backend()
        );
        return Ok(());
    }

    let sessions = Sessions::new(&kv, Duration::from_secs(30 * 60))?;
    let id = sessions.login("ada", &["admin"]).await?;
    println!("login -> session {id}");
    println!("touch -> {:?}", sessions.touch(&id).await?);
    println!("time left -> {:?}", sessions.remaining(&id).await?);
    println!("logout -> {}", sessions.logout(&id).await?);
    println!("touch after logout -> {:?}", sessions.touch(&id).await?);

    // A short-lived session really ends: no read sees it after its TTL,
    // whatever the backend's own expiry does in the background.
    let short = Sessions::new(&kv, Duration::from_millis(300))?;
    let id = short.login("bob", &[]).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    println!(
        "a 300 ms session after 500 ms -> {:?}",
        short.touch(&id).await?
    );
    Ok(())
}
