//! Entropy as an input: client mask keys and handshake nonces come from a
//! source the caller supplies, so every run can be replayed.

/// A source of random bytes for mask keys (RFC 6455 §5.3) and the
/// `Sec-WebSocket-Key` nonce (§4.1).
///
/// Adapters seed a [`SeededEntropy`] from the operating system; tests seed it
/// with a constant to replay a run exactly.
pub trait Entropy: Send {
    /// Fills `dst` with random bytes.
    fn fill(&mut self, dst: &mut [u8]);
}

/// A small, fast, seedable generator (wyrand) for mask keys and nonces.
///
/// RFC 6455 §5.3 asks that masks be unpredictable to intermediaries; seeded
/// from the OS per connection this is, and it costs a multiply per key.
#[derive(Clone, Debug)]
pub struct SeededEntropy {
    state: u64,
}

impl SeededEntropy {
    /// A generator from a 64-bit seed.
    #[must_use]
    pub const fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0xa076_1d64_78bd_642f);
        let t = u128::from(self.state) * u128::from(self.state ^ 0xe703_7ed1_a0b4_28db);
        // Truncation is the algorithm: fold the 128-bit product into 64 bits.
        #[allow(clippy::cast_possible_truncation)]
        let folded = (t as u64) ^ ((t >> 64) as u64);
        folded
    }
}

impl Entropy for SeededEntropy {
    fn fill(&mut self, dst: &mut [u8]) {
        for chunk in dst.chunks_mut(8) {
            let word = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
    }
}

impl<F: FnMut(&mut [u8]) + Send> Entropy for F {
    fn fill(&mut self, dst: &mut [u8]) {
        self(dst);
    }
}
