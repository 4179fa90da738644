//! Incremental chunked-body scanner (RFC 9112 §7.1).
//!
//! The proxy forwards a chunked body exactly as it arrived, so this decoder does not
//! produce the payload: it validates the framing and finds the exact byte where the body
//! (including the trailer section) ends. Feed it whatever bytes arrived, in any split —
//! one byte at a time works — and forward the `consumed` prefix it reports.
//!
//! ```text
//! chunked-body   = *chunk last-chunk trailer-section CRLF
//! chunk          = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
//! chunk-size     = 1*HEXDIG
//! last-chunk     = 1*("0") [ chunk-ext ] CRLF
//! chunk-ext      = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
//! chunk-ext-val  = token / quoted-string
//! trailer-section = *( field-line CRLF )
//! ```

use super::head::is_tchar;

/// Longest chunk-size line (size plus extensions) accepted, in bytes.
pub const MAX_CHUNK_LINE: usize = 4096;
/// Largest trailer section accepted, in bytes.
pub const MAX_TRAILERS: usize = 16 * 1024;

/// What is wrong with a chunked body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    /// The chunk-size is missing or not hexadecimal.
    #[error("invalid chunk size")]
    InvalidSize,
    /// The chunk-size does not fit in 64 bits.
    #[error("chunk size overflow")]
    SizeOverflow,
    /// A chunk extension is not `;name[=value]`.
    #[error("invalid chunk extension")]
    InvalidExtension,
    /// A CRLF was expected (after the size line, the chunk data or a trailer line).
    #[error("missing CRLF")]
    MissingCrlf,
    /// A trailer field line is malformed.
    #[error("invalid trailer field")]
    InvalidTrailer,
    /// The chunk-size line is longer than [`MAX_CHUNK_LINE`].
    #[error("chunk size line too long")]
    LineTooLong,
    /// The trailer section is larger than [`MAX_TRAILERS`].
    #[error("trailer section too large")]
    TrailersTooLarge,
}

/// The result of one [`ChunkedDecoder::advance`] call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Progress {
    /// How many input bytes belong to the body (forward exactly these).
    pub consumed: usize,
    /// How many of the consumed bytes are chunk data (payload), the rest being framing.
    pub data: usize,
    /// The body ended with the last consumed byte; bytes after it are the next message.
    pub done: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the first hex digit of a chunk-size.
    SizeStart,
    /// Inside the hex digits.
    Size,
    /// BWS after the size: only more BWS or `;` may follow (RFC 9112 §7.1.1).
    SizeBws,
    /// After `;`, BWS then the extension name.
    ExtBeforeName,
    ExtName,
    /// BWS after a name: `=`, `;` or CR.
    ExtAfterName,
    /// After `=`, BWS then a token or quoted-string.
    ExtBeforeValue,
    ExtValue,
    ExtQuoted,
    ExtQuotedEscape,
    /// After a value: BWS, `;` or CR.
    ExtAfterValue,
    /// CR of the size line seen, LF expected.
    SizeLf,
    Data,
    DataCr,
    DataLf,
    /// Start of a trailer line (or the final CRLF).
    TrailerStart,
    TrailerName,
    TrailerValue,
    TrailerLf,
    FinalLf,
    Done,
}

/// The chunked-body state machine. One per message body.
#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    state: State,
    /// Size of the current chunk while parsing it; remaining data bytes in `Data`.
    size: u64,
    /// Bytes of the current size line so far.
    line: usize,
    /// Bytes of the trailer section so far.
    trailers: usize,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        Self::new()
    }
}

fn is_ws(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// `qdtext` and the bytes allowed after a backslash in a quoted-string (RFC 9110 §5.6.4).
fn is_qdtext(b: u8) -> bool {
    matches!(b, b'\t' | b' ' | 0x21 | 0x23..=0x5B | 0x5D..=0x7E | 0x80..=0xFF)
}

/// `field-vchar`, SP and HTAB: what a field value may contain (RFC 9110 §5.5).
fn is_field_byte(b: u8) -> bool {
    matches!(b, b'\t' | b' '..=0x7E | 0x80..=0xFF)
}

impl ChunkedDecoder {
    /// A decoder at the start of a chunked body.
    pub fn new() -> Self {
        ChunkedDecoder {
            state: State::SizeStart,
            size: 0,
            line: 0,
            trailers: 0,
        }
    }

    /// True once the whole body (last chunk, trailers, final CRLF) has been seen.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Scan `input`, the next bytes of the body. Consumes bytes up to the end of the
    /// body (never past it) or all of `input`. After an error the decoder must not be
    /// used again; after `done`, it consumes nothing.
    pub fn advance(&mut self, input: &[u8]) -> Result<Progress, ChunkError> {
        let mut p = Progress::default();
        let mut i = 0;
        while i < input.len() {
            if self.state == State::Done {
                break;
            }
            if self.state == State::Data {
                // Bulk: the payload is not looked at.
                let avail = (input.len() - i) as u64;
                let take = avail.min(self.size) as usize;
                i += take;
                p.data += take;
                self.size -= take as u64;
                if self.size == 0 {
                    self.state = State::DataCr;
                }
                continue;
            }
            let b = input[i];
            i += 1;
            self.byte(b)?;
        }
        p.consumed = i;
        p.done = self.state == State::Done;
        Ok(p)
    }

    fn line_byte(&mut self) -> Result<(), ChunkError> {
        self.line += 1;
        if self.line > MAX_CHUNK_LINE {
            return Err(ChunkError::LineTooLong);
        }
        Ok(())
    }

    fn trailer_byte(&mut self) -> Result<(), ChunkError> {
        self.trailers += 1;
        if self.trailers > MAX_TRAILERS {
            return Err(ChunkError::TrailersTooLarge);
        }
        Ok(())
    }

    fn byte(&mut self, b: u8) -> Result<(), ChunkError> {
        use State::*;
        match self.state {
            SizeStart | Size | SizeBws | ExtBeforeName | ExtName | ExtAfterName
            | ExtBeforeValue | ExtValue | ExtQuoted | ExtQuotedEscape | ExtAfterValue => {
                self.line_byte()?
            }
            TrailerStart | TrailerName | TrailerValue | TrailerLf | FinalLf => {
                self.trailer_byte()?
            }
            _ => {}
        }
        self.state = match (self.state, b) {
            (SizeStart, _) | (Size, _) if b.is_ascii_hexdigit() => {
                let digit = (b as char).to_digit(16).unwrap_or(0) as u64;
                // Chunk-size overflow → 400 (RFC 9112 §7.1: recipients MUST anticipate
                // large hex numerals and protect against overflow).
                self.size = self
                    .size
                    .checked_mul(16)
                    .and_then(|s| s.checked_add(digit))
                    .ok_or(ChunkError::SizeOverflow)?;
                Size
            }
            (SizeStart, _) => return Err(ChunkError::InvalidSize),
            (Size, b'\r') => SizeLf,
            (Size, b';') | (SizeBws, b';') => ExtBeforeName,
            (Size, _) if is_ws(b) => SizeBws,
            (SizeBws, _) if is_ws(b) => SizeBws,
            (Size, _) => return Err(ChunkError::InvalidSize),
            // BWS is only allowed before `;` (chunk-ext grammar), not before CRLF.
            (SizeBws, _) => return Err(ChunkError::InvalidExtension),

            (ExtBeforeName, _) if is_ws(b) => ExtBeforeName,
            (ExtBeforeName, _) if is_tchar(b) => ExtName,
            (ExtName, _) if is_tchar(b) => ExtName,
            (ExtName, _) | (ExtAfterName, _) if is_ws(b) => ExtAfterName,
            (ExtName, b'=') | (ExtAfterName, b'=') => ExtBeforeValue,
            (ExtName, b';') | (ExtAfterName, b';') => ExtBeforeName,
            (ExtName, b'\r') | (ExtAfterName, b'\r') => SizeLf,
            (ExtBeforeValue, _) if is_ws(b) => ExtBeforeValue,
            (ExtBeforeValue, b'"') => ExtQuoted,
            (ExtBeforeValue, _) if is_tchar(b) => ExtValue,
            (ExtValue, _) if is_tchar(b) => ExtValue,
            (ExtValue, _) if is_ws(b) => ExtAfterValue,
            (ExtValue, b';') => ExtBeforeName,
            (ExtValue, b'\r') => SizeLf,
            (ExtQuoted, b'"') => ExtAfterValue,
            (ExtQuoted, b'\\') => ExtQuotedEscape,
            (ExtQuoted, _) if is_qdtext(b) => ExtQuoted,
            (ExtQuotedEscape, _) if is_qdtext(b) || b == b'"' || b == b'\\' => ExtQuoted,
            (ExtAfterValue, _) if is_ws(b) => ExtAfterValue,
            (ExtAfterValue, b';') => ExtBeforeName,
            (ExtAfterValue, b'\r') => SizeLf,
            (
                ExtBeforeName | ExtName | ExtAfterName | ExtBeforeValue | ExtValue | ExtQuoted
                | ExtQuotedEscape | ExtAfterValue,
                _,
            ) => return Err(ChunkError::InvalidExtension),

            (SizeLf, b'\n') => {
                self.line = 0;
                if self.size == 0 {
                    TrailerStart
                } else {
                    Data
                }
            }
            (SizeLf, _) => return Err(ChunkError::MissingCrlf),
            (DataCr, b'\r') => DataLf,
            (DataLf, b'\n') => SizeStart,
            (DataCr | DataLf, _) => return Err(ChunkError::MissingCrlf),

            (TrailerStart, b'\r') => FinalLf,
            (TrailerStart, _) if is_tchar(b) => TrailerName,
            // Empty name, obs-fold or anything else at the start of a trailer line.
            (TrailerStart, _) => return Err(ChunkError::InvalidTrailer),
            (TrailerName, _) if is_tchar(b) => TrailerName,
            (TrailerName, b':') => TrailerValue,
            // Includes whitespace before the colon (RFC 9112 §5.1).
            (TrailerName, _) => return Err(ChunkError::InvalidTrailer),
            (TrailerValue, b'\r') => TrailerLf,
            (TrailerValue, _) if is_field_byte(b) => TrailerValue,
            (TrailerValue, _) => return Err(ChunkError::InvalidTrailer),
            (TrailerLf, b'\n') => TrailerStart,
            (FinalLf, b'\n') => Done,
            (TrailerLf | FinalLf, _) => return Err(ChunkError::MissingCrlf),

            (Data | Done, _) => unreachable!("handled in advance"),
        };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feed `input` in one piece and byte by byte; both must agree.
    fn both(input: &[u8]) -> Result<Progress, ChunkError> {
        let whole = ChunkedDecoder::new().advance(input);
        let mut d = ChunkedDecoder::new();
        let mut acc = Progress::default();
        let mut bytewise = Ok(acc);
        for b in input {
            match d.advance(std::slice::from_ref(b)) {
                Ok(p) => {
                    acc.consumed += p.consumed;
                    acc.data += p.data;
                    acc.done = p.done;
                    bytewise = Ok(acc);
                }
                Err(e) => {
                    bytewise = Err(e);
                    break;
                }
            }
        }
        assert_eq!(whole, bytewise, "whole vs bytewise for {input:?}");
        whole
    }

    #[test]
    fn simple_body() {
        let body = b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
        let p = both(body).unwrap();
        assert_eq!(
            p,
            Progress {
                consumed: body.len(),
                data: 11,
                done: true
            }
        );
    }

    #[test]
    fn stops_at_end_of_body() {
        let mut input = b"3\r\nabc\r\n0\r\n\r\n".to_vec();
        let body_len = input.len();
        input.extend_from_slice(b"GET / HTTP/1.1\r\n");
        let p = both(&input).unwrap();
        assert_eq!(p.consumed, body_len);
        assert!(p.done);
        // After done, nothing more is consumed.
        let mut d = ChunkedDecoder::new();
        d.advance(&input).unwrap();
        assert!(d.is_done());
        assert_eq!(d.advance(b"xyz").unwrap().consumed, 0);
    }

    #[test]
    fn partial_body_is_not_done() {
        let p = both(b"a\r\n01234").unwrap();
        assert_eq!(
            p,
            Progress {
                consumed: 8,
                data: 5,
                done: false
            }
        );
    }

    #[test]
    fn extensions_and_trailers() {
        let body = b"4;name=value;flag ; q=\"a \\\" b\"\r\nwiki\r\n5 ;x=1\r\npedia\r\n\
0;last\r\nExpires: Wed, 21 Oct 2015 07:28:00 GMT\r\nX-Sum:\tabc \r\n\r\n";
        let p = both(body).unwrap();
        assert_eq!(p.consumed, body.len());
        assert_eq!(p.data, 9);
        assert!(p.done);
    }

    #[test]
    fn uppercase_hex_and_leading_zeros() {
        let mut body = b"000A\r\n".to_vec();
        body.extend_from_slice(&[b'x'; 10]);
        body.extend_from_slice(b"\r\n00\r\n\r\n");
        let p = both(&body).unwrap();
        assert_eq!(p.data, 10);
        assert!(p.done);
    }

    #[test]
    fn chunk_size_overflow() {
        // 16 hex digits fit in u64, 17 significant ones do not.
        assert_eq!(
            both(b"fffffffffffffffff\r\n"),
            Err(ChunkError::SizeOverflow)
        );
        assert!(both(b"ffffffffffffffff").is_ok());
        // Leading zeros do not count towards overflow.
        assert!(both(b"0000000000000000000001\r\nx").is_ok());
    }

    #[test]
    fn invalid_sizes() {
        assert_eq!(both(b"\r\n"), Err(ChunkError::InvalidSize));
        assert_eq!(both(b"g\r\n"), Err(ChunkError::InvalidSize));
        assert_eq!(both(b"-1\r\n"), Err(ChunkError::InvalidSize));
        assert_eq!(both(b"0x5\r\n"), Err(ChunkError::InvalidSize));
        assert_eq!(both(b"+5\r\n"), Err(ChunkError::InvalidSize));
        // Bare LF after the size.
        assert_eq!(both(b"5\nhello"), Err(ChunkError::InvalidSize));
        // Whitespace before CRLF with no extension (BWS only precedes `;`).
        assert_eq!(both(b"5 \r\n"), Err(ChunkError::InvalidExtension));
        // CR not followed by LF.
        assert_eq!(both(b"5\rhello"), Err(ChunkError::MissingCrlf));
    }

    #[test]
    fn invalid_extensions() {
        assert_eq!(both(b"5;\r\n"), Err(ChunkError::InvalidExtension));
        assert_eq!(both(b"5;=x\r\n"), Err(ChunkError::InvalidExtension));
        assert_eq!(both(b"5;a=\r\n"), Err(ChunkError::InvalidExtension));
        assert_eq!(both(b"5;a=\"x\r\n"), Err(ChunkError::InvalidExtension));
        assert_eq!(both(b"5;a=b c\r\n"), Err(ChunkError::InvalidExtension));
        assert_eq!(both(b"5;a\x00\r\n"), Err(ChunkError::InvalidExtension));
    }

    #[test]
    fn missing_crlf_after_data() {
        assert_eq!(both(b"3\r\nabcX\r\n"), Err(ChunkError::MissingCrlf));
        assert_eq!(both(b"3\r\nabc\rX"), Err(ChunkError::MissingCrlf));
        // Data longer than announced: the extra byte is where CRLF should be.
        assert_eq!(
            both(b"3\r\nabcd\r\n0\r\n\r\n"),
            Err(ChunkError::MissingCrlf)
        );
    }

    #[test]
    fn invalid_trailers() {
        assert_eq!(both(b"0\r\nX : y\r\n\r\n"), Err(ChunkError::InvalidTrailer));
        assert_eq!(both(b"0\r\n: y\r\n\r\n"), Err(ChunkError::InvalidTrailer));
        assert_eq!(
            both(b"0\r\nX: y\r\n folded\r\n\r\n"),
            Err(ChunkError::InvalidTrailer)
        );
        assert_eq!(
            both(b"0\r\nX: a\x00b\r\n\r\n"),
            Err(ChunkError::InvalidTrailer)
        );
        assert_eq!(both(b"0\r\nX: y\n\r\n"), Err(ChunkError::InvalidTrailer));
        assert_eq!(both(b"0\r\n\rX"), Err(ChunkError::MissingCrlf));
    }

    #[test]
    fn line_and_trailer_limits() {
        let mut line = b"1;".to_vec();
        line.extend(std::iter::repeat(b'a').take(MAX_CHUNK_LINE));
        assert_eq!(both(&line), Err(ChunkError::LineTooLong));
        let mut t = b"0\r\nX: ".to_vec();
        t.extend(std::iter::repeat(b'a').take(MAX_TRAILERS));
        assert_eq!(both(&t), Err(ChunkError::TrailersTooLarge));
    }

    #[test]
    fn large_chunk_split_anywhere() {
        let mut body = b"1000\r\n".to_vec();
        body.extend(std::iter::repeat(b'z').take(0x1000));
        body.extend_from_slice(b"\r\n0\r\n\r\n");
        for split in [1, 5, 6, 7, 100, 0x1000, body.len() - 1] {
            let mut d = ChunkedDecoder::new();
            let a = d.advance(&body[..split]).unwrap();
            let b = d.advance(&body[split..]).unwrap();
            assert_eq!(a.consumed + b.consumed, body.len());
            assert_eq!(a.data + b.data, 0x1000);
            assert!(!a.done && b.done, "split at {split}");
        }
    }
}
