//! A member's outbound queue: a byte budget and the slow-consumer policies,
//! written once here so that every driver applies them alike.

use std::collections::VecDeque;
use std::collections::vec_deque::Drain;

use crate::message::Outbound;
use crate::policy::{Delivery, SlowConsumer};

/// Counters of one [`MemberQueue`], since it was created.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueueStats {
    /// Items accepted into the queue.
    pub queued: u64,
    /// Items refused because the queue was full ([`SlowConsumer::DropNewest`]).
    pub dropped_newest: u64,
    /// Queued items evicted to make room ([`SlowConsumer::DropOldest`]).
    pub dropped_oldest: u64,
    /// Items refused when the queue overflowed under
    /// [`SlowConsumer::Disconnect`] (0 or 1), plus items offered after that.
    pub refused: u64,
    /// Queued items discarded when the queue disconnected or was cleared.
    pub discarded: u64,
}

/// A bounded queue of [`Outbound`] items with a byte budget, for one
/// connection.
///
/// The driver embeds one per connection (behind the connection's lock, or
/// with [`QueueMember`](crate::QueueMember)), lets the hub
/// [`push`](Self::push) into it, and drains it with [`pop`](Self::pop) or
/// [`pop_all`](Self::pop_all) into `Connection::send_encoded` (for
/// [`Outbound::Frame`]) or `Connection::send` (for [`Outbound::Message`])
/// when its transport can take more.
///
/// # Budget
///
/// The queue holds at most `budget` bytes of [`Outbound::wire_len`], with one
/// exception: an empty queue accepts any single item, so a message larger
/// than the budget is still delivered to a member that keeps up. A push that
/// does not fit applies the [`SlowConsumer`] policy to this queue alone.
///
/// # Disconnect
///
/// Under [`SlowConsumer::Disconnect`] an overflow discards the queue and
/// marks it disconnected: [`is_disconnected`](Self::is_disconnected) turns
/// true, every later push answers [`Delivery::Gone`], and the driver should
/// close the connection with 1008 ([`SlowConsumer::CLOSE_CODE`]). The queue
/// is discarded so that the Close is not stuck behind the backlog that
/// caused it.
#[derive(Debug)]
pub struct MemberQueue {
    items: VecDeque<Outbound>,
    bytes: usize,
    budget: usize,
    disconnected: bool,
    stats: QueueStats,
}

impl MemberQueue {
    /// An empty queue holding at most `budget` bytes.
    #[must_use]
    pub fn new(budget: usize) -> Self {
        Self { items: VecDeque::new(), bytes: 0, budget, disconnected: false, stats: QueueStats::default() }
    }

    /// Offers `item`, applying `policy` if it does not fit. Never blocks.
    pub fn push(&mut self, item: Outbound, policy: SlowConsumer) -> Delivery {
        if self.disconnected {
            self.stats.refused += 1;
            return Delivery::Gone;
        }
        let len = item.wire_len();
        if self.fits(len) {
            self.enqueue(item, len);
            return Delivery::Queued;
        }
        match policy {
            SlowConsumer::DropNewest => {
                self.stats.dropped_newest += 1;
                Delivery::DroppedNewest
            }
            SlowConsumer::DropOldest => {
                let mut evicted = 0;
                while !self.fits(len) {
                    // `fits` is true for an empty queue, so there is a front.
                    let Some(old) = self.items.pop_front() else { break };
                    self.bytes -= old.wire_len();
                    evicted += 1;
                }
                self.stats.dropped_oldest += evicted as u64;
                self.enqueue(item, len);
                Delivery::DroppedOldest(evicted)
            }
            SlowConsumer::Disconnect => {
                self.stats.refused += 1;
                self.disconnect();
                Delivery::Disconnected
            }
        }
    }

    /// The oldest item, left in place: a driver that cannot hand it to its
    /// connection yet (a fragmented send is in progress, so
    /// `send_encoded` would refuse) looks, then pops later.
    #[must_use]
    pub fn front(&self) -> Option<&Outbound> {
        self.items.front()
    }

    /// Takes the oldest item.
    pub fn pop(&mut self) -> Option<Outbound> {
        let item = self.items.pop_front()?;
        self.bytes -= item.wire_len();
        Some(item)
    }

    /// Takes every item, oldest first. The budget is free again at once;
    /// items the iterator does not reach are dropped with it.
    pub fn pop_all(&mut self) -> Drain<'_, Outbound> {
        self.bytes = 0;
        self.items.drain(..)
    }

    /// Discards every queued item (counted as discarded); returns how many.
    pub fn clear(&mut self) -> usize {
        let n = self.items.len();
        self.items.clear();
        self.bytes = 0;
        self.stats.discarded += n as u64;
        n
    }

    /// Marks the queue disconnected and discards its items, as an overflow
    /// under [`SlowConsumer::Disconnect`] does. The driver calls this when
    /// the connection closes, so that later pushes answer
    /// [`Delivery::Gone`] until the member is unregistered.
    pub fn disconnect(&mut self) {
        self.clear();
        self.disconnected = true;
    }

    /// Whether the queue was disconnected: its connection is closing.
    #[must_use]
    pub const fn is_disconnected(&self) -> bool {
        self.disconnected
    }

    /// Items queued.
    #[must_use]
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether nothing is queued.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Bytes queued (sum of [`Outbound::wire_len`]).
    #[must_use]
    pub const fn bytes(&self) -> usize {
        self.bytes
    }

    /// The byte budget.
    #[must_use]
    pub const fn budget(&self) -> usize {
        self.budget
    }

    /// Changes the budget; items already queued stay.
    pub const fn set_budget(&mut self, budget: usize) {
        self.budget = budget;
    }

    /// The counters.
    #[must_use]
    pub const fn stats(&self) -> QueueStats {
        self.stats
    }

    fn fits(&self, len: usize) -> bool {
        self.items.is_empty() || self.bytes.saturating_add(len) <= self.budget
    }

    fn enqueue(&mut self, item: Outbound, len: usize) {
        self.bytes += len;
        self.items.push_back(item);
        self.stats.queued += 1;
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn frame(n: usize) -> Outbound {
        Outbound::Frame(Bytes::from(vec![n as u8; n]))
    }

    fn lens(q: &mut MemberQueue) -> Vec<usize> {
        q.pop_all().map(|o| o.wire_len()).collect()
    }

    #[test]
    fn fits_within_budget() {
        let mut q = MemberQueue::new(10);
        assert_eq!(q.push(frame(4), SlowConsumer::DropNewest), Delivery::Queued);
        assert_eq!(q.push(frame(6), SlowConsumer::DropNewest), Delivery::Queued);
        assert_eq!(q.bytes(), 10);
        assert_eq!(q.push(frame(1), SlowConsumer::DropNewest), Delivery::DroppedNewest);
        assert_eq!(lens(&mut q), [4, 6]);
        assert_eq!(q.bytes(), 0);
        assert_eq!(q.stats().dropped_newest, 1);
    }

    #[test]
    fn empty_queue_takes_an_oversized_item() {
        let mut q = MemberQueue::new(10);
        assert_eq!(q.push(frame(50), SlowConsumer::DropNewest), Delivery::Queued);
        assert_eq!(q.push(frame(1), SlowConsumer::DropNewest), Delivery::DroppedNewest);
        assert_eq!(q.front().map(Outbound::wire_len), Some(50));
        assert_eq!(q.pop().map(|o| o.wire_len()), Some(50));
        assert!(q.is_empty());
    }

    #[test]
    fn drop_oldest_evicts_until_it_fits() {
        let mut q = MemberQueue::new(10);
        for n in [3, 3, 3] {
            assert_eq!(q.push(frame(n), SlowConsumer::DropOldest), Delivery::Queued);
        }
        assert_eq!(q.push(frame(5), SlowConsumer::DropOldest), Delivery::DroppedOldest(2));
        assert_eq!(lens(&mut q), [3, 5]);
        assert_eq!(q.stats().dropped_oldest, 2);
        for n in [4, 4] {
            let _ = q.push(frame(n), SlowConsumer::DropOldest);
        }
        // Larger than the budget: everything goes, then it is alone.
        assert_eq!(q.push(frame(40), SlowConsumer::DropOldest), Delivery::DroppedOldest(2));
        assert_eq!(lens(&mut q), [40]);
    }

    #[test]
    fn disconnect_discards_and_refuses_afterwards() {
        let mut q = MemberQueue::new(5);
        assert_eq!(q.push(frame(5), SlowConsumer::Disconnect), Delivery::Queued);
        assert_eq!(q.push(frame(1), SlowConsumer::Disconnect), Delivery::Disconnected);
        assert!(q.is_disconnected() && q.is_empty());
        assert_eq!(q.push(frame(1), SlowConsumer::DropNewest), Delivery::Gone);
        let stats = q.stats();
        assert_eq!((stats.queued, stats.refused, stats.discarded), (1, 2, 1));
    }
}
