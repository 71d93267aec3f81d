//! A fast keyed hash of byte strings, for the hash tables of the hot paths: the column writer's
//! dictionaries and the decoder's check for repeated map keys. Each table takes a random seed
//! ([`random_seed`]), so that values crafted to collide cannot pile up in one slot.

/// A seed drawn from the process's random source.
pub(crate) fn random_seed() -> u64 {
    use std::hash::BuildHasher;
    std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64)
}

/// A hash of `v` under `seed`: its 8-byte words mixed in two at a time with a multiply-fold
/// each (so one multiply per 16 bytes, and one for values of up to 16 bytes), the last pair
/// read ending at the value's end (overlapping the one before it), so that nothing is copied.
/// The seed enters both factors of every multiply: a value whose word zeroes a factor known
/// in advance would otherwise make every value that differs only in the other word collide.
/// A final multiply spreads the bits of the last one over the low bits that pick a table's
/// slot: without it, values differing only in the high bytes of a word (integers in steps of
/// 64, the last digits of 12-byte strings) crowded some slots and left others empty.
#[inline]
pub(crate) fn bytes(seed: u64, v: &[u8]) -> u64 {
    let n = v.len();
    let h = seed ^ (n as u64);
    let other = seed.rotate_left(29) ^ 0x9e37_79b9_7f4a_7c15;
    let h = match n {
        0..=8 => mix(h, head(v) ^ other),
        9..=16 => mix(h ^ word(v), word(&v[n - 8..]) ^ other),
        _ => {
            let mut h = h;
            let mut rest = v;
            while rest.len() > 16 {
                h = mix(h ^ word(rest), word(&rest[8..]) ^ other);
                rest = &rest[16..];
            }
            mix(h ^ word(&v[n - 16..]), word(&v[n - 8..]) ^ other)
        }
    };
    let h = (h ^ (h >> 32)).wrapping_mul(0xd6e8_feb8_6659_fd93);
    h ^ (h >> 32)
}

#[inline(always)]
fn mix(a: u64, b: u64) -> u64 {
    let m =
        u128::from(a ^ 0x2d35_8dcc_aa6c_78a5).wrapping_mul(u128::from(b ^ 0x8bb8_4b93_962e_acc9));
    (m as u64) ^ ((m >> 64) as u64)
}

/// The first 8 bytes as a word, read without a copy: with the length, all of a value of up to
/// 8 bytes (one of 4 to 7 bytes as two overlapping 4-byte words, one of 1 to 3 bytes as its
/// first, middle and last byte).
#[inline(always)]
pub(crate) fn head(v: &[u8]) -> u64 {
    let n = v.len();
    if n >= 8 {
        word(v)
    } else if n >= 4 {
        u64::from(half(v)) | (u64::from(half(&v[n - 4..])) << 32)
    } else if n > 0 {
        u64::from(v[0]) | (u64::from(v[n / 2]) << 8) | (u64::from(v[n - 1]) << 16)
    } else {
        0
    }
}

/// The first 8 bytes of `v` (which has at least 8) as a little-endian word.
#[inline(always)]
fn word(v: &[u8]) -> u64 {
    v.first_chunk::<8>().map_or(0, |w| u64::from_le_bytes(*w))
}

/// The first 4 bytes of `v` (which has at least 4) as a little-endian word.
#[inline(always)]
fn half(v: &[u8]) -> u32 {
    v.first_chunk::<4>().map_or(0, |w| u32::from_le_bytes(*w))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_bytes_hash_equal_and_lengths_tell_apart() {
        let seed = random_seed();
        for v in [
            &b""[..],
            b"a",
            b"abc",
            b"abcd",
            b"abcdefg",
            b"abcdefgh",
            b"abcdefghijklmnopq",
        ] {
            // Only the value's own bytes are read, whatever lies around it.
            let (mut a, mut b) = (vec![0u8; 8], vec![0xffu8; 8]);
            a.extend_from_slice(v);
            b.extend_from_slice(v);
            a.extend_from_slice(&[1; 8]);
            b.extend_from_slice(&[2; 8]);
            let n = v.len();
            assert_eq!(bytes(seed, &a[8..8 + n]), bytes(seed, &b[8..8 + n]));
        }
        // Values that share their words but not their length (zeros) hash apart.
        assert_ne!(bytes(seed, &[0; 8]), bytes(seed, &[0; 16]));
        assert_ne!(bytes(seed, b"ab"), bytes(seed, b"abb"));
        assert_ne!(bytes(1, b"key"), bytes(2, b"key"));
    }

    #[test]
    fn every_byte_counts_and_values_spread() {
        // Values of 1..=80 bytes, each byte flipped in turn: each flip changes the hash, and
        // the low bits (a table's slot) of a thousand values are spread over the slots.
        let seed = random_seed();
        for n in 1..=80 {
            let v: Vec<u8> = (0..n as u8).collect();
            let h = bytes(seed, &v);
            for i in 0..n {
                let mut w = v.clone();
                w[i] ^= 0x40;
                assert_ne!(bytes(seed, &w), h, "{n} bytes, byte {i}");
            }
        }
        // (16 a slot on average: a random hash leaves one empty or one past 48 about once in
        // 10^5 and 10^10 runs.)
        let spread = |values: &mut dyn Iterator<Item = Vec<u8>>, what: &str| {
            let mut slots = [0u32; 64];
            for v in values {
                slots[(bytes(seed, &v) & 63) as usize] += 1;
            }
            assert!(
                slots.iter().all(|&c| (1..=48).contains(&c)),
                "{what}: {slots:?}"
            );
        };
        for n in [5, 12, 24, 40] {
            spread(
                &mut (0..1024u32).map(|k| {
                    let mut v = vec![b'x'; n];
                    v[n - 4..].copy_from_slice(&k.to_le_bytes());
                    v
                }),
                &format!("{n} bytes"),
            );
        }
        for step in [1i64, 64, 1000, 4096] {
            spread(
                &mut (0..1024).map(|k| (1_764_000_000_000 + k * step).to_le_bytes().to_vec()),
                &format!("integers {step} apart"),
            );
        }
    }
}
