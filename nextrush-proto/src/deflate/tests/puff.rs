//! A small, independent DEFLATE decoder (after zlib's `contrib/puff`) that
//! also reports the farthest back-reference. It checks that our compressor
//! keeps within the negotiated window — zlib's own inflater cannot, since it
//! accepts any distance its (larger) window holds.

/// The decoded data and the largest match distance seen.
pub(super) struct Inflated {
    pub(super) data: Vec<u8>,
    pub(super) max_distance: usize,
}

const LBASE: [u16; 29] =
    [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258];
const LEXT: [u8; 29] = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0];
const DBASE: [u16; 30] = [
    1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145,
    8193, 12289, 16385, 24577,
];
const DEXT: [u8; 30] =
    [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13];
/// Order of the code length code lengths (RFC 1951 §3.2.7).
const CLEN_ORDER: [usize; 19] = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15];

type Result<T> = std::result::Result<T, &'static str>;

/// Decodes a sequence of DEFLATE blocks that ends, byte-aligned, at the end
/// of `input` (a payload with the tail re-appended) or at a final block.
pub(super) fn inflate(input: &[u8]) -> Result<Inflated> {
    let mut s =
        State { bits: Bits { input, pos: 0, buf: 0, cnt: 0 }, out: Inflated { data: Vec::new(), max_distance: 0 } };
    loop {
        if s.bits.pos == input.len() && s.bits.cnt < 8 && s.bits.buf == 0 {
            return Ok(s.out);
        }
        let last = s.bits.take(1)? == 1;
        match s.bits.take(2)? {
            0 => s.stored()?,
            1 => s.codes(&fixed_lit(), &Huffman::new(&[5; 30]))?,
            2 => {
                let (lit, dist) = s.bits.dynamic_tables()?;
                s.codes(&lit, &dist)?;
            }
            _ => return Err("reserved block type"),
        }
        if last {
            return Ok(s.out);
        }
    }
}

struct Bits<'a> {
    input: &'a [u8],
    pos: usize,
    buf: u32,
    cnt: u32,
}

impl Bits<'_> {
    fn take(&mut self, n: u32) -> Result<u32> {
        while self.cnt < n {
            let byte = *self.input.get(self.pos).ok_or("out of input")?;
            self.pos += 1;
            self.buf |= u32::from(byte) << self.cnt;
            self.cnt += 8;
        }
        let value = self.buf & ((1 << n) - 1);
        self.buf >>= n;
        self.cnt -= n;
        Ok(value)
    }

    fn decode(&mut self, h: &Huffman) -> Result<u16> {
        let (mut code, mut first, mut index) = (0i32, 0i32, 0i32);
        for len in 1..16 {
            code |= i32::try_from(self.take(1)?).map_err(|_| "bit")?;
            let count = i32::from(h.count[len]);
            if code - first < count {
                let at = usize::try_from(index + code - first).map_err(|_| "index")?;
                return Ok(h.symbol[at]);
            }
            index += count;
            first = (first + count) << 1;
            code <<= 1;
        }
        Err("invalid Huffman code")
    }

    fn dynamic_tables(&mut self) -> Result<(Huffman, Huffman)> {
        let nlen = self.take(5)? as usize + 257;
        let ndist = self.take(5)? as usize + 1;
        let ncode = self.take(4)? as usize + 4;
        let mut lengths = [0u8; 19];
        for &i in &CLEN_ORDER[..ncode] {
            lengths[i] = u8::try_from(self.take(3)?).map_err(|_| "len")?;
        }
        let clen = Huffman::new(&lengths);
        let mut all = Vec::with_capacity(nlen + ndist);
        while all.len() < nlen + ndist {
            let (value, repeat) = match self.decode(&clen)? {
                sym @ 0..16 => (u8::try_from(sym).map_err(|_| "sym")?, 1),
                16 => (*all.last().ok_or("repeat with no length")?, 3 + self.take(2)?),
                17 => (0, 3 + self.take(3)?),
                _ => (0, 11 + self.take(7)?),
            };
            for _ in 0..repeat {
                all.push(value);
            }
        }
        if all.len() > nlen + ndist {
            return Err("too many lengths");
        }
        Ok((Huffman::new(&all[..nlen]), Huffman::new(&all[nlen..])))
    }
}

struct Huffman {
    count: [u16; 16],
    symbol: Vec<u16>,
}

impl Huffman {
    fn new(lengths: &[u8]) -> Self {
        let mut count = [0u16; 16];
        for &l in lengths {
            count[usize::from(l)] += 1;
        }
        count[0] = 0;
        let mut offs = [0usize; 16];
        for len in 1..15 {
            offs[len + 1] = offs[len] + usize::from(count[len]);
        }
        let mut symbol = vec![0u16; lengths.len()];
        for (sym, &l) in lengths.iter().enumerate() {
            if l != 0 {
                let l = usize::from(l);
                symbol[offs[l]] = u16::try_from(sym).unwrap_or(u16::MAX);
                offs[l] += 1;
            }
        }
        Self { count, symbol }
    }
}

fn fixed_lit() -> Huffman {
    let mut lengths = [8u8; 288];
    lengths[144..256].fill(9);
    lengths[256..280].fill(7);
    Huffman::new(&lengths)
}

struct State<'a> {
    bits: Bits<'a>,
    out: Inflated,
}

impl State<'_> {
    fn stored(&mut self) -> Result<()> {
        self.bits.buf = 0;
        self.bits.cnt = 0;
        let len = self.bits.take(16)?;
        if self.bits.take(16)? != !len & 0xffff {
            return Err("stored length mismatch");
        }
        for _ in 0..len {
            let byte = self.bits.take(8)?;
            self.out.data.push(u8::try_from(byte).map_err(|_| "byte")?);
        }
        Ok(())
    }

    fn codes(&mut self, lit: &Huffman, dist: &Huffman) -> Result<()> {
        loop {
            let sym = usize::from(self.bits.decode(lit)?);
            if sym < 256 {
                self.out.data.push(u8::try_from(sym).map_err(|_| "sym")?);
                continue;
            }
            if sym == 256 {
                return Ok(());
            }
            let l = sym - 257;
            let len =
                usize::from(*LBASE.get(l).ok_or("bad length symbol")?) + self.bits.take(u32::from(LEXT[l]))? as usize;
            let d = usize::from(self.bits.decode(dist)?);
            let distance =
                usize::from(*DBASE.get(d).ok_or("bad distance symbol")?) + self.bits.take(u32::from(DEXT[d]))? as usize;
            if distance > self.out.data.len() {
                return Err("distance too far back");
            }
            self.out.max_distance = self.out.max_distance.max(distance);
            for _ in 0..len {
                let byte = self.out.data[self.out.data.len() - distance];
                self.out.data.push(byte);
            }
        }
    }
}

#[test]
fn puff_decodes_the_rfc_examples() {
    let hello = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00, 0x00, 0xff, 0xff];
    assert_eq!(inflate(&hello).unwrap().data, b"Hello");
    let mut twice = hello.to_vec();
    twice.extend_from_slice(&[0xf2, 0x00, 0x11, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff]);
    let got = inflate(&twice).unwrap();
    assert_eq!(got.data, b"HelloHello");
    assert_eq!(got.max_distance, 5);
}
