//! The read arena: reads land in a thread's chunk of memory and leave as
//! `BytesMut` views of it, so an idle connection holds no read buffer of its
//! own, and the memory a thread reads into is the same from read to read.

use bytes::{Bytes, BytesMut};
use nextrush_proto::Event as ProtoEvent;

/// A chunk's capacity.
pub(crate) const CHUNK: usize = 64 * 1024;
/// Below this much room, the chunk is replaced before a read.
pub(crate) const MIN_SPARE: usize = 16 * 1024;
/// Reads this far into a chunk try to start over at its beginning (a check
/// that costs about 50 instructions, so not after every read).
const REWIND_AFTER: usize = 4 * 1024;
/// Replaced chunks kept for reuse, at most (so a thread holds at most
/// `(1 + SPENT_CHUNKS) * CHUNK` bytes of them once their messages are gone).
const SPENT_CHUNKS: usize = 4;

/// Events waiting for the handler that may keep their read chunks alive.
/// A received message or ping is a view into the chunk it was read into, so
/// a handler that falls behind keeps one chunk per waiting event in the
/// worst case (a peer whose every read comes between other connections'
/// traffic): 256 events, 16 MiB. Past this many, small ones are copied
/// (`Message::into_compact`: under 16 KiB; a ping or pong always).
const VIEWS_WAITING: usize = 16;
/// Readies `event` to be queued behind `waiting` others for the handler:
/// copies it out of its read chunk if it is small and the handler is far
/// behind (see [`VIEWS_WAITING`]). A handler that keeps up never pays for a
/// copy, and the check is inlined into the receive path.
#[inline]
pub(crate) fn unpin(event: &mut ProtoEvent, waiting: usize) {
    if waiting >= VIEWS_WAITING {
        copy_out(event);
    }
}

#[cold]
fn copy_out(event: &mut ProtoEvent) {
    *event = match std::mem::replace(event, ProtoEvent::RateLimited) {
        ProtoEvent::Message(message) => ProtoEvent::Message(message.into_compact()),
        ProtoEvent::Ping(payload) => ProtoEvent::Ping(Bytes::copy_from_slice(&payload)),
        ProtoEvent::Pong(payload) => ProtoEvent::Pong(Bytes::copy_from_slice(&payload)),
        other => other,
    };
}

/// One thread's read memory.
#[derive(Default)]
pub(crate) struct ReadArena {
    chunk: BytesMut,
    /// Chunks replaced while messages still held part of them: reused once
    /// those are gone, rather than freed and allocated again. (Under
    /// steady load the allocator would otherwise hand chunks back to the
    /// system and fault them in again, several page faults per chunk.)
    spent: Vec<BytesMut>,
    /// `chunk` is memory of the arena's (not the empty one it starts with).
    allocated: bool,
}

impl ReadArena {
    /// The chunk to read into, with at least [`MIN_SPARE`] bytes of room.
    /// Empty: whatever was read into it before has been split off.
    pub(crate) fn ready(&mut self) -> &mut BytesMut {
        // Once every message cut from the chunk is gone (the usual case when
        // replies go out as fast as requests come in), reads start over at
        // its beginning, in memory still in cache, instead of walking on
        // through it. Never allocates: `false` if a message still holds
        // part of it.
        if self.chunk.capacity() + REWIND_AFTER < CHUNK {
            let _ = self.chunk.try_reclaim(CHUNK);
        }
        if self.chunk.capacity() < MIN_SPARE {
            self.replace_chunk();
        }
        &mut self.chunk
    }

    /// As [`ready`](Self::ready), with at least `room` bytes of room
    /// (`room` at most [`CHUNK`]).
    pub(crate) fn ready_with(&mut self, room: usize) -> &mut BytesMut {
        debug_assert!(room <= CHUNK);
        if self.ready().capacity() < room {
            self.replace_chunk();
        }
        &mut self.chunk
    }

    fn replace_chunk(&mut self) {
        let free = self.spent.iter_mut().position(|spent| spent.try_reclaim(CHUNK));
        let next = match free {
            Some(index) => self.spent.swap_remove(index),
            None => BytesMut::with_capacity(CHUNK),
        };
        let replaced = std::mem::replace(&mut self.chunk, next);
        // Also a chunk read to its last byte (no room left at all: bulk
        // reads fill them), which bulk traffic would otherwise free and
        // allocate again for every chunk's worth of messages.
        if std::mem::replace(&mut self.allocated, true) {
            // Full: the oldest goes, the one whose messages (kept by a
            // handler, say) have stayed longest.
            if self.spent.len() == SPENT_CHUNKS {
                self.spent.remove(0);
            }
            self.spent.push(replaced);
        }
    }
}

#[cfg(test)]
mod tests {
    use nextrush_proto::Message;

    use super::*;

    /// Reads `len` bytes into the arena and takes them out as a message.
    fn read(arena: &mut ReadArena, len: usize) -> BytesMut {
        let chunk = arena.ready();
        assert!(chunk.is_empty() && chunk.capacity() >= MIN_SPARE);
        chunk.resize(len, 0);
        chunk.split()
    }

    /// A binary message of `len` bytes read into a fresh chunk (no other
    /// handle on it), and a weak handle on the chunk's memory to tell when
    /// it is freed.
    fn received(len: usize) -> (Message, std::sync::Weak<Vec<u8>>) {
        let chunk = std::sync::Arc::new(vec![7u8; CHUNK]);
        let memory = std::sync::Arc::downgrade(&chunk);
        let view = Bytes::from_owner(ArcChunk(chunk)).slice(..len);
        (Message::Binary(view), memory)
    }

    struct ArcChunk(std::sync::Arc<Vec<u8>>);

    impl AsRef<[u8]> for ArcChunk {
        fn as_ref(&self) -> &[u8] {
            &self.0
        }
    }

    fn payload_of(event: &ProtoEvent) -> &[u8] {
        match event {
            ProtoEvent::Message(message) => message.payload(),
            ProtoEvent::Ping(payload) | ProtoEvent::Pong(payload) => payload,
            _ => &[],
        }
    }

    #[test]
    fn a_handler_that_keeps_up_gets_the_views_themselves() {
        let (message, memory) = received(20);
        let start = message.payload().as_ptr();
        let mut event = ProtoEvent::Message(message);
        unpin(&mut event, VIEWS_WAITING - 1);
        assert_eq!(payload_of(&event).as_ptr(), start, "no copy");
        assert!(memory.upgrade().is_some());
    }

    #[test]
    fn a_small_event_waiting_behind_many_lets_its_chunk_go() {
        let (message, memory) = received(CHUNK / 4 - 1);
        let mut event = ProtoEvent::Message(message);
        unpin(&mut event, VIEWS_WAITING);
        assert!(memory.upgrade().is_none(), "copied out: the chunk is freed");
        assert_eq!(payload_of(&event), &vec![7u8; CHUNK / 4 - 1][..]);

        let (message, memory) = received(125);
        let mut event = ProtoEvent::Ping(message.into_payload());
        unpin(&mut event, VIEWS_WAITING + 100);
        assert!(memory.upgrade().is_none(), "a ping too");
        assert_eq!(payload_of(&event).len(), 125);
    }

    #[test]
    fn a_large_message_keeps_its_chunk_even_far_behind() {
        let (message, memory) = received(CHUNK / 4);
        let mut event = ProtoEvent::Message(message);
        unpin(&mut event, 255);
        assert!(memory.upgrade().is_some(), "at most four times its size: not worth a copy");
        drop(event);
        assert!(memory.upgrade().is_none());
    }

    #[test]
    fn reads_start_over_once_every_message_cut_from_the_chunk_is_gone() {
        let mut arena = ReadArena::default();
        let message = read(&mut arena, REWIND_AFTER + 1);
        let start = message.as_ptr();
        drop(message);
        assert_eq!(read(&mut arena, 10).as_ptr(), start, "reads land at the chunk's start again");
    }

    #[test]
    fn reads_walk_on_while_a_message_holds_part_of_the_chunk() {
        let mut arena = ReadArena::default();
        let held = read(&mut arena, REWIND_AFTER + 1);
        let next = read(&mut arena, 10);
        assert_eq!(next.as_ptr(), held.as_ptr().wrapping_add(held.len()), "neither rewound nor reallocated");
    }

    #[test]
    fn the_chunk_is_not_checked_after_every_short_read() {
        let mut arena = ReadArena::default();
        let first = read(&mut arena, 20);
        let next = first.as_ptr().wrapping_add(20);
        drop(first);
        assert_eq!(read(&mut arena, 10).as_ptr(), next, "a few bytes in: not worth the check yet");
    }

    #[test]
    fn a_replaced_chunk_is_reused_once_its_messages_are_gone() {
        let mut arena = ReadArena::default();
        let old = read(&mut arena, CHUNK - MIN_SPARE + 1);
        let old_start = old.as_ptr();
        // Too little room left: a new chunk, the old one kept aside.
        let held = read(&mut arena, CHUNK - MIN_SPARE + 1);
        assert_ne!(held.as_ptr(), old_start.wrapping_add(old.len()));
        drop(old);
        // The new chunk runs low while `held` is alive: the old one is free again.
        assert_eq!(read(&mut arena, 10).as_ptr(), old_start, "the old chunk, not a new allocation");
        drop(held);
    }

    #[test]
    fn a_chunk_read_to_its_last_byte_is_reused_too() {
        let mut arena = ReadArena::default();
        let full = read(&mut arena, CHUNK);
        let start = full.as_ptr();
        let held = read(&mut arena, CHUNK);
        // Kept aside, not let go (to be freed with its message).
        assert_eq!(arena.spent.len(), 1);
        drop(full);
        assert_eq!(read(&mut arena, 10).as_ptr(), start, "the full chunk's memory, not a new allocation");
        drop(held);
    }

    #[test]
    fn at_most_a_few_replaced_chunks_are_kept_the_latest_ones() {
        let mut arena = ReadArena::default();
        let held: Vec<BytesMut> = (0..SPENT_CHUNKS + 3).map(|_| read(&mut arena, CHUNK - MIN_SPARE + 1)).collect();
        assert_eq!(arena.spent.len(), SPENT_CHUNKS);
        // Chunk i was replaced by the read of message i + 1; the current one holds the last.
        let kept: Vec<_> = arena.spent.iter().map(|spent| spent.as_ptr()).collect();
        let latest: Vec<_> = held[2..held.len() - 1].iter().map(|m| m.as_ptr().wrapping_add(m.len())).collect();
        assert_eq!(kept, latest);
    }
}
