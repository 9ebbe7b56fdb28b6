//! The live agent streams: one per host at a time, so the controller can push tasks to an
//! agent and cut its stream when its certificate is revoked or the controller stops.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use proto::v1::ControllerMessage;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub type Outbound = mpsc::Sender<Result<ControllerMessage, tonic::Status>>;

struct Live {
    id: u64,
    cancel: CancellationToken,
    tx: Outbound,
}

/// Registry of live sessions by host.
#[derive(Default)]
pub struct Sessions {
    inner: Mutex<HashMap<String, Live>>,
    next: AtomicU64,
}

impl Sessions {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Live>> {
        // A panic while holding this lock leaves the map consistent (every operation is one
        // insert or remove), so a poisoned lock is safe to keep using.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a new session for `host`; an older one for the same host is cut, since only
    /// the newest connection of an agent is the real one.
    pub fn register(&self, host: &str, tx: Outbound, parent: &CancellationToken) -> (u64, CancellationToken) {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let cancel = parent.child_token();
        let old = self.map().insert(host.to_string(), Live { id, cancel: cancel.clone(), tx });
        if let Some(old) = old {
            old.cancel.cancel();
        }
        (id, cancel)
    }

    /// Forgets session `id` of `host` if it is still the registered one.
    pub fn unregister(&self, host: &str, id: u64) {
        let mut m = self.map();
        if m.get(host).is_some_and(|l| l.id == id) {
            m.remove(host);
        }
    }

    /// Ends `host`'s live stream with `status`; false if it had none.
    pub fn cut(&self, host: &str, status: tonic::Status) -> bool {
        let live = self.map().remove(host);
        match live {
            Some(l) => {
                let _ = l.tx.try_send(Err(status));
                l.cancel.cancel();
                true
            }
            None => false,
        }
    }

    /// Sends a message on `host`'s live stream; false if it has none or it is full (the
    /// message is then delivered when the agent next connects).
    pub fn send(&self, host: &str, msg: ControllerMessage) -> bool {
        let tx = self.map().get(host).map(|l| l.tx.clone());
        tx.is_some_and(|tx| tx.try_send(Ok(msg)).is_ok())
    }

    pub fn is_live(&self, host: &str) -> bool {
        self.map().contains_key(host)
    }

    pub fn len(&self) -> usize {
        self.map().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
