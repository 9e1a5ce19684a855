//! Writing text into an encoder's output buffer without `core::fmt`.

/// Appends text to an encoder's output buffer: integers in decimal, strings, characters.
///
/// `writeln!(out, "{} => {}", letter, votes)` goes through `core::fmt`, which costs more
/// than the rest of a simple job's path; these methods write the same bytes about three
/// times as fast (integers through the [`itoa`](https://docs.rs/itoa) crate; `cargo bench
/// --bench hot_path -- encode`). They are in `wallaroo::prelude`, implemented for the
/// `&mut Vec<u8>` an `#[encoder]` gets.
///
/// ```
/// use wallaroo_core::PushText; // in an application: `use wallaroo::prelude::*;`
///
/// pub struct LetterAndVotes { letter: u8, votes: u64 }
///
/// /// `"a => 12\n"` (annotated `#[encoder]` in an application).
/// fn encode(total: &LetterAndVotes, out: &mut Vec<u8>) {
///     out.push_char(total.letter as char);
///     out.push_str(" => ");
///     out.push_int(total.votes);
///     out.push(b'\n');
/// }
///
/// let mut out = Vec::new();
/// encode(&LetterAndVotes { letter: b'a', votes: 12 }, &mut out);
/// assert_eq!(out, b"a => 12\n");
///
/// out.clear();
/// out.push_int(-7i32);
/// out.push_str(" and ");
/// out.push_int(u64::MAX);
/// out.push_char('é');
/// out.push_bytes(b"\n");
/// assert_eq!(out, "-7 and 18446744073709551615é\n".as_bytes());
/// ```
///
/// A byte is `Vec`'s own `push`. Floats have no method: encoders usually want a fixed number
/// of decimals, which is `write!(out, "{:.2}", x)` (with `std::io::Write` in scope).
pub trait PushText {
    /// Appends `n` in decimal, with a `-` if negative: what `write!(out, "{n}")` writes.
    fn push_int(&mut self, n: impl Integer);
    /// Appends the UTF-8 bytes of `s`.
    fn push_str(&mut self, s: &str);
    /// Appends the UTF-8 encoding of `c`: one byte for ASCII, up to four otherwise, as
    /// `write!(out, "{c}")` does (`b'\xe9' as char` is `é`, two bytes).
    fn push_char(&mut self, c: char);
    /// Appends `bytes` as they are (`extend_from_slice`, under a name that reads with the
    /// others).
    fn push_bytes(&mut self, bytes: &[u8]);
}

impl PushText for Vec<u8> {
    #[inline]
    fn push_int(&mut self, n: impl Integer) {
        let mut buffer = itoa::Buffer::new();
        self.extend_from_slice(n.format(&mut buffer).as_bytes());
    }

    #[inline]
    fn push_str(&mut self, s: &str) {
        self.extend_from_slice(s.as_bytes());
    }

    #[inline]
    fn push_char(&mut self, c: char) {
        if c.is_ascii() {
            self.push(c as u8);
        } else {
            self.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
        }
    }

    #[inline]
    fn push_bytes(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// A primitive integer type, signed or unsigned, 8 to 128 bits: what
/// [`PushText::push_int`] takes. Sealed: implemented for the primitive integers only.
pub trait Integer: sealed::Sealed + Copy {
    /// Formats `self` in decimal into `buffer`.
    #[doc(hidden)]
    fn format(self, buffer: &mut itoa::Buffer) -> &str;
}

mod sealed {
    pub trait Sealed {}
}

macro_rules! integers {
    ($($t:ty)*) => {$(
        impl sealed::Sealed for $t {}
        impl Integer for $t {
            #[inline]
            fn format(self, buffer: &mut itoa::Buffer) -> &str {
                buffer.format(self)
            }
        }
    )*};
}

integers!(i8 i16 i32 i64 i128 isize u8 u16 u32 u64 u128 usize);

#[cfg(test)]
mod tests {
    use super::*;

    fn int(n: impl Integer + std::fmt::Display) -> Vec<u8> {
        let mut out = b"[".to_vec();
        out.push_int(n);
        assert_eq!(out[1..], *n.to_string().as_bytes(), "{n} as fmt writes it");
        out
    }

    #[test]
    fn integers_are_written_as_fmt_writes_them() {
        assert_eq!(int(0u64), b"[0");
        assert_eq!(int(0i32), b"[0");
        assert_eq!(int(7u8), b"[7");
        assert_eq!(int(-1i8), b"[-1");
        assert_eq!(int(-42i64), b"[-42");
        assert_eq!(int(u64::MAX), b"[18446744073709551615");
        assert_eq!(int(i64::MIN), b"[-9223372036854775808");
        assert_eq!(int(i64::MAX), b"[9223372036854775807");
        assert_eq!(int(u128::MAX), b"[340282366920938463463374607431768211455");
        assert_eq!(int(i128::MIN), b"[-170141183460469231731687303715884105728");
        int(usize::MAX);
        int(isize::MIN);
        int(i16::MIN);
        for n in [9u32, 10, 99, 100, 999_999, 1_000_000, u32::MAX] {
            int(n);
        }
    }

    #[test]
    fn strings_chars_and_bytes_are_appended_as_utf8() {
        let mut out = b"x".to_vec();
        out.push_str(" => ");
        out.push_str("");
        out.push_char('a');
        out.push_char(0xe9u8 as char);
        out.push_char('€');
        out.push_char('🦘');
        out.push_bytes(&[0, 0xff]);
        let mut expected = b"x => a".to_vec();
        expected.extend_from_slice("é€🦘".as_bytes());
        expected.extend_from_slice(&[0, 0xff]);
        assert_eq!(out, expected);
    }

    #[test]
    fn an_encoder_line_matches_writeln() {
        use std::io::Write;
        for letter in [b'a', b'!', 0xe9] {
            for votes in [0u64, 1, 12, u64::MAX] {
                let mut fmt = Vec::new();
                writeln!(fmt, "{} => {}", letter as char, votes).unwrap();
                let mut pushed = Vec::new();
                pushed.push_char(letter as char);
                pushed.push_str(" => ");
                pushed.push_int(votes);
                pushed.push(b'\n');
                assert_eq!(pushed, fmt);
            }
        }
    }
}
