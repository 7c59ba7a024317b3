//! The legacy fingerprint (`RSLUtils::CalculateChecksum`, the "MSR Rabin fingerprint", spec
//! §5.4): a reflected CRC-64 whose polynomial and initial value are both
//! `0xA795D0F29B4DCDF8`, with no final XOR. Packets, messages and checkpoint blocks use it
//! and applications may have stored its values, so it must stay bit-exact (§8.2.3).
//!
//! Hand-written rather than taken from the `crc` crate: that crate can express the
//! parameters, but it takes initial values in unreflected form, so chaining would have to
//! pass `prev.reverse_bits()` — an obscure translation of a rule that is one line here.
//! It runs slice-by-8 (eight 256-entry tables built at compile time, as legacy processes 8
//! bytes at a time); the tests check it against the bit-by-bit definition.

/// The polynomial (reflected form), which is also the initial value and the fingerprint of
/// the empty input.
pub const FINGERPRINT_SEED: u64 = 0xA795_D0F2_9B4D_CDF8;

/// `TABLES[k][b]`: the CRC register contribution of byte `b` followed by `k` zero bytes.
static TABLES: [[u64; 256]; 8] = build_tables();

const fn build_tables() -> [[u64; 256]; 8] {
    let mut tables = [[0u64; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u64;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ FINGERPRINT_SEED } else { crc >> 1 };
            bit += 1;
        }
        tables[0][i] = crc;
        i += 1;
    }
    let mut k = 1;
    while k < 8 {
        let mut i = 0;
        while i < 256 {
            let prev = tables[k - 1][i];
            tables[k][i] = (prev >> 8) ^ tables[0][(prev & 0xff) as usize];
            i += 1;
        }
        k += 1;
    }
    tables
}

/// The fingerprint of `bytes`.
pub fn fingerprint(bytes: &[u8]) -> u64 {
    fingerprint_continue(FINGERPRINT_SEED, bytes)
}

/// Continues a fingerprint: `fingerprint_continue(fingerprint(a), b) == fingerprint(a ‖ b)`.
pub fn fingerprint_continue(prev: u64, bytes: &[u8]) -> u64 {
    let t = &TABLES;
    let mut crc = prev;
    let mut blocks = bytes.chunks_exact(8);
    for block in &mut blocks {
        let mut word = [0u8; 8];
        word.copy_from_slice(block);
        let x = (crc ^ u64::from_le_bytes(word)).to_le_bytes();
        crc = t[7][usize::from(x[0])]
            ^ t[6][usize::from(x[1])]
            ^ t[5][usize::from(x[2])]
            ^ t[4][usize::from(x[3])]
            ^ t[3][usize::from(x[4])]
            ^ t[2][usize::from(x[5])]
            ^ t[1][usize::from(x[6])]
            ^ t[0][usize::from(x[7])];
    }
    for &b in blocks.remainder() {
        crc = (crc >> 8) ^ t[0][usize::from(crc as u8 ^ b)];
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition of §5.4, one bit at a time.
    fn bitwise(mut crc: u64, bytes: &[u8]) -> u64 {
        for &b in bytes {
            crc ^= u64::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 { (crc >> 1) ^ FINGERPRINT_SEED } else { crc >> 1 };
            }
        }
        crc
    }

    #[test]
    fn matches_every_spec_test_vector() {
        assert_eq!(fingerprint(b""), 0xA795_D0F2_9B4D_CDF8);
        assert_eq!(fingerprint(b"123456789"), 0x69BC_7A5D_9767_AF72);
        assert_eq!(fingerprint(b"a"), 0xD62B_AFC9_4E21_52F3);
        assert_eq!(fingerprint(&[0u8; 8]), 0x17F9_BFD1_A8E8_8335);
        assert_eq!(fingerprint(b"Hello World!\0"), 0x0555_1369_0431_935A);
    }

    #[test]
    fn slice_by_8_equals_the_bitwise_definition() {
        let data: Vec<u8> = (0..200u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        for len in 0..data.len() {
            assert_eq!(fingerprint(&data[..len]), bitwise(FINGERPRINT_SEED, &data[..len]), "len {len}");
        }
    }

    #[test]
    fn chaining_equals_fingerprint_of_the_concatenation() {
        let data: Vec<u8> = (0..100u8).map(|i| i.wrapping_mul(37) ^ 0x5a).collect();
        let whole = fingerprint(&data);
        for split in 0..=data.len() {
            assert_eq!(fingerprint_continue(fingerprint(&data[..split]), &data[split..]), whole);
        }
        // Three pieces, as a vote is checksummed across its internal buffers.
        let (a, rest) = data.split_at(13);
        let (b, c) = rest.split_at(50);
        assert_eq!(fingerprint_continue(fingerprint_continue(fingerprint(a), b), c), whole);
    }
}
