//! Live changes across servers: the database tells every listening server when a run
//! changes (`NOTIFY goodseed_runs`, sent at commit by a trigger on `goodseed_runs`, see
//! [`crate::schema`]), and each store hands that to its watchers' feeds
//! ([`goodseed_store::changes`]).
//!
//! One thread per store listens, on a connection of its own (a pooled one would lose its
//! `LISTEN` when handed back). When that connection is lost it is made again, once a
//! second, and the watchers are told that changes may have been missed, as they are
//! after the first `LISTEN` (anything before it was not heard). The thread ends when the
//! store is dropped.

use std::sync::{Arc, PoisonError, Weak};
use std::time::{Duration, Instant};

use goodseed_core::{ProjectName, RunId, RunRef};
use goodseed_store::changes::ChangeFeed;
use postgres::NoTls;
use postgres::fallible_iterator::FallibleIterator;

use crate::store::Shared;

/// The channel the trigger notifies.
pub(crate) const CHANNEL: &str = "goodseed_runs";

/// How long the thread waits for a notification before looking whether its store is
/// still there.
const TICK: Duration = Duration::from_secs(1);

/// How often a quiet listening connection is asked whether it is still there.
const PROBE: Duration = Duration::from_secs(15);

/// A new feed for one watcher; starts the listening thread with the first.
pub(crate) fn watch(shared: &Arc<Shared>) -> ChangeFeed {
    let feed = ChangeFeed::new();
    shared.feeds.lock().unwrap_or_else(PoisonError::into_inner).push(feed.clone());
    shared.listening.get_or_init(|| {
        let weak = Arc::downgrade(shared);
        let mut config = shared.config.clone();
        // TCP keepalives, so a connection whose peer vanished fails rather than hangs.
        config.keepalives(true).keepalives_idle(Duration::from_secs(30));
        let spawned = std::thread::Builder::new()
            .name("goodseed-pg-listen".to_owned())
            .spawn(move || listen(&weak, &config));
        if spawned.is_err() {
            // No thread: the watchers are told nothing, and never wait for long (they
            // look on their own every so often).
            feed.lost();
        }
    });
    feed
}

/// Hands `tell` to every watcher's feed, forgetting those whose watcher is gone.
fn tell(shared: &Weak<Shared>, tell: impl Fn(&ChangeFeed)) -> bool {
    let Some(shared) = shared.upgrade() else { return false };
    let mut feeds = shared.feeds.lock().unwrap_or_else(PoisonError::into_inner);
    feeds.retain(|f| !f.abandoned());
    feeds.iter().for_each(tell);
    true
}

/// The run a notification names, `<project>/<run_id>` (projects may hold `/`, run ids
/// cannot).
pub(crate) fn run_of(payload: &str) -> Option<RunRef> {
    let (project, run_id) = payload.rsplit_once('/')?;
    Some(RunRef { project: ProjectName::parse(project).ok()?, run_id: RunId::parse(run_id).ok()? })
}

fn listen(shared: &Weak<Shared>, config: &postgres::Config) {
    loop {
        if shared.strong_count() == 0 {
            return;
        }
        let mut client = match config.connect(NoTls) {
            Ok(client) => client,
            Err(_) => {
                std::thread::sleep(TICK);
                continue;
            }
        };
        if client.batch_execute(&format!("LISTEN {CHANNEL}")).is_err() {
            std::thread::sleep(TICK);
            continue;
        }
        // Whatever changed before this LISTEN was not heard.
        if !tell(shared, ChangeFeed::lost) {
            return;
        }
        let mut probed = Instant::now();
        loop {
            // A wait ends early with nothing when the connection closed (a restart):
            // that is told apart from a quiet second by the client.
            let heard = client.notifications().timeout_iter(TICK).next();
            let alive = match heard {
                Ok(Some(n)) => match run_of(n.payload()) {
                    Some(run) => tell(shared, |f| f.changed(run.clone())),
                    None => tell(shared, ChangeFeed::lost),
                },
                Ok(None) => shared.strong_count() > 0,
                Err(_) => break,
            };
            if !alive {
                return;
            }
            if client.is_closed() {
                break;
            }
            // A connection the network dropped without a word says nothing either:
            // ask now and then.
            if probed.elapsed() >= PROBE {
                probed = Instant::now();
                if client.simple_query("").is_err() {
                    break;
                }
            }
        }
        if !tell(shared, ChangeFeed::lost) {
            return;
        }
        std::thread::sleep(TICK);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_name_runs_of_projects_with_slashes() {
        let run = run_of("team/vision/calm-otter").expect("a run");
        assert_eq!((run.project.as_str(), run.run_id.as_str()), ("team/vision", "calm-otter"));
        assert_eq!(run_of("no-slash"), None);
        assert_eq!(run_of("p/"), None);
    }
}
