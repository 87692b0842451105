//! A todo list over HTTP, stored through kv. The store is whatever
//! [`kv::connect`] makes of the URL it is given, so the same code runs on
//! memory, Redis, PostgreSQL, RocksDB, etcd or MongoDB.
//!
//! | method | path | body | answer |
//! |---|---|---|---|
//! | `GET` | `/health` | | `200 {"backend", "latency_ms"}` |
//! | `POST` | `/todos` | `{"title"}` | `201` the new todo |
//! | `GET` | `/todos?limit=&after=` | | `200 {"todos", "next"}`, oldest first |
//! | `GET` | `/todos/{id}` | | `200` the todo, or `404` |
//! | `PATCH` | `/todos/{id}` | `{"title"?, "done"?}` | `200` the todo, `404`, or `409` after repeated conflicts |
//! | `DELETE` | `/todos/{id}` | | `204`, or `404` |
//!
//! Errors are `{"error": "..."}`; a backend that is down or slow is `503`
//! with `Retry-After`, so a client knows to come back.

mod error;
mod todo;

use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use kv::{Kv, ListOptions, RetryLayer, TimeoutLayer};
use serde::{Deserialize, Serialize};

pub use error::ApiError;
pub use todo::{MAX_TITLE, Todo, checked_title, new_id};

/// The store every handler shares: todos under the `todos` namespace.
#[derive(Clone, Debug)]
pub struct AppState {
    todos: Kv,
}

/// Connects to `url` with the layers a service wants (temporary errors
/// retried, each call bounded in time) and builds the router.
///
/// # Errors
///
/// The connect's error: a bad URL, a backend not compiled in, a server
/// that cannot be reached.
pub async fn connect(url: &str) -> kv::Result<Router> {
    let kv = kv::connect(url)
        .await?
        .layer(TimeoutLayer::new(Duration::from_secs(5)))
        .layer(RetryLayer::new().max_retries(3));
    app(&kv)
}

/// The router over an existing client.
///
/// # Errors
///
/// None in practice: `todos` is a valid namespace name.
pub fn app(kv: &Kv) -> kv::Result<Router> {
    let state = AppState {
        todos: kv.namespace("todos")?,
    };
    Ok(Router::new()
        .route("/health", get(health))
        .route("/todos", get(list).post(create))
        .route("/todos/{id}", get(read).patch(update).delete(remove))
        .with_state(state))
}

#[derive(Serialize)]
struct HealthBody {
    backend: &'static str,
    latency_ms: f64,
}

async fn health(State(state): State<AppState>) -> Result<Json<HealthBody>, ApiError> {
    let health = state.todos.health().await?;
    Ok(Json(HealthBody {
        backend: health.backend,
        latency_ms: health.latency.as_secs_f64() * 1e3,
    }))
}

/// The body of `POST /todos`.
#[derive(Debug, Deserialize)]
pub struct NewTodo {
    /// What to do.
    pub title: String,
}

async fn create(
    State(state): State<AppState>,
    Json(body): Json<NewTodo>,
) -> Result<(StatusCode, Json<Todo>), ApiError> {
    let todo = Todo::new(new_id()?, body.title)?;
    // Only if the id is free: a colliding id never overwrites a todo.
    if !state
        .todos
        .compare_and_swap(&todo.id, None, Some(&todo))
        .await?
    {
        return Err(ApiError::conflict("a todo with this id exists; try again"));
    }
    Ok((StatusCode::CREATED, Json(todo)))
}

/// `GET /todos` paging: at most `limit` todos after the id `after`.
#[derive(Debug, Deserialize)]
pub struct Paging {
    limit: Option<usize>,
    after: Option<String>,
}

/// One page of todos, and the `after` of the next page if there is one.
#[derive(Debug, Serialize, Deserialize)]
pub struct TodoPage {
    /// The todos, oldest first.
    pub todos: Vec<Todo>,
    /// Pass as `after` for the next page.
    pub next: Option<String>,
}

async fn list(
    State(state): State<AppState>,
    Query(paging): Query<Paging>,
) -> Result<Json<TodoPage>, ApiError> {
    let limit = paging.limit.unwrap_or(50).clamp(1, 500);
    let mut options = ListOptions::default().limit(limit);
    if let Some(after) = paging.after {
        options = options.start_after(kv::Key::new(after)?);
    }
    // One list, then one batch read: two round trips for the whole page.
    let page = state.todos.list("", options).await?;
    let ids: Vec<&str> = page.keys.iter().map(|k| k.as_str()).collect();
    let found: Vec<Option<Todo>> = state.todos.batch_get(&ids).await?;
    Ok(Json(TodoPage {
        // A todo deleted between the two calls is skipped.
        todos: found.into_iter().flatten().collect(),
        next: page.next.map(|k| k.as_str().to_owned()),
    }))
}

async fn read(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Todo>, ApiError> {
    let todo: Option<Todo> = state.todos.get(&id).await?;
    todo.map(Json).ok_or_else(ApiError::not_found)
}

/// The body of `PATCH /todos/{id}`: the fields to change.
#[derive(Debug, Deserialize)]
pub struct TodoChange {
    title: Option<String>,
    done: Option<bool>,
}

/// Read, change, and write back only if nobody changed the todo meanwhile:
/// `Kv::update` checks the version it read, and on a conflict reads again
/// (a bounded number of times, with a random pause). Two requests racing
/// never lose one's change, and a todo stored by an older version (other
/// fields, other spacing) updates like any: nothing compares bytes.
async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(change): Json<TodoChange>,
) -> Result<Json<Todo>, ApiError> {
    // Checked once, before any read: the change may run more than once.
    let title = change.title.map(checked_title).transpose()?;
    let updated = state
        .todos
        .update(&id, |current: Option<Todo>| {
            current.map(|todo| todo.changed(title.clone(), change.done))
        })
        .await?;
    updated.map(Json).ok_or_else(ApiError::not_found)
}

async fn remove(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    match state.todos.delete(&id).await? {
        true => Ok(StatusCode::NO_CONTENT),
        false => Err(ApiError::not_found()),
    }
}
