//! The in-memory request log: append-only text addressed by absolute byte offsets that only grow,
//! of which only the newest `cap_bytes` are kept (whole lines are dropped from the front).
//!
//! A reader asks for everything from offset `N` and gets the text from `max(N, start)` up to the
//! end, plus the new end offset to ask from next time. When `N < start` the lines between were
//! dropped: the answer says `truncated` so the client can show a gap.

use std::collections::VecDeque;

/// 1 MiB: hours of a demo's traffic, a bounded amount of memory.
pub const DEFAULT_CAP_BYTES: usize = 1 << 20;

#[derive(Debug)]
pub struct RequestLog {
    /// Absolute offset of `buf[0]`.
    start: u64,
    buf: VecDeque<u8>,
    cap_bytes: usize,
}

/// What a read returns; `offset` is where the next read should start.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LogChunk {
    pub offset: u64,
    /// Absolute offset of the first byte of `text`.
    pub start: u64,
    /// True when the requested offset had already been dropped (text starts later than asked).
    pub truncated: bool,
    pub text: String,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("offset {requested} is beyond the end of the log ({end})")]
pub struct BeyondEnd {
    pub requested: u64,
    pub end: u64,
}

impl RequestLog {
    pub fn new(cap_bytes: usize) -> Self {
        RequestLog {
            start: 0,
            buf: VecDeque::new(),
            cap_bytes,
        }
    }

    pub fn end(&self) -> u64 {
        self.start + self.buf.len() as u64
    }

    /// Appends one line (a trailing newline is added; embedded newlines are flattened so one
    /// request stays one line).
    pub fn push_line(&mut self, line: &str) {
        self.buf.extend(
            line.bytes()
                .map(|b| if b == b'\n' || b == b'\r' { b' ' } else { b }),
        );
        self.buf.push_back(b'\n');
        while self.buf.len() > self.cap_bytes {
            let cut = self
                .buf
                .iter()
                .position(|&b| b == b'\n')
                .map_or(self.buf.len(), |p| p + 1);
            self.buf.drain(..cut);
            self.start += cut as u64;
        }
    }

    pub fn read_from(&self, offset: u64) -> Result<LogChunk, BeyondEnd> {
        let end = self.end();
        if offset > end {
            return Err(BeyondEnd {
                requested: offset,
                end,
            });
        }
        let from = offset.max(self.start);
        let skip = usize::try_from(from - self.start).unwrap_or(usize::MAX);
        let bytes: Vec<u8> = self.buf.iter().skip(skip).copied().collect();
        Ok(LogChunk {
            offset: end,
            start: from,
            truncated: offset < self.start,
            text: String::from_utf8_lossy(&bytes).into_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_from_offsets() {
        let mut log = RequestLog::new(1024);
        log.push_line("one");
        let first = log.read_from(0).expect("in range");
        assert_eq!(first.text, "one\n");
        assert_eq!(first.offset, 4);
        log.push_line("two");
        let next = log.read_from(first.offset).expect("in range");
        assert_eq!(next.text, "two\n");
        assert_eq!(next.offset, 8);
        assert!(!next.truncated);
        assert_eq!(log.read_from(8).expect("at end").text, "");
        assert_eq!(
            log.read_from(9),
            Err(BeyondEnd {
                requested: 9,
                end: 8
            })
        );
    }

    #[test]
    fn drops_whole_lines_and_keeps_offsets_monotonic() {
        let mut log = RequestLog::new(10);
        log.push_line("aaaa");
        log.push_line("bbbb");
        log.push_line("cccc");
        assert_eq!(log.end(), 15);
        let chunk = log.read_from(0).expect("in range");
        assert!(chunk.truncated);
        assert_eq!(chunk.start, 5);
        assert_eq!(chunk.text, "bbbb\ncccc\n");
        let chunk = log.read_from(12).expect("in range");
        assert!(!chunk.truncated);
        assert_eq!(chunk.text, "cc\n");
    }

    #[test]
    fn newlines_inside_a_line_are_flattened() {
        let mut log = RequestLog::new(100);
        log.push_line("a\nb");
        assert_eq!(log.read_from(0).expect("in range").text, "a b\n");
    }
}
