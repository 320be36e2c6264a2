//! Masking (RFC 6455 §5.3), a word at a time.

/// XORs `buf` in place with `key`, as if `buf` started `offset` bytes into
/// the masked payload. Masking and unmasking are the same operation.
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], offset: usize) {
    let key = rotated(key, offset);
    let key32 = u64::from(u32::from_ne_bytes(key));
    // The same four bytes twice: the same word in either byte order.
    let word = (key32 << 32) | key32;
    let mut chunks = buf.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u64::from_ne_bytes(bytes) ^ word).to_ne_bytes());
    }
    // The tail starts at a multiple of 8 from the rotated key, so key[0]
    // lines up: a word of four if it fits, then single bytes.
    let tail = chunks.into_remainder();
    let (word, bytes) = tail.split_at_mut(tail.len() & !3);
    if let Ok(word) = <&mut [u8; 4]>::try_from(word) {
        *word = (u32::from_ne_bytes(*word) ^ u32::from_ne_bytes(key)).to_ne_bytes();
    }
    for (byte, k) in bytes.iter_mut().zip(key) {
        *byte ^= k;
    }
}

/// Appends `src` masked with `key` to `out`: copy and mask in one pass.
pub fn extend_masked(out: &mut Vec<u8>, src: &[u8], key: [u8; 4]) {
    let start = out.len();
    out.extend_from_slice(src);
    apply_mask(&mut out[start..], key, 0);
}

/// The key as it applies from `offset` on: byte i of the result is byte
/// `(i + offset) % 4` of `key`. (A word rotation: `<[u8]>::rotate_left` is
/// an out-of-line call, paid for every frame.)
fn rotated(key: [u8; 4], offset: usize) -> [u8; 4] {
    // In little-endian order byte i sits at bits 8i, so moving bytes to
    // lower indices is a right rotation.
    let shift = 8 * (offset % 4) as u32;
    u32::from_le_bytes(key).rotate_right(shift).to_le_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytewise(buf: &mut [u8], key: [u8; 4], offset: usize) {
        for (i, b) in buf.iter_mut().enumerate() {
            *b ^= key[(i + offset) % 4];
        }
    }

    /// RFC 6455 §5.3: octet i of the masked data is octet i XOR key[i MOD 4].
    #[test]
    fn rfc6455_5_3_matches_bytewise_for_every_length_and_offset() {
        let key = [0xde, 0xad, 0xbe, 0xef];
        for len in 0..70 {
            for offset in 0..8 {
                let data: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
                let mut fast = data.clone();
                let mut slow = data.clone();
                apply_mask(&mut fast, key, offset);
                bytewise(&mut slow, key, offset);
                assert_eq!(fast, slow, "len {len} offset {offset}");
            }
        }
    }

    #[test]
    fn split_masking_equals_whole() {
        let key = [1, 2, 3, 4];
        let data: Vec<u8> = (0..100u8).collect();
        let mut whole = data.clone();
        apply_mask(&mut whole, key, 0);
        for split in 0..data.len() {
            let mut parts = data.clone();
            let (a, b) = parts.split_at_mut(split);
            apply_mask(a, key, 0);
            apply_mask(b, key, split);
            assert_eq!(parts, whole);
        }
    }
}
