//! `--path` specifications: `rate=50mbit,delay=20ms,loss=1%,reorder=1%,
//! dup=0.1%,corrupt=0.1%,queue=100,strip-options,down=1s-4s`.

use core::fmt;
use core::str::FromStr;

use crate::stack::time::{Duration, Instant};

/// One path's link properties (both directions alike).
#[derive(Clone, Debug, PartialEq)]
pub struct PathSpec {
    /// Bits per second; None is unlimited.
    pub rate_bps: Option<u64>,
    /// One-way propagation delay.
    pub delay: Duration,
    pub loss: f64,
    pub reorder: f64,
    /// Extra delay of a reordered packet (default: half the delay, at least 1 ms).
    pub reorder_gap: Option<Duration>,
    pub dup: f64,
    pub corrupt: f64,
    /// Flip one payload byte of the Nth data segment (1-based, counted per
    /// direction) and repair the TCP checksum, as a middlebox rewriting
    /// data: only the DSS checksum (RFC 8684 §3.3.1) can tell.
    pub corrupt_data: Option<u64>,
    /// Drop-tail queue limit, in packets.
    pub queue: usize,
    /// Strip MPTCP options (kind 30) from every packet, as a middlebox may.
    pub strip_options: bool,
    /// Intervals during which the path drops everything.
    pub down: Vec<(Instant, Instant)>,
}

impl Default for PathSpec {
    fn default() -> PathSpec {
        PathSpec {
            rate_bps: None,
            delay: Duration::from_millis(10),
            loss: 0.0,
            reorder: 0.0,
            reorder_gap: None,
            dup: 0.0,
            corrupt: 0.0,
            corrupt_data: None,
            queue: 1000,
            strip_options: false,
            down: Vec::new(),
        }
    }
}

impl PathSpec {
    /// A clean path: 50 Mbit/s, 10 ms each way, 1000-packet queue.
    pub fn clean() -> PathSpec {
        PathSpec { rate_bps: Some(50_000_000), ..Default::default() }
    }
    pub fn is_down(&self, t: Instant) -> bool {
        self.down.iter().any(|(a, b)| t >= *a && t < *b)
    }
}

/// A bad `--path` token, named.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("bad path spec token {token:?}: {reason}")]
pub struct SpecError {
    pub token: String,
    pub reason: String,
}

fn err(token: &str, reason: impl Into<String>) -> SpecError {
    SpecError { token: token.to_string(), reason: reason.into() }
}

fn split_num(s: &str) -> (&str, &str) {
    let i = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    (&s[..i], &s[i..])
}

/// "50mbit", "1gbit", "800kbit", "1000000bit", "10mbps" (bytes, as tc).
pub fn parse_rate(s: &str) -> Result<u64, String> {
    let (n, unit) = split_num(s.trim());
    let v: f64 = n.parse().map_err(|_| "not a rate (e.g. 50mbit)".to_string())?;
    let mult = match unit.to_ascii_lowercase().as_str() {
        "" | "bit" => 1.0,
        "kbit" | "k" => 1e3,
        "mbit" | "m" => 1e6,
        "gbit" | "g" => 1e9,
        "bps" => 8.0,
        "kbps" => 8e3,
        "mbps" => 8e6,
        "gbps" => 8e9,
        other => return Err(format!("unknown rate unit {other:?} (bit, kbit, mbit, gbit, bps, kbps, mbps, gbps)")),
    };
    let r = v * mult;
    if !(r >= 1.0 && r.is_finite()) {
        return Err("rate must be positive".into());
    }
    Ok(r as u64)
}

/// "20ms", "1.5s", "300us"; a bare number is milliseconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let (n, unit) = split_num(s.trim());
    let v: f64 = n.parse().map_err(|_| "not a duration (e.g. 20ms)".to_string())?;
    let us = match unit {
        "us" => v,
        "" | "ms" => v * 1e3,
        "s" => v * 1e6,
        other => return Err(format!("unknown time unit {other:?} (us, ms, s)")),
    };
    if !(us >= 0.0 && us.is_finite()) {
        return Err("duration must not be negative".into());
    }
    Ok(Duration::from_micros(us as u64))
}

/// "1%" or "0.01".
pub fn parse_prob(s: &str) -> Result<f64, String> {
    let s = s.trim();
    let v = if let Some(p) = s.strip_suffix('%') {
        p.parse::<f64>().map_err(|_| "not a percentage (e.g. 1%)".to_string())? / 100.0
    } else {
        s.parse::<f64>().map_err(|_| "not a probability (e.g. 1% or 0.01)".to_string())?
    };
    if !(0.0..=1.0).contains(&v) {
        return Err("probability must be within 0%..100%".into());
    }
    Ok(v)
}

impl FromStr for PathSpec {
    type Err = SpecError;
    fn from_str(s: &str) -> Result<PathSpec, SpecError> {
        let mut p = PathSpec::default();
        for tok in s.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let (k, v) = match tok.split_once('=') {
                Some((k, v)) => (k.trim(), Some(v.trim())),
                None => (tok, None),
            };
            fn need<'s>(v: Option<&'s str>, tok: &str, k: &str) -> Result<&'s str, SpecError> {
                v.ok_or_else(|| err(tok, format!("{k} needs a value ({k}=...)")))
            }
            match k {
                "rate" => p.rate_bps = Some(parse_rate(need(v, tok, k)?).map_err(|e| err(tok, e))?),
                "delay" => p.delay = parse_duration(need(v, tok, k)?).map_err(|e| err(tok, e))?,
                "loss" => p.loss = parse_prob(need(v, tok, k)?).map_err(|e| err(tok, e))?,
                "reorder" => p.reorder = parse_prob(need(v, tok, k)?).map_err(|e| err(tok, e))?,
                "reorder-gap" => p.reorder_gap = Some(parse_duration(need(v, tok, k)?).map_err(|e| err(tok, e))?),
                "dup" | "duplicate" => p.dup = parse_prob(need(v, tok, k)?).map_err(|e| err(tok, e))?,
                "corrupt" => p.corrupt = parse_prob(need(v, tok, k)?).map_err(|e| err(tok, e))?,
                "corrupt-data" => {
                    let n: u64 = need(v, tok, k)?
                        .parse()
                        .map_err(|_| err(tok, "not a segment number (e.g. corrupt-data=50: the 50th data segment)"))?;
                    if n == 0 {
                        return Err(err(tok, "segments count from 1"));
                    }
                    p.corrupt_data = Some(n);
                }
                "queue" => {
                    let q: usize = need(v, tok, k)?.parse().map_err(|_| err(tok, "not a packet count (e.g. 100)"))?;
                    if q == 0 {
                        return Err(err(tok, "queue must hold at least one packet"));
                    }
                    p.queue = q;
                }
                "strip-options" | "strip" => {
                    if v.is_some() {
                        return Err(err(tok, "strip-options takes no value"));
                    }
                    p.strip_options = true;
                }
                "down" => {
                    let v = need(v, tok, k)?;
                    let (a, b) = v.split_once('-').ok_or_else(|| err(tok, "down needs START-END (e.g. 1s-4s)"))?;
                    let a = parse_duration(a).map_err(|e| err(tok, e))?;
                    let b = parse_duration(b).map_err(|e| err(tok, e))?;
                    if b <= a {
                        return Err(err(tok, "down interval must end after it starts"));
                    }
                    p.down.push((Instant::ZERO + a, Instant::ZERO + b));
                }
                _ => {
                    return Err(err(
                        tok,
                        "unknown key (rate, delay, loss, reorder, reorder-gap, dup, corrupt, corrupt-data, queue, strip-options, \
                         down)",
                    ));
                }
            }
        }
        Ok(p)
    }
}

impl fmt::Display for PathSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.rate_bps {
            Some(r) if r % 1_000_000 == 0 => write!(f, "rate={}mbit", r / 1_000_000)?,
            Some(r) => write!(f, "rate={r}bit")?,
            None => write!(f, "rate=unlimited")?,
        }
        write!(f, ",delay={}", self.delay)?;
        for (k, v) in [("loss", self.loss), ("reorder", self.reorder), ("dup", self.dup), ("corrupt", self.corrupt)] {
            if v > 0.0 {
                write!(f, ",{k}={}%", v * 100.0)?;
            }
        }
        if let Some(n) = self.corrupt_data {
            write!(f, ",corrupt-data={n}")?;
        }
        write!(f, ",queue={}", self.queue)?;
        if self.strip_options {
            write!(f, ",strip-options")?;
        }
        for (a, b) in &self.down {
            write!(f, ",down={}ms-{}ms", a.as_millis(), b.as_millis())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_contract_example() {
        let p: PathSpec =
            "rate=50mbit,delay=20ms,loss=1%,reorder=1%,dup=0.1%,corrupt=0.1%,queue=100,strip-options,down=1s-4s"
                .parse()
                .unwrap();
        assert_eq!(p.rate_bps, Some(50_000_000));
        assert_eq!(p.delay, Duration::from_millis(20));
        assert!((p.loss - 0.01).abs() < 1e-12);
        assert!((p.dup - 0.001).abs() < 1e-12);
        assert_eq!(p.queue, 100);
        assert!(p.strip_options);
        assert_eq!(p.down, vec![(Instant::from_secs(1), Instant::from_secs(4))]);
        assert!(p.is_down(Instant::from_millis(1500)));
        assert!(!p.is_down(Instant::from_secs(4)));
    }

    #[test]
    fn errors_name_the_token() {
        let e = "rate=50mbit,delay=fast".parse::<PathSpec>().unwrap_err();
        assert_eq!(e.token, "delay=fast");
        assert!(e.to_string().contains("delay=fast"));
        assert_eq!("loss=120%".parse::<PathSpec>().unwrap_err().token, "loss=120%");
        assert_eq!("bogus".parse::<PathSpec>().unwrap_err().token, "bogus");
        assert_eq!("down=4s-1s".parse::<PathSpec>().unwrap_err().token, "down=4s-1s");
        assert_eq!("rate=10furlongs".parse::<PathSpec>().unwrap_err().token, "rate=10furlongs");
        assert_eq!("queue=0".parse::<PathSpec>().unwrap_err().token, "queue=0");
        assert_eq!("corrupt-data=0".parse::<PathSpec>().unwrap_err().token, "corrupt-data=0");
        assert_eq!("corrupt-data=x".parse::<PathSpec>().unwrap_err().token, "corrupt-data=x");
    }

    #[test]
    fn corrupt_data_round_trips() {
        let p: PathSpec = "rate=20mbit,corrupt-data=50".parse().unwrap();
        assert_eq!(p.corrupt_data, Some(50));
        let again: PathSpec = p.to_string().parse().unwrap();
        assert_eq!(again, p);
    }

    #[test]
    fn units() {
        assert_eq!(parse_rate("1gbit").unwrap(), 1_000_000_000);
        assert_eq!(parse_rate("10mbps").unwrap(), 80_000_000);
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("250us").unwrap(), Duration::from_micros(250));
        assert!((parse_prob("0.05").unwrap() - 0.05).abs() < 1e-12);
    }
}
