//! TFRecord frames, as TensorFlow's event files hold them: a little-endian `u64` length,
//! the masked CRC-32C of those 8 bytes, the data, and the masked CRC-32C of the data.
//! Both CRCs are checked.

use std::io::{self, Read};

/// The largest record read (an event holding an image is a few MiB at most; a bad
/// length must not make us allocate gigabytes).
pub const MAX_RECORD: u64 = 256 * 1024 * 1024;

/// CRC-32C masked as TFRecord stores it.
pub fn masked_crc(data: &[u8]) -> u32 {
    let crc = crc32c::crc32c(data);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// Why a record could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    /// The file ends inside a record (a writer still writing it, or a cut file).
    #[error("the file ends inside the record at byte {offset} (a writer may still be writing it)")]
    Truncated {
        /// Where the record starts.
        offset: u64,
    },
    /// The length's CRC does not match: nothing after this point can be trusted.
    #[error(
        "the length of the record at byte {offset} fails its CRC: the rest of the file is unreadable"
    )]
    BadLength {
        /// Where the record starts.
        offset: u64,
    },
    /// A length beyond [`MAX_RECORD`].
    #[error("the record at byte {offset} says it is {len} bytes long, more than {MAX_RECORD}")]
    TooLong {
        /// Where the record starts.
        offset: u64,
        /// The length it gave.
        len: u64,
    },
    /// The data's CRC does not match (the next record can still be read).
    #[error("the data of the record at byte {offset} fails its CRC")]
    BadData {
        /// Where the record starts.
        offset: u64,
    },
    /// Reading failed.
    #[error("cannot read the record at byte {offset}: {message}")]
    Io {
        /// Where the record starts.
        offset: u64,
        /// The reason.
        message: String,
    },
}

impl FrameError {
    /// Whether records after this one can still be read.
    pub fn can_go_on(&self) -> bool {
        matches!(self, FrameError::BadData { .. })
    }
}

/// Reads the records of a stream one after another.
#[derive(Debug)]
pub struct Records<R> {
    inner: R,
    offset: u64,
    buf: Vec<u8>,
    done: bool,
}

impl<R: Read> Records<R> {
    /// Records of `inner` (buffer it: records are read in small pieces).
    pub fn new(inner: R) -> Records<R> {
        Records { inner, offset: 0, buf: Vec::new(), done: false }
    }

    /// Bytes read so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The next record's data, `None` at a clean end of the stream. After an error
    /// that [`FrameError::can_go_on`] says ends the stream, `None` follows.
    pub fn next_record(&mut self) -> Option<Result<&[u8], FrameError>> {
        if self.done {
            return None;
        }
        let start = self.offset;
        let mut header = [0u8; 12];
        match read_full(&mut self.inner, &mut header) {
            Ok(0) => {
                self.done = true;
                return None;
            }
            Ok(12) => {}
            Ok(_) => return Some(Err(self.stop(FrameError::Truncated { offset: start }))),
            Err(e) => return Some(Err(self.stop(io_error(start, &e)))),
        }
        let len_bytes: [u8; 8] = header[..8].try_into().unwrap_or_default();
        let len_crc = u32::from_le_bytes(header[8..].try_into().unwrap_or_default());
        if masked_crc(&len_bytes) != len_crc {
            return Some(Err(self.stop(FrameError::BadLength { offset: start })));
        }
        let len = u64::from_le_bytes(len_bytes);
        if len > MAX_RECORD {
            return Some(Err(self.stop(FrameError::TooLong { offset: start, len })));
        }
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        self.buf.resize(len + 4, 0);
        match read_full(&mut self.inner, &mut self.buf) {
            Ok(n) if n == len + 4 => {}
            Ok(_) => return Some(Err(self.stop(FrameError::Truncated { offset: start }))),
            Err(e) => return Some(Err(self.stop(io_error(start, &e)))),
        }
        self.offset += 12 + len as u64 + 4;
        let data_crc = u32::from_le_bytes(self.buf[len..].try_into().unwrap_or_default());
        if masked_crc(&self.buf[..len]) != data_crc {
            return Some(Err(FrameError::BadData { offset: start }));
        }
        Some(Ok(&self.buf[..len]))
    }

    fn stop(&mut self, e: FrameError) -> FrameError {
        self.done = true;
        e
    }
}

fn io_error(offset: u64, e: &io::Error) -> FrameError {
    FrameError::Io { offset, message: e.to_string() }
}

/// Reads until `buf` is full or the stream ends; the bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// One record framed as TFRecord (for writing event files in tests and benchmarks).
pub fn frame(data: &[u8]) -> Vec<u8> {
    let len = (data.len() as u64).to_le_bytes();
    let mut out = Vec::with_capacity(data.len() + 16);
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc(data).to_le_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(bytes: &[u8]) -> Vec<Result<Vec<u8>, FrameError>> {
        let mut r = Records::new(bytes);
        let mut out = Vec::new();
        while let Some(x) = r.next_record() {
            out.push(x.map(<[u8]>::to_vec));
        }
        out
    }

    #[test]
    fn reads_frames_and_checks_crcs() {
        let mut file = frame(b"one");
        file.extend(frame(b""));
        file.extend(frame(b"three"));
        assert_eq!(all(&file), vec![Ok(b"one".to_vec()), Ok(vec![]), Ok(b"three".to_vec())]);

        // A flipped data byte: that record fails, the next is read.
        let mut bad = file.clone();
        bad[12] ^= 1;
        let got = all(&bad);
        assert_eq!(got[0], Err(FrameError::BadData { offset: 0 }));
        assert_eq!(got[1], Ok(vec![]));
        assert_eq!(got.len(), 3);

        // A flipped length byte: the rest cannot be trusted.
        let mut bad = file.clone();
        bad[0] ^= 1;
        assert_eq!(all(&bad), vec![Err(FrameError::BadLength { offset: 0 })]);

        // A cut file: the records before, then where it was cut.
        let cut = &file[..file.len() - 3];
        let got = all(cut);
        assert_eq!(got.len(), 3);
        assert_eq!(got[2], Err(FrameError::Truncated { offset: 35 }));
    }

    #[test]
    fn the_mask_is_tensorflows() {
        // An empty record as TensorFlow writes it: length 0, then its CRCs.
        let f = frame(b"");
        assert_eq!(&f[8..12], &masked_crc(&[0; 8]).to_le_bytes());
        assert_eq!(masked_crc(b""), 0xa282_ead8);
    }
}
