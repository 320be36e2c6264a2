//! An incremental, bounded scanner for an HTTP/1.1 message head.
//!
//! ```text
//!   buf: [ bytes received so far ........................ ]
//!         ^0                          ^searched            ^len
//!         no head terminator ends before `searched`; the next scan
//!         resumes there (a terminator ends at a line feed, and whether a
//!         line feed ends one depends only on the bytes before it)
//! ```
//!
//! Bytes are copied into the buffer only up to the head limit; the caller's
//! bytes past the end of the head are handed back as leftover, uncopied
//! until then. Each byte is scanned once, so feeding a head one byte at a
//! time costs O(n), not O(n²) (the tungstenite CVE-2023-43669 shape).

use bytes::Bytes;

/// The head did not end within `limit` bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct HeadTooLarge;

/// A complete head and whatever followed it.
#[derive(Debug)]
pub(crate) struct Head {
    /// The head, including its terminating empty line.
    pub(crate) bytes: Vec<u8>,
    /// Bytes that arrived after the head.
    pub(crate) leftover: Bytes,
}

/// Accumulates bytes until the empty line that ends an HTTP/1.1 head.
///
/// The end of the head is the first line feed that closes an empty line:
/// `\r\n\r\n`, and also the bare `\n\n` and `\n\r\n` that RFC 9112 §2.2 lets a
/// recipient accept (httparse accepts them too).
#[derive(Debug)]
pub(crate) struct HeadBuffer {
    buf: Vec<u8>,
    searched: usize,
    limit: usize,
    /// Bytes the scanner has looked at, to prove it never rescans.
    #[cfg(test)]
    examined: usize,
}

impl HeadBuffer {
    /// A scanner that fails once `limit` bytes hold no complete head.
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            buf: Vec::new(),
            searched: 0,
            limit,
            #[cfg(test)]
            examined: 0,
        }
    }

    /// Bytes buffered so far (never more than the limit).
    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }

    /// Appends `bytes`; returns the head once its terminator has arrived.
    ///
    /// After `Ok(Some(_))` or an error the buffer is left empty.
    pub(crate) fn push(&mut self, bytes: &[u8]) -> Result<Option<Head>, HeadTooLarge> {
        let room = self.limit.saturating_sub(self.buf.len());
        let take = bytes.len().min(room);
        self.reserve(take);
        self.buf.extend_from_slice(&bytes[..take]);
        if let Some(end) = self.scan() {
            let mut head = std::mem::take(&mut self.buf);
            let mut leftover = head.split_off(end);
            leftover.extend_from_slice(&bytes[take..]);
            self.searched = 0;
            return Ok(Some(Head { bytes: head, leftover: Bytes::from(leftover) }));
        }
        if self.buf.len() >= self.limit {
            self.buf = Vec::new();
            return Err(HeadTooLarge);
        }
        Ok(None)
    }

    /// Grows the buffer for `additional` more bytes, doubling as usual but
    /// never past the limit, so the allocation is bounded too.
    fn reserve(&mut self, additional: usize) {
        let needed = self.buf.len() + additional;
        if needed > self.buf.capacity() {
            let target = self.buf.capacity().saturating_mul(2).max(256).min(self.limit).max(needed);
            self.buf.reserve_exact(target - self.buf.len());
        }
    }

    /// Finds the end (exclusive) of the head in the buffer, resuming where
    /// the last scan stopped.
    fn scan(&mut self) -> Option<usize> {
        let start = self.searched;
        #[cfg(test)]
        {
            self.examined += self.buf.len() - start;
        }
        let found = self.buf[start..]
            .iter()
            .enumerate()
            .filter(|&(_, &b)| b == b'\n')
            .map(|(i, _)| start + i)
            .find(|&i| ends_empty_line(&self.buf[..=i]));
        self.searched = self.buf.len();
        found.map(|i| i + 1)
    }
}

/// Whether `prefix` (ending in `\n`) ends with an empty line: `\n\n` or
/// `\n\r\n` (the first line feed ending the line before).
fn ends_empty_line(prefix: &[u8]) -> bool {
    matches!(prefix, [.., b'\n', b'\n'] | [.., b'\n', b'\r', b'\n'])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_crlf_terminator_and_keeps_leftover() {
        let mut h = HeadBuffer::new(64);
        let head = h.push(b"GET / HTTP/1.1\r\n\r\nXY").unwrap().unwrap();
        assert_eq!(head.bytes, b"GET / HTTP/1.1\r\n\r\n");
        assert_eq!(&head.leftover[..], b"XY");
    }

    #[test]
    fn byte_at_a_time_and_bare_lf() {
        let mut h = HeadBuffer::new(64);
        let text = b"GET / HTTP/1.1\n\nZ";
        let mut got = None;
        for &b in text {
            if let Some(head) = h.push(&[b]).unwrap() {
                got = Some(head);
            }
        }
        // The `Z` arrives after the head completed, so it is not part of it.
        let head = got.unwrap();
        assert_eq!(head.bytes, b"GET / HTTP/1.1\n\n");
        assert!(head.leftover.is_empty());
    }

    #[test]
    fn one_byte_at_a_time_scans_each_byte_once() {
        let mut text = b"GET / HTTP/1.1\r\n".to_vec();
        for _ in 0..200 {
            text.extend_from_slice(b"X-Header: value\r\n");
        }
        text.extend_from_slice(b"\r\n");
        let mut h = HeadBuffer::new(8192);
        let (last, init) = text.split_last().unwrap();
        for b in init {
            assert!(h.push(std::slice::from_ref(b)).unwrap().is_none());
        }
        assert_eq!(h.examined, init.len());
        assert!(h.push(&[*last]).unwrap().is_some());
    }

    #[test]
    fn allocation_never_exceeds_the_limit() {
        let mut h = HeadBuffer::new(1000);
        for _ in 0..999 {
            assert!(h.push(b"a").unwrap().is_none());
            assert!(h.buf.capacity() <= 1000);
        }
    }

    #[test]
    fn limit_counts_the_head_only() {
        let mut h = HeadBuffer::new(18);
        let head = h.push(b"GET / HTTP/1.1\r\n\r\n0123456789").unwrap().unwrap();
        assert_eq!(&head.leftover[..], b"0123456789");
        let mut h = HeadBuffer::new(17);
        assert_eq!(h.push(b"GET / HTTP/1.1\r\n\r\n").unwrap_err(), HeadTooLarge);
    }

    #[test]
    fn leading_empty_line_alone_is_not_a_terminator_start() {
        let mut h = HeadBuffer::new(64);
        assert!(h.push(b"\r").unwrap().is_none());
        assert!(h.push(b"\nGET / HTTP/1.1\r").unwrap().is_none());
        assert!(h.push(b"\n\r").unwrap().is_none());
        assert!(h.push(b"\n").unwrap().is_some());
    }
}
