//! The stored todo and its ids.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::ApiError;

/// The longest title accepted, in characters.
pub const MAX_TITLE: usize = 500;

/// A todo as stored (JSON) and as answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Todo {
    /// Its key: sorts in creation order.
    pub id: String,
    /// What to do.
    pub title: String,
    /// Whether it is done.
    pub done: bool,
}

impl Todo {
    /// A new todo, not done.
    ///
    /// # Errors
    ///
    /// `422` for an empty or over-long title.
    pub fn new(id: String, title: String) -> Result<Todo, ApiError> {
        Ok(Todo {
            id,
            title: checked_title(title)?,
            done: false,
        })
    }

    /// This todo with the given fields replaced (a title checked with
    /// [`checked_title`]).
    pub fn changed(self, title: Option<String>, done: Option<bool>) -> Todo {
        Todo {
            id: self.id,
            title: title.unwrap_or(self.title),
            done: done.unwrap_or(self.done),
        }
    }
}

/// `title` trimmed, or the error for an empty or too long one.
///
/// # Errors
///
/// `400` for an empty title or one over the limit.
pub fn checked_title(title: String) -> Result<String, ApiError> {
    let trimmed = title.trim();
    if trimmed.is_empty() || trimmed.chars().count() > MAX_TITLE {
        return Err(ApiError::invalid(format!(
            "a title has 1 to {MAX_TITLE} characters"
        )));
    }
    Ok(trimmed.to_owned())
}

/// A new id that sorts after every earlier one (milliseconds since 1970,
/// then 64 random bits, in hex): listing the keys lists todos oldest first,
/// and no two requests need to agree on a counter.
///
/// # Errors
///
/// `500` when the operating system has no random source.
pub fn new_id() -> Result<String, ApiError> {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let mut random = [0u8; 8];
    getrandom::fill(&mut random)
        .map_err(|e| ApiError::internal(format!("no random source: {e}")))?;
    Ok(format!("{millis:013x}{:016x}", u64::from_be_bytes(random)))
}
