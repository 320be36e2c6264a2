//! Incremental UTF-8 validation (RFC 6455 §8.1) that fails at the first
//! invalid byte, even in the middle of a fragmented message.

/// Validates a text message fed in pieces of any size.
///
/// A code point split across pieces is held back (at most 3 bytes) until it
/// completes; every other byte is checked once, with `simdutf8`.
#[derive(Clone, Debug, Default)]
pub struct Utf8Validator {
    pending: [u8; 4],
    pending_len: usize,
}

/// The text is not valid UTF-8.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid UTF-8")]
pub struct InvalidUtf8;

impl Utf8Validator {
    /// A validator at the start of a message.
    #[must_use]
    pub const fn new() -> Self {
        Self { pending: [0; 4], pending_len: 0 }
    }

    /// Checks the next piece of the message.
    ///
    /// # Errors
    /// The bytes so far cannot be the start of valid UTF-8.
    pub fn feed(&mut self, input: &[u8]) -> Result<(), InvalidUtf8> {
        let input = self.complete_pending(input)?;
        if simdutf8::basic::from_utf8(input).is_ok() {
            return Ok(());
        }
        match simdutf8::compat::from_utf8(input) {
            Ok(_) => Ok(()),
            Err(e) if e.error_len().is_some() => Err(InvalidUtf8),
            Err(e) => {
                // An incomplete but so far valid code point at the end.
                let tail = &input[e.valid_up_to()..];
                self.pending[..tail.len()].copy_from_slice(tail);
                self.pending_len = tail.len();
                Ok(())
            }
        }
    }

    /// Checks that the message does not end inside a code point.
    ///
    /// # Errors
    /// The message ended with an incomplete code point.
    pub fn finish(&mut self) -> Result<(), InvalidUtf8> {
        let complete = self.pending_len == 0;
        *self = Self::new();
        if complete { Ok(()) } else { Err(InvalidUtf8) }
    }

    /// Feeds bytes into a held-back code point; returns the rest of `input`.
    fn complete_pending<'a>(&mut self, input: &'a [u8]) -> Result<&'a [u8], InvalidUtf8> {
        if self.pending_len == 0 {
            return Ok(input);
        }
        let width = match self.pending[0] {
            0xC0..=0xDF => 2,
            0xE0..=0xEF => 3,
            _ => 4,
        };
        let take = (width - self.pending_len).min(input.len());
        self.pending[self.pending_len..self.pending_len + take].copy_from_slice(&input[..take]);
        self.pending_len += take;
        match std::str::from_utf8(&self.pending[..self.pending_len]) {
            Ok(_) => self.pending_len = 0,
            Err(e) if e.error_len().is_some() => return Err(InvalidUtf8),
            Err(_) => {} // still incomplete: input is exhausted
        }
        Ok(&input[take..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn verdict_in_pieces(bytes: &[u8], cuts: &[usize]) -> (bool, Option<usize>) {
        let mut v = Utf8Validator::new();
        let mut start = 0;
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
        cuts.sort_unstable();
        cuts.push(bytes.len());
        for end in cuts {
            if v.feed(&bytes[start..end]).is_err() {
                return (false, Some(end));
            }
            start = end;
        }
        (v.finish().is_ok(), None)
    }

    /// RFC 6455 §8.1: a text message must be valid UTF-8 once reassembled.
    #[test]
    fn rfc6455_8_1_code_point_split_across_fragments() {
        let text = "κόσμε €𝄞".as_bytes();
        for cut in 0..=text.len() {
            assert!(verdict_in_pieces(text, &[cut]).0, "cut at {cut}");
        }
    }

    #[test]
    fn fails_at_first_invalid_byte_not_at_end() {
        // 0xF4 0x90 is beyond U+10FFFF: invalid as soon as the second byte arrives.
        let mut v = Utf8Validator::new();
        v.feed(b"hello\xF4").unwrap();
        assert_eq!(v.feed(b"\x90"), Err(InvalidUtf8));
    }

    #[test]
    fn truncated_code_point_at_end_is_invalid() {
        let mut v = Utf8Validator::new();
        v.feed(b"ab\xE2\x82").unwrap();
        assert_eq!(v.finish(), Err(InvalidUtf8));
    }

    proptest! {
        #[test]
        fn agrees_with_std(bytes in proptest::collection::vec(any::<u8>(), 0..64), cuts in proptest::collection::vec(any::<usize>(), 0..6)) {
            let std_ok = std::str::from_utf8(&bytes).is_ok();
            prop_assert_eq!(verdict_in_pieces(&bytes, &cuts).0, std_ok);
        }

        #[test]
        fn fails_at_earliest_invalid_prefix(s in "\\PC{0,20}", junk in proptest::collection::vec(any::<u8>(), 1..6), cuts in proptest::collection::vec(any::<usize>(), 0..6)) {
            let mut bytes = s.into_bytes();
            bytes.extend_from_slice(&junk);
            // The earliest prefix length at which std says "can never be valid".
            let earliest = (1..=bytes.len()).find(|&n| matches!(std::str::from_utf8(&bytes[..n]), Err(e) if e.error_len().is_some()));
            let (_, failed_at) = verdict_in_pieces(&bytes, &cuts);
            match (earliest, failed_at) {
                (Some(n), Some(end)) => {
                    // We fail on the piece that contains the earliest invalid byte.
                    let mut ends: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
                    ends.push(bytes.len());
                    ends.sort_unstable();
                    let piece_end = ends.into_iter().find(|&e| e >= n).unwrap();
                    prop_assert_eq!(end, piece_end);
                }
                (None, None) => {}
                (a, b) => prop_assert!(false, "earliest {a:?}, failed at {b:?}"),
            }
        }
    }
}
