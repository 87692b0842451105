//! Progress bars for long jobs: on a terminal only, and never with
//! `--quiet`.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use indicatif::{HumanBytes, ProgressBar, ProgressDrawTarget, ProgressStyle};
use kv::Progress;
use tokio::sync::watch;

/// A bar or spinner on stderr, or nothing when stderr is not a terminal
/// or `--quiet` was given.
#[derive(Debug, Clone)]
pub(crate) struct Bar(Option<ProgressBar>);

impl Bar {
    /// A bar over `total` input bytes (ETA shown) when the size is known,
    /// else a spinner counting keys.
    pub(crate) fn new(quiet: bool, total: Option<u64>) -> Self {
        if quiet || !std::io::stderr().is_terminal() {
            return Self(None);
        }
        let bar = match total {
            Some(total) => ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr())
                .with_style(style(
                    "{bar:30} {bytes}/{total_bytes} read, {msg}, ETA {eta}",
                )),
            None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr())
                .with_style(style("{spinner} {elapsed} {msg}")),
        };
        bar.enable_steady_tick(Duration::from_millis(120));
        Self(Some(bar))
    }

    /// A bar over a known running time (the bench).
    pub(crate) fn timed(quiet: bool, total: Duration) -> Self {
        if quiet || !std::io::stderr().is_terminal() {
            return Self(None);
        }
        let millis = u64::try_from(total.as_millis()).unwrap_or(u64::MAX);
        let bar = ProgressBar::with_draw_target(Some(millis), ProgressDrawTarget::stderr())
            .with_style(style("{bar:30} {msg}, ETA {eta}"));
        bar.enable_steady_tick(Duration::from_millis(120));
        Self(Some(bar))
    }

    /// Moves a timed bar to `done` and names what runs now.
    pub(crate) fn at(&self, done: Duration, what: &str) {
        if let Some(bar) = &self.0 {
            bar.set_position(u64::try_from(done.as_millis()).unwrap_or(u64::MAX));
            bar.set_message(what.to_owned());
        }
    }

    /// Whether anything is drawn.
    pub(crate) fn visible(&self) -> bool {
        self.0.is_some()
    }

    /// Shows `keys` written and `bytes` of keys and values so far, the rate,
    /// and `read` input bytes when the total is known.
    pub(crate) fn show(&self, keys: u64, bytes: u64, rate: f64, read: Option<u64>) {
        if let Some(bar) = &self.0 {
            if let Some(read) = read {
                bar.set_position(read);
            }
            bar.set_message(format!(
                "{keys} keys, {}, {rate:.0} keys/s",
                HumanBytes(bytes)
            ));
        }
    }

    /// Removes the bar (the summary line follows it).
    pub(crate) fn finish(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

fn style(template: &str) -> ProgressStyle {
    // The templates are constants of this file, checked by a unit test.
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar())
}

/// Follows a bulk writer's progress on `bar` until the load finishes
/// (`read`: input bytes consumed, for a bar with a known total).
pub(crate) async fn follow(
    bar: Bar,
    mut progress: watch::Receiver<Progress>,
    read: Option<Arc<AtomicU64>>,
) {
    if !bar.visible() {
        return;
    }
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tick.tick().await;
        let now = progress.borrow_and_update().clone();
        bar.show(
            now.keys_done,
            now.bytes_done,
            now.keys_per_sec(),
            read.as_ref().map(|r| r.load(Ordering::Relaxed)),
        );
        if now.finished {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_templates_parse() {
        for template in [
            "{bar:30} {bytes}/{total_bytes} read, {msg}, ETA {eta}",
            "{spinner} {elapsed} {msg}",
            "{bar:30} {msg}, ETA {eta}",
        ] {
            assert!(ProgressStyle::with_template(template).is_ok(), "{template}");
        }
    }

    #[test]
    fn a_bar_is_hidden_when_quiet() {
        assert!(!Bar::new(true, Some(10)).visible());
    }
}
