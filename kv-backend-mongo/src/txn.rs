//! Running a batch's write commands: in one transaction where the
//! deployment has them, each with `maxTimeMS` where it does not.

use std::time::Duration;

use kv_core::backend::RaceBackoff;
use kv_core::{Error, Operation, Result};
use mongodb::bson::{Document, RawDocumentBuf};
use mongodb::options::TransactionOptions;
use mongodb::{ClientSession, Database};

use crate::error::{is_transient, is_unknown_commit_result, map_mongo_error, reply_error};

/// How a batch's commands reach the server.
#[derive(Debug, Clone)]
pub(crate) struct Runner {
    pub(crate) db: Database,
    /// Run batches in a transaction (replica sets and sharded clusters).
    pub(crate) transactions: bool,
    /// `maxTimeMS` of a command outside a transaction, `maxCommitTimeMS`.
    pub(crate) max_time: Duration,
    /// Transient transaction errors retried before giving up.
    pub(crate) retries: u32,
}

impl Runner {
    /// Runs one command outside any transaction, with `maxTimeMS`; a write
    /// error in an `ok: 1` reply is an error.
    pub(crate) async fn command(&self, op: Operation, command: RawDocumentBuf) -> Result<Document> {
        let reply = self.command_reply(op, command).await?;
        match reply_error(op, &reply) {
            Some(err) => Err(err),
            None => Ok(reply),
        }
    }

    /// Runs one command outside any transaction, with `maxTimeMS`, and
    /// returns its reply, write errors included.
    pub(crate) async fn command_reply(
        &self,
        op: Operation,
        mut command: RawDocumentBuf,
    ) -> Result<Document> {
        command.append("maxTimeMS", millis(self.max_time));
        self.db
            .run_raw_command(command)
            .await
            .map_err(|e| map_mongo_error(op, e))
    }

    /// Runs `commands` in order, in one transaction when the deployment
    /// has them (all or nothing; a transient error runs the whole
    /// transaction again, up to `retries` times), else one after the other,
    /// stopping at the first error. Returns each command's reply.
    pub(crate) async fn batch(
        &self,
        op: Operation,
        commands: Vec<RawDocumentBuf>,
    ) -> Result<Vec<Document>> {
        if !self.transactions {
            let mut replies = Vec::with_capacity(commands.len());
            for command in commands {
                replies.push(self.command(op, command).await?);
            }
            return Ok(replies);
        }
        let mut session = self
            .db
            .client()
            .start_session()
            .await
            .map_err(|e| map_mongo_error(op, e))?;
        let mut backoff = RaceBackoff::start();
        loop {
            match self.attempt(op, &mut session, &commands).await {
                Ok(replies) => return Ok(replies),
                Err(Failed::Transient(err)) if backoff.losses() < self.retries => {
                    drop(err);
                    // A random pause growing with each conflict lets the
                    // conflicting transaction finish.
                    backoff.lost().await;
                }
                Err(Failed::Transient(err)) => return Err(map_mongo_error(op, err)),
                Err(Failed::Final(err)) => return Err(err),
            }
        }
    }

    async fn attempt(
        &self,
        op: Operation,
        session: &mut ClientSession,
        commands: &[RawDocumentBuf],
    ) -> std::result::Result<Vec<Document>, Failed> {
        let options = TransactionOptions::builder()
            .max_commit_time(self.max_time)
            .build();
        session
            .start_transaction()
            .with_options(options)
            .await
            .map_err(|e| Failed::from_driver(op, e))?;
        let mut replies = Vec::with_capacity(commands.len());
        for command in commands {
            let sent = self
                .db
                .run_raw_command(command.clone())
                .session(&mut *session)
                .await;
            let failed = match sent {
                Ok(reply) => match reply_error(op, &reply) {
                    None => {
                        replies.push(reply);
                        continue;
                    }
                    Some(err) => Failed::Final(err),
                },
                Err(err) => Failed::from_driver(op, err),
            };
            // The server aborts a transaction after a failed statement; an
            // abort of our own makes sure, and its error changes nothing.
            let _aborted = session.abort_transaction().await;
            return Err(failed);
        }
        let mut commit = session.commit_transaction().await;
        // An unknown commit result is safe to commit again: a commit is
        // idempotent.
        let mut tries = 0;
        while let Err(err) = &commit {
            if !is_unknown_commit_result(err) || tries >= self.retries {
                break;
            }
            tries += 1;
            commit = session.commit_transaction().await;
        }
        commit.map_err(|e| Failed::from_driver(op, e))?;
        Ok(replies)
    }
}

/// Why an attempt failed.
enum Failed {
    /// Running the whole transaction again may succeed.
    Transient(mongodb::error::Error),
    /// Give up with this error.
    Final(Error),
}

impl Failed {
    fn from_driver(op: Operation, err: mongodb::error::Error) -> Self {
        if is_transient(&err) {
            Failed::Transient(err)
        } else {
            Failed::Final(map_mongo_error(op, err))
        }
    }
}

pub(crate) fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
