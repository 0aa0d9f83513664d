//! The timestamp at the start of a line, in each of tcpdump's `-t` forms.
//! The clock text of the current second is cached: most frames of a capture
//! share their second with the one before.

use super::fmt::{dec_i64, pad_left};
use crate::dissect::packet::Timestamp;

/// How the timestamp at the start of a line is printed (tcpdump's `-t` flags).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TimestampFormat {
    /// `HH:MM:SS.ffffff`, local time (the default).
    #[default]
    Time,
    /// `-t`: no timestamp.
    None,
    /// `-tt`: seconds since the epoch, `1795344419.896253`.
    Epoch,
    /// `-ttt`: time since the previous frame, ` 00:00:00.000081`.
    SincePrevious,
    /// `-tttt`: date and time, `2026-11-22 10:46:59.896253`.
    Date,
    /// `-ttttt`: time since the first frame.
    SinceFirst,
}

impl TimestampFormat {
    /// The format selected by `n` repetitions of `-t`.
    pub fn from_t_count(n: u8) -> TimestampFormat {
        match n {
            0 => TimestampFormat::Time,
            1 => TimestampFormat::None,
            2 => TimestampFormat::Epoch,
            3 => TimestampFormat::SincePrevious,
            4 => TimestampFormat::Date,
            _ => TimestampFormat::SinceFirst,
        }
    }
}

/// Offset of local time from UTC, in seconds, at a given instant (seconds
/// since the epoch). The CLI passes the system's; the default is UTC.
pub type UtcOffset = fn(i64) -> i64;

pub(super) fn utc(_: i64) -> i64 {
    0
}

/// The timestamp printer's state: what tcpdump keeps for `-ttt` and
/// `-ttttt`, and the text of the last second printed.
pub(super) struct Clock {
    format: TimestampFormat,
    utc_offset: UtcOffset,
    /// The previous and the first frame's times (for -ttt and -ttttt).
    prev_ts: Option<Timestamp>,
    first_ts: Option<Timestamp>,
    /// The last second printed and its text (`YYYY-MM-DD HH:MM:SS`).
    clock_sec: i64,
    clock: [u8; 19],
}

impl Clock {
    pub(super) fn new(format: TimestampFormat, utc_offset: UtcOffset) -> Clock {
        Clock { format, utc_offset, prev_ts: None, first_ts: None, clock_sec: i64::MIN, clock: [b'0'; 19] }
    }

    /// The timestamp of a frame taken at `ts` and its separating space.
    pub(super) fn write(&mut self, out: &mut Vec<u8>, ts: Option<Timestamp>) {
        if self.format == TimestampFormat::None {
            return;
        }
        let Some(ts) = ts else {
            // The file gives this frame no time (see `FrameMeta::ts`): said
            // in its place, and the frames around it keep their references.
            out.extend_from_slice(b"[no timestamp] ");
            return;
        };
        let (sec, usec) = (ts.secs(), ts.subsec_micros());
        match self.format {
            TimestampFormat::None => {}
            TimestampFormat::Time => {
                self.refresh(sec);
                out.extend_from_slice(&self.clock[11..]);
                out.push(b'.');
                pad_left(out, usec as u64, 6, b'0');
                out.push(b' ');
            }
            TimestampFormat::Date => {
                self.refresh(sec);
                out.extend_from_slice(&self.clock);
                out.push(b'.');
                pad_left(out, usec as u64, 6, b'0');
                out.push(b' ');
            }
            TimestampFormat::Epoch => {
                dec_i64(out, sec);
                out.push(b'.');
                pad_left(out, usec as u64, 6, b'0');
                out.push(b' ');
            }
            TimestampFormat::SincePrevious | TimestampFormat::SinceFirst => {
                let first = *self.first_ts.get_or_insert(ts);
                let reference =
                    if self.format == TimestampFormat::SincePrevious { self.prev_ts.unwrap_or(ts) } else { first };
                // In microseconds, as tcpdump's timeval difference; in 128
                // bits, which hold the difference of any two times.
                let micros = |t: Timestamp| t.secs() as i128 * 1_000_000 + t.subsec_micros() as i128;
                let d = micros(ts) - micros(reference);
                out.push(if d < 0 { b'-' } else { b' ' });
                let d = d.unsigned_abs();
                let secs = d / 1_000_000;
                // tcpdump prints the hours modulo a day.
                pad_left(out, ((secs / 3600) % 24) as u64, 2, b'0');
                out.push(b':');
                pad_left(out, ((secs / 60) % 60) as u64, 2, b'0');
                out.push(b':');
                pad_left(out, (secs % 60) as u64, 2, b'0');
                out.push(b'.');
                pad_left(out, (d % 1_000_000) as u64, 6, b'0');
                out.push(b' ');
                self.prev_ts = Some(ts);
            }
        }
    }

    /// Recompute the `YYYY-MM-DD HH:MM:SS` text when the second changes.
    fn refresh(&mut self, sec: i64) {
        if sec == self.clock_sec {
            return;
        }
        self.clock_sec = sec;
        let local = sec.saturating_add((self.utc_offset)(sec));
        let days = local.div_euclid(86_400);
        let tod = local.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        let mut buf = [0u8; 19];
        let mut put = |at: usize, v: u64, w: usize| {
            let mut v = v;
            for i in (0..w).rev() {
                buf[at + i] = b'0' + (v % 10) as u8;
                v /= 10;
            }
        };
        put(0, y.clamp(0, 9999) as u64, 4);
        put(5, m as u64, 2);
        put(8, d as u64, 2);
        put(11, (tod / 3600) as u64, 2);
        put(14, (tod / 60 % 60) as u64, 2);
        put(17, (tod % 60) as u64, 2);
        buf[4] = b'-';
        buf[7] = b'-';
        buf[10] = b' ';
        buf[13] = b':';
        buf[16] = b':';
        self.clock = buf;
    }
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian
/// (H. Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(18_318), (2020, 2, 26));
        // 2000 was a leap year (divisible by 400), 1900 was not.
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(-25_508), (1900, 3, 1));
    }
}
