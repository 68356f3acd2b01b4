//! Buckets that can no longer change, kept between requests, for the one path that has to read
//! every raw row of a range: a database of the older tool that the agent has not upgraded (no
//! instants, no rollups). Its writer, if any, appends the present only, so a bucket that ended
//! well before the newest cycle holds its final rows; a request then reads only the buckets it
//! has not seen closed before (normally the newest one or two). Everything is forgotten when the
//! file is another one (inode), when rows went away, or when the schema changes (an upgrade
//! brings instants and rollups, and this path is not used any more).

use std::collections::BTreeMap;

use hb_store::BucketAcc;

/// At most this many buckets are kept (ten ranges of 31 buckets, with room to spare); the
/// oldest go first.
const MAX_BUCKETS: usize = 1_024;

/// The file and table the buckets were read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Origin {
    pub dev: u64,
    pub ino: u64,
    /// The largest rowid of `monitoring_cycles` must not go down.
    pub max_rowid: i64,
}

#[derive(Debug, Default)]
pub(crate) struct ClosedBuckets {
    origin: Option<Origin>,
    /// (width_s, start_s) -> the bucket's aggregates.
    buckets: BTreeMap<(i64, i64), BucketAcc>,
}

impl ClosedBuckets {
    /// Forgets everything unless `origin` is the file and table seen so far.
    pub(crate) fn check(&mut self, origin: Origin) {
        let same = self.origin.is_some_and(|o| {
            o.dev == origin.dev && o.ino == origin.ino && origin.max_rowid >= o.max_rowid
        });
        if !same {
            self.buckets.clear();
        }
        self.origin = Some(origin);
    }

    pub(crate) fn get(&self, width_s: i64, start_s: i64) -> Option<&BucketAcc> {
        self.buckets.get(&(width_s, start_s))
    }

    pub(crate) fn insert(&mut self, width_s: i64, start_s: i64, bucket: BucketAcc) {
        self.buckets.insert((width_s, start_s), bucket);
        while self.buckets.len() > MAX_BUCKETS {
            let oldest = self.buckets.keys().min_by_key(|(_, start)| *start).copied();
            match oldest {
                Some(key) => {
                    self.buckets.remove(&key);
                }
                None => break,
            }
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.buckets.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn another_file_or_fewer_rows_forget_everything() {
        let mut c = ClosedBuckets::default();
        let o = Origin {
            dev: 1,
            ino: 2,
            max_rowid: 10,
        };
        c.check(o);
        c.insert(60, 0, BucketAcc::default());
        c.check(Origin { max_rowid: 11, ..o });
        assert!(c.get(60, 0).is_some(), "rows appended: kept");
        c.check(Origin { max_rowid: 5, ..o });
        assert!(c.get(60, 0).is_none(), "rows went away");
        c.insert(60, 0, BucketAcc::default());
        c.check(Origin { ino: 3, ..o });
        assert!(c.get(60, 0).is_none(), "another file");
    }

    #[test]
    fn the_oldest_buckets_go_first() {
        let mut c = ClosedBuckets::default();
        for i in 0..(MAX_BUCKETS as i64 + 5) {
            c.insert(60, i * 60, BucketAcc::default());
        }
        assert_eq!(c.len(), MAX_BUCKETS);
        assert!(c.get(60, 0).is_none());
        assert!(c.get(60, (MAX_BUCKETS as i64 + 4) * 60).is_some());
    }
}
