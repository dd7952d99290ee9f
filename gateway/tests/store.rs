//! The store's guarantees, from the outside: order, ids and seqs across restarts,
//! acknowledgements, recovery from damaged files, a SIGKILL loop, eviction with exact gaps.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hazgate::store::{Lane, LedgerState, Record, Store, StoreOptions, HEADER_LEN};
use proptest::prelude::*;

const ALL: usize = usize::MAX;

fn opts(dir: &Path) -> StoreOptions {
    StoreOptions::new(dir, 64 << 20)
}

fn open(dir: &Path) -> (Store, hazgate::store::Recovery) {
    Store::open(opts(dir)).expect("open")
}

/// Deterministic content for record `id`, of varying length.
fn payload(id: u64) -> Vec<u8> {
    let len = 50 + (id.wrapping_mul(7919) % 700) as usize;
    (0..len)
        .map(|i| (id as u8).wrapping_mul(31).wrapping_add(i as u8))
        .collect()
}

fn append_t(s: &mut Store, n: u64) -> Vec<u64> {
    (0..n)
        .map(|_| {
            let id = s.next_id(Lane::Telemetry);
            let got = s
                .append(
                    Lane::Telemetry,
                    1,
                    1000 + id,
                    id as i64 * 100,
                    id as i64 * 100 + 50,
                    &payload(id),
                )
                .unwrap();
            assert_eq!(got, id);
            got
        })
        .collect()
}

fn ids(records: &[Record]) -> Vec<u64> {
    records.iter().map(|r| r.id).collect()
}

fn segs(dir: &Path, lane: Lane) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir.join(lane.dir_name()))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    v.sort();
    v
}

fn dir_size(dir: &Path) -> u64 {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                dir_size(&e.path())
            } else {
                e.metadata().unwrap().len()
            }
        })
        .sum()
}

fn check_payloads(records: &[Record]) {
    for r in records {
        assert_eq!(r.payload, payload(r.id), "payload of record {}", r.id);
    }
}

/// Leaves the store without its Drop (which syncs): what a crash leaves on disk.
fn crash(s: Store) {
    std::mem::forget(s);
}

#[test]
fn round_trip_in_order_visible_before_sync() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, rec) = open(dir.path());
    assert_eq!(rec.ledger, LedgerState::Missing);
    assert_eq!(append_t(&mut s, 3), vec![1, 2, 3]);
    // Sent as soon as written: the sync only makes them durable.
    let got = s.unsent(Lane::Telemetry, None, ALL, ALL).unwrap();
    assert_eq!(ids(&got), vec![1, 2, 3]);
    check_payloads(&got);
    assert_eq!(
        (got[1].topic, got[1].seq, got[1].min_ts, got[1].max_ts),
        (1, 1002, 200, 250)
    );
    // Alarms are visible (and durable) at once.
    let a = s.append(Lane::Alarm, 9, 77, 5, 6, b"alarm").unwrap();
    assert_eq!(a, 1, "ids are lane-local");
    assert_eq!(
        s.unsent(Lane::Alarm, None, ALL, ALL).unwrap()[0].payload,
        b"alarm"
    );
    // Limits and `after`.
    assert_eq!(
        ids(&s.unsent(Lane::Telemetry, Some(1), ALL, ALL).unwrap()),
        vec![2, 3]
    );
    assert_eq!(
        ids(&s.unsent(Lane::Telemetry, None, 2, ALL).unwrap()),
        vec![1, 2]
    );
    assert_eq!(
        ids(&s.unsent(Lane::Telemetry, None, ALL, 1).unwrap()),
        vec![1],
        "at least one"
    );
}

#[test]
fn ids_and_seqs_grow_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut s, _) = open(dir.path());
        append_t(&mut s, 5);
        s.append(Lane::Alarm, 2, 40, 0, 0, b"a").unwrap();
        s.append(Lane::Alarm, 3, 7, 0, 0, b"b").unwrap();
    }
    let (mut s, rec) = open(dir.path());
    assert_eq!(rec.ledger, LedgerState::Loaded);
    assert_eq!(
        rec.max_seq_by_topic,
        BTreeMap::from([(1, 1005), (2, 40), (3, 7)])
    );
    assert_eq!(rec.lane(Lane::Telemetry).records, 5);
    assert_eq!(append_t(&mut s, 1), vec![6]);
    s.sync().unwrap();
    // Everything acknowledged and the ledger gone: the kept head segment still holds the
    // highest id and seq, so neither goes back.
    for id in 1..=6 {
        s.ack(Lane::Telemetry, id);
    }
    s.sync().unwrap();
    drop(s);
    fs::remove_file(dir.path().join("ledger")).unwrap();
    let (mut s, rec) = open(dir.path());
    assert_eq!(rec.ledger, LedgerState::Missing);
    assert_eq!(rec.max_seq_by_topic[&1], 1006);
    assert_eq!(append_t(&mut s, 1), vec![7]);
}

#[test]
fn out_of_order_acks_and_whole_segment_deletion() {
    let dir = tempfile::tempdir().unwrap();
    let o = StoreOptions {
        segment_size: 4096,
        ..opts(dir.path())
    };
    let (mut s, _) = Store::open(o).unwrap();
    append_t(&mut s, 100);
    s.sync().unwrap();
    let before = segs(dir.path(), Lane::Telemetry).len();
    assert!(before > 10, "{before} segments");
    // Acks arrive in reverse order: nothing moves until the first one comes.
    for id in (2..=50).rev() {
        s.ack(Lane::Telemetry, id);
    }
    assert_eq!(s.watermark(Lane::Telemetry), 0);
    assert_eq!(segs(dir.path(), Lane::Telemetry).len(), before);
    assert_eq!(s.oldest_unacked(Lane::Telemetry).unwrap().id, 1);
    s.ack(Lane::Telemetry, 1);
    assert_eq!(s.watermark(Lane::Telemetry), 50);
    let after = segs(dir.path(), Lane::Telemetry).len();
    assert!(
        after < before,
        "fully acknowledged segments deleted: {before} -> {after}"
    );
    // Acks above a hole are held; unsent skips them; a repeated ack is harmless.
    s.ack(Lane::Telemetry, 60);
    s.ack(Lane::Telemetry, 60);
    s.ack(Lane::Telemetry, 10);
    let left = ids(&s.unsent(Lane::Telemetry, None, ALL, ALL).unwrap());
    let want: Vec<u64> = (51..=100).filter(|&i| i != 60).collect();
    assert_eq!(left, want);
    assert_eq!(s.stats().telemetry.records, 49);
    assert_eq!(s.stats().telemetry.oldest_unacked_ts, Some(5100));
    // An unknown ack is ignored.
    s.ack(Lane::Telemetry, 10_000);
    assert_eq!(s.watermark(Lane::Telemetry), 50);
}

/// A record may be sent and acknowledged before it is synced, but it leaves (the
/// watermark passes it) only after the sync: a power cut before the sync must not leave a
/// watermark above records the page cache lost.
#[test]
fn acknowledged_before_sync_leaves_only_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, _) = open(dir.path());
    append_t(&mut s, 3);
    s.sync().unwrap();
    let late = append_t(&mut s, 2);
    for id in 1..=5 {
        s.ack(Lane::Telemetry, id);
    }
    assert_eq!(s.watermark(Lane::Telemetry), 3, "only the synced three");
    assert!(
        s.unsent(Lane::Telemetry, None, ALL, ALL)
            .unwrap()
            .is_empty(),
        "acknowledged ones are not sent again"
    );
    s.sync().unwrap();
    assert_eq!(s.watermark(Lane::Telemetry), *late.last().unwrap());
}

#[test]
fn reopen_resends_exactly_the_unacked() {
    let dir = tempfile::tempdir().unwrap();
    let o = StoreOptions {
        segment_size: 8192,
        ..opts(dir.path())
    };
    let (mut s, _) = Store::open(o.clone()).unwrap();
    append_t(&mut s, 100);
    s.sync().unwrap();
    for id in 1..=40 {
        s.ack(Lane::Telemetry, id);
    }
    s.checkpoint().unwrap(); // persists watermark 40
    for id in 41..=60 {
        s.ack(Lane::Telemetry, id); // may not reach the ledger before the crash
    }
    crash(s);
    let (mut s, _) = Store::open(o).unwrap();
    let got = s.unsent(Lane::Telemetry, None, ALL, ALL).unwrap();
    check_payloads(&got);
    let got = ids(&got);
    assert!(
        got.iter().all(|&i| i > 40),
        "nothing acknowledged before the last sync is resent"
    );
    for i in 61..=100 {
        assert!(got.contains(&i), "unacknowledged {i} lost");
    }
    let first = got[0];
    assert_eq!(got, (first..=100).collect::<Vec<_>>(), "in order, no holes");
}

/// Writes 10 telemetry records, closes cleanly, returns the segment path.
fn ten_records(dir: &Path) -> PathBuf {
    let (mut s, _) = open(dir);
    append_t(&mut s, 10);
    drop(s);
    let v = segs(dir, Lane::Telemetry);
    assert_eq!(v.len(), 1);
    v[0].clone()
}

fn record_offsets(n: u64) -> Vec<u64> {
    let mut off = vec![0];
    for id in 1..=n {
        off.push(off[off.len() - 1] + (HEADER_LEN + payload(id).len()) as u64);
    }
    off
}

#[test]
fn torn_tail_is_cut_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let seg = ten_records(dir.path());
    let len = fs::metadata(&seg).unwrap().len();
    let off = record_offsets(10);
    assert_eq!(off[10], len);
    fs::OpenOptions::new()
        .write(true)
        .open(&seg)
        .unwrap()
        .set_len(len - 7)
        .unwrap();
    let (mut s, rec) = open(dir.path());
    let r = rec.lane(Lane::Telemetry);
    assert_eq!(
        (r.records, r.corrupt_records, r.truncated_bytes),
        (9, 1, off[10] - off[9] - 7)
    );
    assert_eq!(
        fs::metadata(&seg).unwrap().len(),
        off[9],
        "file cut at the last good record"
    );
    let got = s.unsent(Lane::Telemetry, None, ALL, ALL).unwrap();
    assert_eq!(ids(&got), (1..=9).collect::<Vec<_>>());
    check_payloads(&got);
    assert_eq!(s.stats().telemetry.corrupt_records_total, 1);
    // Appending goes on after the cut. The id of the cut record is used again: it was
    // never acknowledged (the watermark would be above it), so nothing can mistake it.
    assert_eq!(append_t(&mut s, 1), vec![10]);
    s.sync().unwrap();
    drop(s);
    let (_, rec) = open(dir.path());
    assert_eq!(rec.lane(Lane::Telemetry).records, 10);
    assert_eq!(rec.lane(Lane::Telemetry).corrupt_records, 0);
}

#[test]
fn flipped_byte_in_the_middle_skips_one_record() {
    let dir = tempfile::tempdir().unwrap();
    let seg = ten_records(dir.path());
    let off = record_offsets(10);
    let mut bytes = fs::read(&seg).unwrap();
    bytes[off[4] as usize + HEADER_LEN + 3] ^= 0x40; // payload of record 5
    fs::write(&seg, &bytes).unwrap();
    let (mut s, rec) = open(dir.path());
    let r = rec.lane(Lane::Telemetry);
    assert_eq!((r.records, r.corrupt_records, r.truncated_bytes), (9, 1, 0));
    let got = s.unsent(Lane::Telemetry, None, ALL, ALL).unwrap();
    assert_eq!(ids(&got), vec![1, 2, 3, 4, 6, 7, 8, 9, 10]);
    check_payloads(&got);
}

#[test]
fn flipped_header_byte_cuts_there() {
    let dir = tempfile::tempdir().unwrap();
    let seg = ten_records(dir.path());
    let off = record_offsets(10);
    let mut bytes = fs::read(&seg).unwrap();
    bytes[off[6] as usize + 5] ^= 0x7f; // length field of record 7: nothing after can be trusted
    fs::write(&seg, &bytes).unwrap();
    let (mut s, rec) = open(dir.path());
    let r = rec.lane(Lane::Telemetry);
    assert_eq!(
        (r.records, r.corrupt_records, r.truncated_bytes),
        (6, 1, off[10] - off[6])
    );
    assert_eq!(
        ids(&s.unsent(Lane::Telemetry, None, ALL, ALL).unwrap()),
        (1..=6).collect::<Vec<_>>()
    );
}

#[test]
fn garbage_appended_is_cut() {
    let dir = tempfile::tempdir().unwrap();
    let seg = ten_records(dir.path());
    let mut bytes = fs::read(&seg).unwrap();
    bytes.extend((0..1000u32).map(|i| (i * 37 % 251) as u8));
    fs::write(&seg, &bytes).unwrap();
    let (mut s, rec) = open(dir.path());
    let r = rec.lane(Lane::Telemetry);
    assert_eq!(
        (r.records, r.corrupt_records, r.truncated_bytes),
        (10, 1, 1000)
    );
    assert_eq!(s.unsent(Lane::Telemetry, None, ALL, ALL).unwrap().len(), 10);
}

#[test]
fn damage_in_an_older_segment_keeps_the_newer_ones() {
    let dir = tempfile::tempdir().unwrap();
    let o = StoreOptions {
        segment_size: 4096,
        ..opts(dir.path())
    };
    let (mut s, _) = Store::open(o.clone()).unwrap();
    append_t(&mut s, 60);
    drop(s);
    let v = segs(dir.path(), Lane::Telemetry);
    assert!(v.len() >= 3);
    // Cut the first segment mid-record: later segments are still whole and kept.
    let len = fs::metadata(&v[0]).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&v[0])
        .unwrap()
        .set_len(len - 10)
        .unwrap();
    let (mut s, rec) = Store::open(o).unwrap();
    let r = rec.lane(Lane::Telemetry);
    assert_eq!((r.records, r.corrupt_records), (59, 1));
    let got = ids(&s.unsent(Lane::Telemetry, None, ALL, ALL).unwrap());
    assert_eq!(got.len(), 59);
    assert_eq!(*got.last().unwrap(), 60);
}

#[test]
fn zero_length_segments_and_stray_files() {
    let dir = tempfile::tempdir().unwrap();
    for lane in Lane::ALL {
        fs::create_dir_all(dir.path().join(lane.dir_name())).unwrap();
        fs::write(
            dir.path().join(lane.dir_name()).join("000000000001.seg"),
            b"",
        )
        .unwrap();
        fs::write(dir.path().join(lane.dir_name()).join("notes.txt"), b"x").unwrap();
    }
    let (mut s, rec) = open(dir.path());
    assert_eq!(rec.lane(Lane::Telemetry).records, 0);
    assert_eq!(rec.lane(Lane::Alarm).corrupt_records, 0);
    assert!(
        segs(dir.path(), Lane::Alarm).is_empty(),
        "empty segment removed"
    );
    assert_eq!(append_t(&mut s, 2), vec![1, 2]);
    assert_eq!(s.append(Lane::Alarm, 1, 1, 0, 0, b"x").unwrap(), 1);
}

#[test]
fn missing_or_corrupt_ledger_starts_from_the_oldest_record() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut s, _) = open(dir.path());
        append_t(&mut s, 10);
        s.sync().unwrap();
        for id in 1..=5 {
            s.ack(Lane::Telemetry, id);
        }
        s.sync().unwrap();
    }
    let (mut s, rec) = open(dir.path());
    assert_eq!(rec.ledger, LedgerState::Loaded);
    assert_eq!(s.unsent(Lane::Telemetry, None, ALL, ALL).unwrap()[0].id, 6);
    drop(s);

    fs::write(dir.path().join("ledger"), b"HGL1 not a ledger at all").unwrap();
    let (mut s, rec) = open(dir.path());
    assert_eq!(rec.ledger, LedgerState::Corrupt);
    // Whatever gaps the lost ledger still had to report: a doubt is reported, up to the
    // oldest record present, never silence.
    let doubts = s.take_gaps();
    assert_eq!(doubts.len(), 1, "{doubts:?}");
    assert_eq!(doubts[0].records, 0, "count unknown");
    assert_eq!(doubts[0].to_ts, 100, "up to the oldest record present");
    assert_eq!(
        ids(&s.unsent(Lane::Telemetry, None, ALL, ALL).unwrap()),
        (1..=10).collect::<Vec<_>>(),
        "resent, not lost"
    );
    drop(s);

    fs::remove_file(dir.path().join("ledger")).unwrap();
    let (mut s, rec) = open(dir.path());
    assert_eq!(rec.ledger, LedgerState::Missing);
    assert_eq!(s.unsent(Lane::Telemetry, None, ALL, ALL).unwrap().len(), 10);
    assert_eq!(append_t(&mut s, 1), vec![11]);
}

#[test]
fn an_unreadable_segment_is_set_aside_and_reported_not_a_reason_to_fail() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut s, _) = open(dir.path());
        append_t(&mut s, 3);
        s.sync().unwrap();
    }
    // A segment file that cannot be read at all, as a bad sector leaves one: here a
    // folder in its place (read fails with an I/O error).
    let seg = segs(dir.path(), Lane::Telemetry)[0].clone();
    fs::remove_file(&seg).unwrap();
    fs::create_dir(&seg).unwrap();
    fs::write(seg.join("x"), b"x").unwrap();
    let (mut s, rec) = open(dir.path());
    assert_eq!(rec.lane(Lane::Telemetry).unreadable_segments, 1);
    assert!(
        seg.with_extension("unreadable").exists(),
        "kept aside for an operator"
    );
    assert_eq!(s.take_gaps().len(), 1, "its loss is reported");
    assert_eq!(append_t(&mut s, 1).len(), 1, "and the store works on");
}

#[test]
fn gaps_whose_report_failed_are_queued_again_first() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, _) = Store::open(StoreOptions::new(dir.path(), 1 << 20)).unwrap();
    for _ in 0..40 {
        let id = s.next_id(Lane::Telemetry);
        s.append(
            Lane::Telemetry,
            1,
            id,
            id as i64,
            id as i64,
            &vec![7u8; 60_000],
        )
        .unwrap();
        s.sync().unwrap();
    }
    let gaps = s.take_gaps();
    assert!(!gaps.is_empty(), "eviction made gaps");
    assert!(s.take_gaps().is_empty());
    s.requeue_gaps(gaps.clone());
    drop(s);
    // Queued again means kept in the ledger too: a restart still reports them.
    let (mut s, _) = Store::open(StoreOptions::new(dir.path(), 1 << 20)).unwrap();
    assert_eq!(s.take_gaps(), gaps);
}

#[test]
fn alarm_is_durable_on_return() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, _) = open(dir.path());
    let id = s.append(Lane::Alarm, 4, 12, 100, 100, b"H2S high").unwrap();
    crash(s);
    let (mut s, rec) = open(dir.path());
    assert_eq!(rec.lane(Lane::Alarm).records, 1);
    assert_eq!(rec.max_seq_by_topic[&4], 12);
    let got = s.unsent(Lane::Alarm, None, ALL, ALL).unwrap();
    assert_eq!((got[0].id, &got[0].payload[..]), (id, &b"H2S high"[..]));
}

#[test]
fn disk_full_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, _) = open(dir.path());
    // The next segments of both lanes are /dev/full: every write fails with ENOSPC.
    for lane in Lane::ALL {
        std::os::unix::fs::symlink(
            "/dev/full",
            dir.path().join(lane.dir_name()).join("000000000001.seg"),
        )
        .unwrap();
    }
    let err = s.append(Lane::Alarm, 1, 1, 0, 0, b"x").unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("cannot write to")
            && msg.contains("alarm")
            && msg.contains("No space left on device"),
        "{msg}"
    );
    let big = vec![7u8; 300 << 10]; // above the write buffer: written at once
    let err = s.append(Lane::Telemetry, 1, 1, 0, 0, &big).unwrap_err();
    assert_eq!(
        err.io_kind(),
        Some(std::io::ErrorKind::StorageFull),
        "{err}"
    );
    assert_eq!(s.next_id(Lane::Telemetry), 1, "a failed append uses no id");
    s.sync().unwrap();
    assert!(s
        .unsent(Lane::Telemetry, None, ALL, ALL)
        .unwrap()
        .is_empty());
}

#[test]
fn too_large_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, _) = Store::open(StoreOptions::new(dir.path(), 1 << 20)).unwrap();
    let err = s
        .append(Lane::Telemetry, 1, 1, 0, 0, &vec![0; 2 << 20])
        .unwrap_err();
    assert!(err.to_string().contains("too large"), "{err}");
}

#[test]
fn eviction_bounds_the_disk_with_exact_gaps() {
    let dir = tempfile::tempdir().unwrap();
    let o = StoreOptions::new(dir.path(), 2 << 20);
    assert_eq!(o.segment_size, 256 << 10);
    let (mut s, _) = Store::open(o.clone()).unwrap();
    let mut alarms = Vec::new();
    let body = vec![0x5au8; 10_000];
    for i in 1..=1000u64 {
        let id = s
            .append(
                Lane::Telemetry,
                1,
                1000 + i,
                i as i64 * 100,
                i as i64 * 100 + 50,
                &body,
            )
            .unwrap();
        assert_eq!(id, i);
        if i % 10 == 0 {
            s.sync().unwrap();
        }
        if i == 30 {
            for id in 1..=20 {
                s.ack(Lane::Telemetry, id); // sent before the outage: not part of the gap
            }
        }
        if i % 50 == 0 {
            alarms.push(s.append(Lane::Alarm, 2, i, 0, 0, &[1u8; 300]).unwrap());
        }
        let size = dir_size(dir.path());
        assert!(
            size <= o.max_size + o.segment_size,
            "{size} bytes on disk after {i} records"
        );
    }
    s.sync().unwrap();
    let first_kept = s.oldest_unacked(Lane::Telemetry).unwrap().id;
    assert!(first_kept > 700, "the oldest went: first kept {first_kept}");
    let kept = ids(&s.unsent(Lane::Telemetry, None, ALL, ALL).unwrap());
    assert_eq!(kept, (first_kept..=1000).collect::<Vec<_>>());
    assert_eq!(
        ids(&s.unsent(Lane::Alarm, None, ALL, ALL).unwrap()),
        alarms,
        "alarms never evicted"
    );
    let want = hazgate::store::Gap {
        lane: Lane::Telemetry,
        first_id: 21,
        last_id: first_kept - 1,
        first_seq: 1021,
        last_seq: 1000 + first_kept - 1,
        records: first_kept - 21,
        from_ts: 2100,
        to_ts: (first_kept as i64 - 1) * 100 + 50,
        stats_only: false,
        unconfirmed: false,
    };
    assert_eq!(s.pending_gaps(), std::slice::from_ref(&want));
    let st = s.stats();
    assert_eq!(st.telemetry.evicted_records_total, first_kept - 21);
    assert!(st.total_bytes <= o.max_size);
    assert!(!st.alarms_over_budget);
    // The queue survives a restart (even a crash), until taken and synced.
    crash(s);
    let (mut s, _) = Store::open(o.clone()).unwrap();
    assert_eq!(s.pending_gaps(), std::slice::from_ref(&want));
    assert_eq!(s.stats().telemetry.evicted_records_total, first_kept - 21);
    assert_eq!(s.take_gaps(), vec![want]);
    s.sync().unwrap();
    drop(s);
    let (s, _) = Store::open(o).unwrap();
    assert!(s.pending_gaps().is_empty());
}

/// Fills a 1 MiB store with 10 KB telemetry records (topic 1, acquisition time `id * 100`)
/// and a five-minute statistics record (topic 6) after every tenth.
fn fill_with_stats(s: &mut Store, polls: std::ops::RangeInclusive<u64>) {
    let body = vec![0x5au8; 10_000];
    for i in polls {
        s.append(
            Lane::Telemetry,
            1,
            i,
            i as i64 * 100,
            i as i64 * 100 + 50,
            &body,
        )
        .unwrap();
        if i % 10 == 0 {
            s.append(Lane::Telemetry, 6, i / 10, 0, 299_999, &[7u8; 200])
                .unwrap();
            s.sync().unwrap();
        }
    }
}

#[test]
fn evicted_statistics_do_not_stretch_a_gap_over_their_period() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, _) = Store::open(StoreOptions::new(dir.path(), 1 << 20)).unwrap();
    fill_with_stats(&mut s, 1..=300);
    let gaps = s.take_gaps();
    assert_eq!(gaps.len(), 1, "{gaps:?}");
    let g = &gaps[0];
    let first_kept = s.oldest_unacked(Lane::Telemetry).unwrap();
    // The span is the readings' acquisition times, not the statistics' five minutes.
    assert_eq!(g.from_ts, 100);
    assert!(g.to_ts < first_kept.max_ts.max(first_kept.min_ts), "{g:?}");
    assert!(g.to_ts > 10_000, "{g:?}");
    assert!(!g.stats_only && !g.unconfirmed);
    // Seqs are the readings messages' seqs; the statistics lost still count as messages.
    assert_eq!(g.first_seq, 1);
    assert_eq!(g.records, g.last_id - g.first_id + 1);
    assert!(g.records > g.last_seq - g.first_seq + 1);
}

#[test]
fn records_evicted_in_flight_are_lost_only_if_never_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let o = StoreOptions::new(dir.path(), 1 << 20);
    let (mut s, _) = Store::open(o.clone()).unwrap();
    // Ids 1 to 12: eleven readings messages and, at id 11, a statistics message.
    fill_with_stats(&mut s, 1..=11);
    s.connected();
    // 1..=5 sent on the first connection, which ends without their acknowledgement.
    for id in 1..=5 {
        s.published(Lane::Telemetry, id);
    }
    s.connected();
    // 6..=10 sent on the second, acknowledged only after they were evicted; 11 and 12
    // sent too, never acknowledged.
    for id in 6..=12 {
        s.published(Lane::Telemetry, id);
    }
    fill_with_stats(&mut s, 12..=300);
    let first_kept = s.oldest_unacked(Lane::Telemetry).unwrap().id;
    assert!(first_kept > 20);
    for id in 6..=10 {
        s.ack(Lane::Telemetry, id);
    }
    let gaps = s.take_gaps();
    assert_eq!(gaps.len(), 2, "{gaps:?}");
    assert!(
        gaps[0].unconfirmed,
        "sent on a dead connection: may have arrived"
    );
    assert_eq!((gaps[0].first_id, gaps[0].last_id), (1, 5));
    assert!(!gaps[1].unconfirmed, "never sent: certainly lost");
    assert_eq!(gaps[1].first_id, 13);
    assert_eq!(gaps[1].last_id, first_kept - 1);
    // 11 and 12 still await their acknowledgement, through a crash: at the next start
    // it can never come, and they are reported unconfirmed.
    s.sync().unwrap();
    crash(s);
    let (mut s, _) = Store::open(o.clone()).unwrap();
    let gaps = s.take_gaps();
    assert_eq!(
        gaps.iter()
            .map(|g| (g.first_id, g.last_id, g.unconfirmed))
            .collect::<Vec<_>>(),
        vec![(11, 11, true), (12, 12, true)]
    );
    // Without a crash, a new connection gives up on them the same way.
    let dir = tempfile::tempdir().unwrap();
    let (mut s, _) = Store::open(StoreOptions::new(dir.path(), 1 << 20)).unwrap();
    fill_with_stats(&mut s, 1..=2);
    s.connected();
    s.published(Lane::Telemetry, 1);
    s.published(Lane::Telemetry, 2);
    fill_with_stats(&mut s, 3..=300);
    s.ack(Lane::Telemetry, 2);
    let certain = s.take_gaps();
    assert!(
        certain.iter().all(|g| !g.unconfirmed && g.first_id >= 3),
        "{certain:?}"
    );
    s.connected();
    let given_up = s.take_gaps();
    assert_eq!(
        given_up
            .iter()
            .map(|g| (g.first_id, g.last_id, g.unconfirmed))
            .collect::<Vec<_>>(),
        vec![(1, 1, true)]
    );
}

#[test]
fn alarms_over_budget_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let o = StoreOptions::new(dir.path(), 1 << 20);
    let (mut s, _) = Store::open(o.clone()).unwrap();
    append_t(&mut s, 10);
    s.sync().unwrap();
    for i in 0..200u64 {
        s.append(Lane::Alarm, 2, i, 0, 0, &[3u8; 8000]).unwrap();
    }
    let st = s.stats();
    assert!(st.alarms_over_budget);
    assert_eq!(st.alarm.records, 200);
    assert_eq!(st.telemetry.records, 0, "telemetry made room");
    assert_eq!(s.take_gaps().len(), 1);
    drop(s);
    let (mut s, rec) = Store::open(o).unwrap();
    assert_eq!(rec.lane(Lane::Alarm).records, 200);
    assert_eq!(s.unsent(Lane::Alarm, None, ALL, ALL).unwrap().len(), 200);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn arbitrary_bytes_never_stop_open(seg in proptest::collection::vec(any::<u8>(), 0..3000),
                                       ledger in proptest::collection::vec(any::<u8>(), 0..300)) {
        let dir = tempfile::tempdir().unwrap();
        for lane in Lane::ALL {
            fs::create_dir_all(dir.path().join(lane.dir_name())).unwrap();
            fs::write(dir.path().join(lane.dir_name()).join("000000000001.seg"), &seg).unwrap();
        }
        fs::write(dir.path().join("ledger"), &ledger).unwrap();
        let (mut s, _) = open(dir.path());
        for lane in Lane::ALL {
            s.unsent(lane, None, ALL, ALL).unwrap();
            s.append(lane, 0, 0, 0, 0, b"after").unwrap();
        }
        s.sync().unwrap();
    }

    #[test]
    fn damaged_segment_keeps_only_valid_records(
        n in 1u64..10,
        flips in proptest::collection::vec((any::<usize>(), 1u8..=255), 0..3),
        cut in proptest::option::of(any::<usize>()),
        tail in proptest::collection::vec(any::<u8>(), 0..100),
    ) {
        let src = tempfile::tempdir().unwrap();
        {
            let (mut s, _) = open(src.path());
            append_t(&mut s, n);
        }
        let mut bytes = fs::read(&segs(src.path(), Lane::Telemetry)[0]).unwrap();
        for (at, x) in &flips {
            let i = at % bytes.len();
            bytes[i] ^= x;
        }
        let keep = cut.map(|c| c % (bytes.len() + 1)).unwrap_or(bytes.len());
        bytes.truncate(keep);
        bytes.extend_from_slice(&tail);
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("telemetry")).unwrap();
        fs::write(dir.path().join("telemetry/000000000001.seg"), &bytes).unwrap();
        let (mut s, rec) = open(dir.path());
        let got = s.unsent(Lane::Telemetry, None, ALL, ALL).unwrap();
        prop_assert_eq!(rec.lane(Lane::Telemetry).records, got.len() as u64);
        check_payloads(&got);
        prop_assert!(got.iter().all(|r| (1..=n).contains(&r.id)));
        prop_assert!(got.windows(2).all(|w| w[0].id < w[1].id));
        if flips.is_empty() {
            // Damage only at the end: exactly the records wholly before it survive.
            let off = record_offsets(n);
            let whole = off.iter().skip(1).filter(|&&o| o <= keep as u64).count() as u64;
            prop_assert_eq!(ids(&got), (1..=whole).collect::<Vec<_>>());
        }
    }
}

const CRASH_ENV: &str = "HAZGATE_STORE_CRASH_DIR";

/// The child of `sigkill_loop_loses_nothing_written`: appends and syncs until killed,
/// printing each id once its append has returned (it may be sent from then on) and once
/// the sync that covers it has returned. Does nothing otherwise.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(CRASH_ENV) else {
        return;
    };
    let (mut s, _) = Store::open(StoreOptions::new(&dir, 256 << 20)).unwrap();
    println!("ready");
    for n in 0u64.. {
        append_t(&mut s, 5);
        println!("W {}", s.next_id(Lane::Telemetry) - 1);
        if n % 3 == 0 {
            let id = s.next_id(Lane::Alarm);
            assert_eq!(
                s.append(Lane::Alarm, 2, id, 0, 0, &payload(id)).unwrap(),
                id
            );
            println!("A {id}");
        }
        s.sync().unwrap();
        println!("S {}", s.next_id(Lane::Telemetry) - 1);
        if n % 7 == 0 {
            let last = s.next_id(Lane::Telemetry) - 1;
            let mut acked = 0;
            for r in s.unsent(Lane::Telemetry, None, 200, ALL).unwrap() {
                if r.id + 20 <= last {
                    s.ack(Lane::Telemetry, r.id);
                    acked = r.id;
                }
            }
            println!("K {acked}");
        }
    }
}

#[derive(Default)]
struct Seen {
    written: u64,
    synced: u64,
    acked: u64,
    alarms: Vec<u64>,
}

#[test]
fn sigkill_loop_loses_nothing_written() {
    if std::env::var(CRASH_ENV).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let mut rng = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    let mut last_synced = 0;
    for round in 0..20 {
        let mut child = Command::new(&exe)
            .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
            .env(CRASH_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let seen2 = seen.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                let mut seen = seen2.lock().unwrap();
                let num = |s: &str| s.trim().parse::<u64>().unwrap();
                match line.split_once(' ') {
                    Some(("W", v)) => seen.written = seen.written.max(num(v)),
                    Some(("S", v)) => seen.synced = seen.synced.max(num(v)),
                    Some(("K", v)) => seen.acked = seen.acked.max(num(v)),
                    Some(("A", v)) => seen.alarms.push(num(v)),
                    // libtest prints "test crash_child ... " on the same line.
                    _ if line.ends_with("ready") => {
                        let _ = ready_tx.send(());
                    }
                    _ => {}
                }
            }
        });
        ready_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("child ready");
        // Kill only once this round has synced something, so every round tests recovery of
        // new data even when a loaded machine starts the child slowly.
        let started = std::time::Instant::now();
        while seen.lock().unwrap().synced <= last_synced {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "round {round}: the child never synced"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        std::thread::sleep(Duration::from_millis(10 + rng % 300));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        reader.join().unwrap();

        let seen = seen.lock().unwrap();
        let (mut s, _) = Store::open(StoreOptions::new(dir.path(), 256 << 20)).unwrap();
        let tele = s.unsent(Lane::Telemetry, None, ALL, ALL).unwrap();
        check_payloads(&tele);
        let present: std::collections::BTreeSet<u64> = tele.iter().map(|r| r.id).collect();
        // A crash of the process keeps what was written (the page cache survives it).
        for id in seen.acked + 1..=seen.written.max(seen.synced) {
            assert!(
                present.contains(&id),
                "round {round}: written telemetry {id} lost (acked {}, synced {}, written {})",
                seen.acked,
                seen.synced,
                seen.written
            );
        }
        let alarms = s.unsent(Lane::Alarm, None, ALL, ALL).unwrap();
        check_payloads(&alarms);
        let alarm_ids = ids(&alarms);
        for id in &seen.alarms {
            assert!(alarm_ids.contains(id), "round {round}: alarm {id} lost");
        }
        assert!(
            seen.synced > last_synced,
            "round {round}: the child synced nothing new"
        );
        last_synced = seen.synced;
        std::mem::forget(s); // leave the files exactly as recovery left them
    }
    assert!(
        seen.lock().unwrap().acked > 0,
        "acknowledgements were exercised"
    );
}
