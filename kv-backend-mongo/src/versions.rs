//! Versions, transactions and counters on MongoDB. A document's version is
//! its `r`, a new ObjectId with every write (see [`crate::doc`]).
//!
//! - `write_if` is one single-document write whose filter holds the
//!   condition (atomic on every deployment, a standalone server too).
//! - `transact` is one multi-document transaction (replica sets and
//!   sharded clusters): every checked document is first written (its lock
//!   field incremented, or an expired placeholder inserted where there is
//!   none), so that a concurrent writer of a checked key conflicts with the
//!   transaction instead of slipping past its snapshot; then the checks
//!   are read and decided, then the writes, or an abort. A transient error
//!   (a write conflict) runs the whole transaction again.
//! - `increment` reads the counter and writes the sum conditioned on the
//!   version it read, again after a lost race: MongoDB's `$inc` works on
//!   numbers, and a kv counter is the decimal text in `v` that every
//!   client reads (and `set` may have written).

use std::collections::HashMap;

use bytes::Bytes;
use kv_core::backend::stamp::now_millis;
use kv_core::backend::{RaceBackoff, counter, split_writes};
use kv_core::{
    Condition, Entry, Error, ErrorKind, Key, Operation, Result, SetOptions, Transaction,
    TxnOutcome, Version, Versioned,
};
use mongodb::ClientSession;
use mongodb::bson::spec::BinarySubtype;
use mongodb::bson::{Binary, DateTime, Document, RawDocumentBuf, doc};
use mongodb::options::TransactionOptions;

use crate::doc::{self, EXPIRES, LOCK, VALUE, VERSION};
use crate::error::{
    BACKEND, is_transient, is_unknown_commit_result, map_mongo_error, reply_error, reply_failure,
};
use crate::store::{MongoStore, encode_error};

/// How many times an increment reads and writes again after losing a race.
const INCREMENT_ATTEMPTS: usize = 64;

/// Why one attempt of a transaction failed.
enum Failed {
    /// Running the whole transaction again may succeed.
    Transient,
    /// Give up with this error.
    Final(Error),
}

impl MongoStore {
    pub(crate) async fn read_versioned(&self, keys: &[Key]) -> Result<Vec<Option<Versioned>>> {
        let op = Operation::BatchGetVersioned;
        self.validator.versioned_keys(op, keys)?;
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let distinct = self.validator.distinct_keys(op, keys)?;
        let found = self
            .find_live(
                op,
                &distinct,
                doc! {VALUE: 1, VERSION: 1},
                |key, current, _| {
                    Ok(Versioned {
                        value: doc::value_of(op, key, current)?,
                        version: doc::version_of(current),
                    })
                },
            )
            .await?;
        Ok(keys
            .iter()
            .map(|k| found.get(k.as_str()).cloned())
            .collect())
    }

    pub(crate) async fn write_if_doc(
        &self,
        key: &Key,
        condition: Condition,
        new: Option<Bytes>,
        options: SetOptions,
    ) -> Result<bool> {
        let op = Operation::WriteIf;
        let ttl = self.validator.write_if(key, new.as_deref(), options)?;
        let now = now_millis();
        let mut q = doc::live_key(key, now);
        match &condition {
            Condition::Version(v) => match doc::at_version(v) {
                Some(at) => {
                    q.insert(VERSION, at);
                }
                None => return Ok(false),
            },
            Condition::Present => {}
            Condition::Absent => {
                return match new {
                    // Insert, or replace an expired document; a live one
                    // makes the upsert's insert fail on the _id.
                    Some(value) => {
                        let q = doc! {"_id": key.as_str(), EXPIRES: doc::expired(now)};
                        let stored = doc::stored(key.as_str(), &value, ttl, now);
                        Ok(self.update_one(op, q, stored, true).await? == Some(1))
                    }
                    None => Ok(self.find_live_one(op, key).await?.is_none()),
                };
            }
        }
        match new {
            Some(value) => {
                let stored = doc::stored(key.as_str(), &value, ttl, now);
                Ok(self.update_one(op, q, stored, false).await? == Some(1))
            }
            None => {
                let statement = doc::delete(q).map_err(|e| encode_error(op, e))?;
                let command =
                    doc::command("delete", self.collection_name(), "deletes", vec![statement]);
                let reply = self.runner.command(op, command).await?;
                Ok(doc::count(&reply) == 1)
            }
        }
    }

    /// The live document of `key` with its `v`, `e` and `r`.
    async fn find_live_one(&self, op: Operation, key: &Key) -> Result<Option<RawDocumentBuf>> {
        self.coll
            .find_one(doc::live_key(key, now_millis()))
            .projection(doc! {VALUE: 1, EXPIRES: 1, VERSION: 1})
            .max_time(self.runner.max_time)
            .await
            .map_err(|e| map_mongo_error(op, e))
    }

    pub(crate) async fn transact_docs(&self, txn: &Transaction) -> Result<TxnOutcome> {
        let op = Operation::Transact;
        let (checks, writes) = self.validator.transaction(txn)?;
        if txn.is_empty() {
            return Ok(TxnOutcome::Committed);
        }
        let (puts, deletes) = split_writes(&writes);
        let puts: Vec<&Entry> = puts.iter().collect();
        let mut checked: Vec<&Key> = checks.iter().map(|c| &c.key).collect();
        checked.sort_unstable();
        checked.dedup();
        let mut session = self
            .client
            .start_session()
            .await
            .map_err(|e| map_mongo_error(op, e))?;
        let mut backoff = RaceBackoff::start();
        loop {
            match self
                .attempt(&mut session, checks, &checked, &puts, &deletes)
                .await
            {
                Ok(outcome) => return Ok(outcome),
                Err(Failed::Transient) if backoff.losses() < self.runner.retries => {
                    // A random pause growing with each conflict lets the
                    // conflicting transaction finish.
                    backoff.lost().await;
                }
                Err(Failed::Transient) => {
                    return Err(Error::new(ErrorKind::Backend, BACKEND, op)
                        .with_temporary(true)
                        .with_message(format!(
                            "the transaction met a write conflict on each of {} attempts",
                            self.runner.retries + 1
                        )));
                }
                Err(Failed::Final(err)) => return Err(err),
            }
        }
    }

    async fn attempt(
        &self,
        session: &mut ClientSession,
        checks: &[kv_core::Check],
        checked: &[&Key],
        puts: &[&Entry],
        deletes: &[&Key],
    ) -> std::result::Result<TxnOutcome, Failed> {
        let op = Operation::Transact;
        let driver = |e: mongodb::error::Error| {
            if is_transient(&e) {
                Failed::Transient
            } else {
                Failed::Final(map_mongo_error(op, e))
            }
        };
        let options = TransactionOptions::builder()
            .max_commit_time(self.runner.max_time)
            .build();
        session
            .start_transaction()
            .with_options(options)
            .await
            .map_err(driver)?;
        let result = self.inside(session, checks, checked, puts, deletes).await;
        match result {
            Ok(outcome) if outcome.is_committed() => {
                let mut commit = session.commit_transaction().await;
                // An unknown commit result is safe to commit again.
                let mut tries = 0;
                while let Err(err) = &commit {
                    if !is_unknown_commit_result(err) || tries >= self.runner.retries {
                        break;
                    }
                    tries += 1;
                    commit = session.commit_transaction().await;
                }
                commit.map_err(driver)?;
                Ok(outcome)
            }
            other => {
                // The server aborts after a failed statement; an abort of
                // our own makes sure, and its error changes nothing.
                let _aborted = session.abort_transaction().await;
                other
            }
        }
    }

    /// The statements of one attempt, inside its transaction.
    async fn inside(
        &self,
        session: &mut ClientSession,
        checks: &[kv_core::Check],
        checked: &[&Key],
        puts: &[&Entry],
        deletes: &[&Key],
    ) -> std::result::Result<TxnOutcome, Failed> {
        let op = Operation::Transact;
        let now = now_millis();
        if !checked.is_empty() {
            let statements = checked
                .iter()
                .map(|key| lock_statement(key))
                .collect::<Result<Vec<_>>>()
                .map_err(Failed::Final)?;
            let command = doc::command("update", self.collection_name(), "updates", statements);
            self.run(session, command).await?;
        }
        let mut cursor = self
            .coll
            .find(doc! {"_id": {"$in": doc::key_array(checked.iter().copied())}})
            .projection(doc! {EXPIRES: 1, VERSION: 1})
            .session(&mut *session)
            .await
            .map_err(|e| transient_or(op, e))?;
        let mut current: HashMap<String, Version> = HashMap::new();
        while cursor
            .advance(&mut *session)
            .await
            .map_err(|e| transient_or(op, e))?
        {
            let found = cursor.current();
            if doc::is_live(found, now) {
                let key = doc::id_of(op, found).map_err(Failed::Final)?;
                current.insert(key.into_string(), doc::version_of(found));
            }
        }
        drop(cursor);
        let outcome =
            TxnOutcome::evaluate(checks, checks.iter().map(|c| current.get(c.key.as_str())));
        if !outcome.is_committed() {
            return Ok(outcome);
        }
        let mut commands = self.update_commands(puts, now);
        commands.extend(
            self.delete_commands(op, deletes, None)
                .map_err(Failed::Final)?,
        );
        for command in commands {
            self.run(session, command).await?;
        }
        Ok(outcome)
    }

    /// Runs one write command in the session's transaction.
    async fn run(
        &self,
        session: &mut ClientSession,
        command: RawDocumentBuf,
    ) -> std::result::Result<(), Failed> {
        let op = Operation::Transact;
        let reply = self
            .runner
            .db
            .run_raw_command(command)
            .session(&mut *session)
            .await
            .map_err(|e| transient_or(op, e))?;
        match reply_failure(&reply) {
            None => Ok(()),
            Some((112 | 251, _)) => Err(Failed::Transient),
            Some(_) => Err(Failed::Final(
                reply_error(op, &reply)
                    .unwrap_or_else(|| Error::new(ErrorKind::Backend, BACKEND, op)),
            )),
        }
    }

    pub(crate) async fn increment_doc(
        &self,
        key: &Key,
        delta: i64,
        options: SetOptions,
    ) -> Result<i64> {
        let op = Operation::Increment;
        let ttl = self.validator.increment(key, options)?;
        let mut backoff = RaceBackoff::start();
        for attempt in 0..INCREMENT_ATTEMPTS {
            if attempt > 0 {
                // A lost race: let the contenders spread out.
                backoff.lost().await;
            }
            let found = self
                .coll
                .find_one(doc! {"_id": key.as_str()})
                .projection(doc! {VALUE: 1, EXPIRES: 1, VERSION: 1})
                .max_time(self.runner.max_time)
                .await
                .map_err(|e| map_mongo_error(op, e))?;
            let now = now_millis();
            let live = found.as_ref().filter(|d| doc::is_live(d, now));
            let (next, keep, q, upsert) = match live {
                Some(d) => {
                    let value = doc::value_of(op, key.as_str(), d)
                        .map_err(|_| self.validator.not_a_counter(key))?;
                    let next = self.validator.add_to_counter(key, Some(&value), delta)?;
                    let left = doc::ttl_of(op, key.as_str(), d, now)?;
                    let mut q = doc! {"_id": key.as_str()};
                    if let Some(at) = doc::at_version(&doc::version_of(d)) {
                        q.insert(VERSION, at);
                    }
                    (next, left, q, false)
                }
                None => {
                    let next = self.validator.add_to_counter(key, None, delta)?;
                    let q = doc! {"_id": key.as_str(), EXPIRES: doc::expired(now)};
                    (next, ttl, q, true)
                }
            };
            let stored = doc::stored(key.as_str(), &counter::encode(next), keep, now);
            if self.update_one(op, q, stored, upsert).await? == Some(1) {
                return Ok(next);
            }
        }
        Err(Error::new(ErrorKind::Backend, BACKEND, op)
            .with_key(key.as_str())
            .with_temporary(true)
            .with_message(format!(
                "the counter changed under every one of {INCREMENT_ATTEMPTS} attempts; try again"
            )))
    }
}

/// `{q: {_id}, u: {$inc: {l: 1}, $setOnInsert: {v: <empty>, e: <epoch>}},
/// upsert: true}`: a write to the document of a checked key that changes
/// neither its value nor its version, or an expired placeholder where
/// there is no document.
fn lock_statement(key: &Key) -> Result<RawDocumentBuf> {
    let statement: Document = doc! {
        "q": {"_id": key.as_str()},
        "u": {
            "$inc": {LOCK: 1},
            "$setOnInsert": {
                VALUE: Binary { subtype: BinarySubtype::Generic, bytes: Vec::new() },
                EXPIRES: DateTime::from_millis(0),
            },
        },
        "upsert": true,
    };
    RawDocumentBuf::from_document(&statement).map_err(|e| encode_error(Operation::Transact, e))
}

fn transient_or(op: Operation, err: mongodb::error::Error) -> Failed {
    if is_transient(&err) {
        Failed::Transient
    } else {
        Failed::Final(map_mongo_error(op, err))
    }
}
