//! A role's slots: how many deliveries its [`consume`](super::consume) loop may hold at once,
//! and how many it holds now (for `/metrics` and the autoscaler's sizing).

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use tokio::sync::Semaphore;

/// `total` slots, shared by the consume loop (which takes them) and whoever reports them.
#[derive(Clone)]
pub struct Slots {
    total: usize,
    busy: Arc<AtomicUsize>,
    pub(super) permits: Arc<Semaphore>,
}

impl Slots {
    /// `total` slots (at least one).
    pub fn new(total: usize) -> Self {
        let total = total.max(1);
        Self {
            total,
            busy: Arc::new(AtomicUsize::new(0)),
            permits: Arc::new(Semaphore::new(total)),
        }
    }

    pub fn total(&self) -> usize {
        self.total
    }

    /// Deliveries being handled now (a call being fenced, dialed, rung, held or settled).
    pub fn busy(&self) -> usize {
        self.busy.load(Ordering::Relaxed)
    }

    /// Slots no handler holds. The loop's idle fetch holds the free slots' permits while it
    /// waits, so this counts handlers, not permits.
    pub fn free(&self) -> usize {
        self.total.saturating_sub(self.busy())
    }

    /// Count one handler as busy until the returned guard drops (panics included).
    pub(super) fn occupy(&self) -> Busy {
        self.busy.fetch_add(1, Ordering::Relaxed);
        Busy(self.busy.clone())
    }
}

/// One busy slot; released on drop.
pub(super) struct Busy(Arc<AtomicUsize>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::Slots;

    #[test]
    fn busy_slots_are_counted_until_their_guard_drops() {
        let slots = Slots::new(3);
        assert_eq!((slots.total(), slots.busy(), slots.free()), (3, 0, 3));
        let a = slots.occupy();
        let b = slots.clone().occupy();
        assert_eq!((slots.busy(), slots.free()), (2, 1));
        drop(a);
        assert_eq!((slots.busy(), slots.free()), (1, 2));
        drop(b);
        assert_eq!(slots.free(), 3);
        assert_eq!(Slots::new(0).total(), 1, "at least one slot");
    }
}
