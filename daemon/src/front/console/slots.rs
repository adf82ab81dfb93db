//! The console's connection slots. At most [`Slots::max`] connections are served at once. When
//! all are taken, a new connection gets the slot of the one that has waited longest for a
//! request with nobody logged in on it (or whose users have been idle past
//! `auth.idle_timeout`, so the next request would log them out anyway). A connection that is
//! running a request, or has a user logged in and active, is never made to give way: a flood of
//! connections that log nobody in cannot starve the console, and cannot end an operator's
//! session either.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Running a request (or about to start its first wait).
    Busy,
    /// Waiting for a request since `since`.
    Waiting { since: Instant, logged_in: bool },
    /// Chosen to give way; it leaves at its next step.
    Leaving,
}

struct Entry {
    id: u64,
    state: State,
    leave: Arc<Notify>,
}

struct Table {
    entries: Vec<Entry>,
    next_id: u64,
}

pub struct Slots {
    max: usize,
    /// `auth.idle_timeout`: a logged-in connection quiet this long may give way.
    session_idle: Duration,
    table: Mutex<Table>,
    /// Told when a slot is freed or may now give way.
    changed: Notify,
}

impl Slots {
    pub fn new(max: usize, session_idle: Duration) -> Arc<Self> {
        Arc::new(Self {
            max,
            session_idle,
            table: Mutex::new(Table {
                entries: Vec::new(),
                next_id: 0,
            }),
            changed: Notify::new(),
        })
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        // The table is consistent after every statement; a panic elsewhere does not spoil it.
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A slot for a new connection: a free one, or one that another connection gives up. Waits
    /// while every connection is busy or has an active user.
    pub async fn admit(self: &Arc<Self>) -> Slot {
        loop {
            let recheck = {
                let mut table = self.table();
                if table.entries.len() < self.max {
                    let id = table.next_id;
                    table.next_id += 1;
                    let leave = Arc::new(Notify::new());
                    table.entries.push(Entry {
                        id,
                        state: State::Busy,
                        leave: leave.clone(),
                    });
                    return Slot {
                        slots: self.clone(),
                        id,
                        leave,
                    };
                }
                // One at a time: while one leaves, the next new connection waits for it.
                let leaving = table.entries.iter().any(|e| e.state == State::Leaving);
                if leaving {
                    None
                } else {
                    match self.victim(&table.entries, Instant::now()) {
                        Ok(victim) => {
                            let entry = &mut table.entries[victim];
                            entry.state = State::Leaving;
                            entry.leave.notify_one();
                            None
                        }
                        Err(next) => next,
                    }
                }
            };
            match recheck {
                Some(at) => {
                    tokio::select! {
                        () = self.changed.notified() => {}
                        () = tokio::time::sleep_until(at.into()) => {}
                    }
                }
                None => self.changed.notified().await,
            }
        }
    }

    /// The connection to give way: waiting for a request with nobody logged in (or only users
    /// idle past `auth.idle_timeout`), the one that has waited longest. Otherwise, when the
    /// first logged-in connection's users will have been idle that long, if any.
    fn victim(&self, entries: &[Entry], now: Instant) -> Result<usize, Option<Instant>> {
        let mut next = None::<Instant>;
        let mut best = None::<(usize, Instant)>;
        for (i, e) in entries.iter().enumerate() {
            let State::Waiting { since, logged_in } = e.state else {
                continue;
            };
            let from = if logged_in {
                since + self.session_idle
            } else {
                since
            };
            if from > now {
                next = Some(next.map_or(from, |n| n.min(from)));
            } else if best.is_none_or(|(_, b)| since < b) {
                best = Some((i, since));
            }
        }
        best.map(|(i, _)| i).ok_or(next)
    }

    fn set(&self, id: u64, state: State) -> bool {
        let mut table = self.table();
        let Some(entry) = table.entries.iter_mut().find(|e| e.id == id) else {
            return false;
        };
        if entry.state == State::Leaving {
            return false;
        }
        entry.state = state;
        true
    }
}

/// One connection's slot; dropping it frees the slot.
pub struct Slot {
    slots: Arc<Slots>,
    id: u64,
    leave: Arc<Notify>,
}

impl Slot {
    /// The connection waits for a request from now on.
    pub fn waiting(&self, logged_in: bool) {
        let since = Instant::now();
        if self.slots.set(self.id, State::Waiting { since, logged_in }) {
            self.slots.changed.notify_one();
        }
    }

    /// The connection runs a request. `false` if it was chosen to give way meanwhile: it must
    /// close instead.
    pub fn busy(&self) -> bool {
        self.slots.set(self.id, State::Busy)
    }

    /// Completes when the connection must give way to a new one.
    pub async fn must_leave(&self) {
        self.leave.notified().await;
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.slots.table().entries.retain(|e| e.id != self.id);
        self.slots.changed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDLE: Duration = Duration::from_secs(600);

    async fn admitted_now(slots: &Arc<Slots>) -> Option<Slot> {
        tokio::time::timeout(Duration::from_millis(100), slots.admit())
            .await
            .ok()
    }

    /// A new connection waiting for a slot.
    fn newcomer(slots: &Arc<Slots>) -> tokio::task::JoinHandle<Slot> {
        let slots = slots.clone();
        tokio::spawn(async move { slots.admit().await })
    }

    async fn told_to_leave(slot: &Slot) {
        tokio::time::timeout(Duration::from_secs(1), slot.must_leave())
            .await
            .expect("told to leave within a second");
    }

    #[tokio::test]
    async fn a_free_slot_is_given_at_once_and_freed_on_drop() {
        let slots = Slots::new(2, IDLE);
        let a = admitted_now(&slots).await.unwrap();
        let _b = admitted_now(&slots).await.unwrap();
        assert!(
            admitted_now(&slots).await.is_none(),
            "both busy: the third waits"
        );
        drop(a);
        assert!(admitted_now(&slots).await.is_some());
    }

    #[tokio::test]
    async fn the_longest_waiting_connection_without_a_user_gives_way() {
        let slots = Slots::new(3, IDLE);
        let operator = admitted_now(&slots).await.unwrap();
        let first = admitted_now(&slots).await.unwrap();
        let second = admitted_now(&slots).await.unwrap();
        operator.waiting(true);
        first.waiting(false);
        tokio::time::sleep(Duration::from_millis(5)).await;
        second.waiting(false);
        let newcomer = newcomer(&slots);
        // `first` is told to leave, and refuses to start a request now.
        told_to_leave(&first).await;
        assert!(!first.busy());
        assert!(second.busy(), "only one gives way");
        drop(first);
        let newcomer = tokio::time::timeout(Duration::from_secs(1), newcomer)
            .await
            .unwrap()
            .unwrap();
        // Now only the operator (logged in, active) and busy connections are left: a fourth
        // connection waits, and nobody is told to leave.
        newcomer.waiting(false);
        assert!(newcomer.busy());
        assert!(admitted_now(&slots).await.is_none());
        assert!(operator.busy(), "the operator was never chosen");
    }

    #[tokio::test]
    async fn a_session_idle_past_the_auth_timeout_may_give_way() {
        let slots = Slots::new(1, Duration::from_millis(300));
        let idle = admitted_now(&slots).await.unwrap();
        idle.waiting(true);
        assert!(
            admitted_now(&slots).await.is_none(),
            "not yet idle long enough"
        );
        // A newcomer that waits is let in once the session has been idle long enough.
        let newcomer = newcomer(&slots);
        told_to_leave(&idle).await;
        drop(idle);
        assert!(newcomer.await.is_ok());
    }
}
