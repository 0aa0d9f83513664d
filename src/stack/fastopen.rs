//! TCP Fast Open (RFC 7413) on MPTCP connections (RFC 8684 Appendix B).
//!
//! - The client asks for a cookie with an empty Fast Open option in its
//!   MP_CAPABLE SYN (RFC 7413 §4.1.1), keeps what the SYN/ACK returns per
//!   server address in a [`CookieCache`] (§4.1.3), and on a later
//!   connection sends its first bytes in the SYN with the cookie (§4.2.1).
//! - The server issues cookies from a [`CookieIssuer`]: a keyed MAC of the
//!   client's address (§4.1.2), the key changing every
//!   [`FastOpenConfig::rotate`], the one before it still accepted.
//!
//! How SYN data maps at the data level is what Linux does (net/mptcp/
//! fastopen.c, since 6.2): the bytes of the SYN sit *before* the data-level
//! sequence space, at DSN `[IDSN+1-len, IDSN+1)`, and the subflow's relative
//! sequence numbers start after them (DSS subflow sequence 1 is the first
//! byte after the SYN data). The first byte the DSS maps is therefore DSN
//! IDSN+1 either way, the DATA_ACK a server sends does not count the SYN's
//! bytes, and a peer that did not take them resends them as the first
//! mapped data.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use super::time::{Duration, Instant};

/// Shortest and longest cookie (RFC 7413 §4.1.1).
pub const MIN_COOKIE: usize = 4;
pub const MAX_COOKIE: usize = 16;
/// The cookies we issue: 8 bytes, as Linux.
const ISSUED_COOKIE: usize = 8;

/// Servers a [`CookieCache`] remembers at most; the least recently used
/// one goes first.
pub const CACHE_ENTRIES: usize = 64;

/// A Fast Open cookie: 4 to 16 opaque bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cookie {
    len: u8,
    bytes: [u8; MAX_COOKIE],
}

impl Cookie {
    /// A cookie of `b`, if its length is one RFC 7413 §4.1.1 allows.
    pub fn new(b: &[u8]) -> Option<Cookie> {
        if !(MIN_COOKIE..=MAX_COOKIE).contains(&b.len()) {
            return None;
        }
        let mut bytes = [0u8; MAX_COOKIE];
        bytes[..b.len()].copy_from_slice(b);
        Some(Cookie { len: b.len() as u8, bytes })
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }

    fn hex(&self) -> String {
        self.as_bytes().iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl std::fmt::Debug for Cookie {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Cookie({})", self.hex())
    }
}

/// Fast Open settings of an endpoint ([`super::Config::fastopen`]).
#[derive(Clone, Debug)]
pub struct FastOpenConfig {
    /// Connections we open ask for cookies and, with one, carry their
    /// first bytes in the SYN.
    pub client: bool,
    /// Listeners issue cookies and take the data of SYNs with a valid one.
    pub server: bool,
    /// How long a client that has a cookie holds its SYN for the
    /// application's first bytes (the connection reports `Connected` at
    /// once, as a socket with TCP_FASTOPEN_CONNECT returns from connect).
    pub hold: Duration,
    /// Half-open passive connections whose SYN data was taken, at most
    /// (the queue length Linux's TCP_FASTOPEN option sets, RFC 7413 §5.1);
    /// beyond it SYN data is ignored and the handshake is a normal one.
    pub max_pending: usize,
    /// A server's cookie key changes this often; cookies of the key before
    /// stay valid, so a cookie lives between one and two periods.
    pub rotate: Duration,
    /// The client's cookies, per server address.
    pub cache: CookieCache,
}

impl Default for FastOpenConfig {
    fn default() -> FastOpenConfig {
        FastOpenConfig {
            client: false,
            server: false,
            hold: Duration::from_millis(100),
            max_pending: 16,
            rotate: Duration::from_secs(3600),
            cache: CookieCache::default(),
        }
    }
}

/// One server's entry in the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CachedCookie {
    pub server: IpAddr,
    pub cookie: Cookie,
    /// The MSS the server's SYN/ACK announced: it bounds the SYN data.
    pub mss: Option<u16>,
}

/// The client's cookies (RFC 7413 §4.1.3), at most [`CACHE_ENTRIES`],
/// least recently used first out. A handle: clones share one cache, so
/// whoever configured the endpoint can save it when the endpoint is gone.
#[derive(Clone, Debug, Default)]
pub struct CookieCache {
    inner: Arc<Mutex<Vec<CachedCookie>>>,
}

/// Why a cookie cache file could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CacheFileError {
    #[error("line {line}: expected `ADDRESS COOKIE-HEX [MSS]`, got {text:?}")]
    Syntax { line: usize, text: String },
    #[error("line {line}: {addr:?} is not an IP address")]
    Address { line: usize, addr: String },
    #[error("line {line}: cookie {cookie:?} is not 4 to 16 bytes of hex (RFC 7413 §4.1.1)")]
    Cookie { line: usize, cookie: String },
    #[error("line {line}: MSS {mss:?} is not a number from 64 to 65535")]
    Mss { line: usize, mss: String },
}

impl CookieCache {
    fn with<R>(&self, f: impl FnOnce(&mut Vec<CachedCookie>) -> R) -> R {
        // A panic elsewhere while holding the lock leaves a list that is
        // still a valid list: take it.
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut g)
    }

    /// The cookie for `server`, if any (it becomes the most recently used).
    pub fn get(&self, server: IpAddr) -> Option<CachedCookie> {
        self.with(|v| {
            let i = v.iter().position(|e| e.server == server)?;
            let e = v.remove(i);
            v.push(e);
            Some(e)
        })
    }

    /// Keep `cookie` for `server`, replacing the one before (§4.1.3).
    pub fn put(&self, server: IpAddr, cookie: Cookie, mss: Option<u16>) {
        self.with(|v| {
            v.retain(|e| e.server != server);
            if v.len() >= CACHE_ENTRIES {
                v.remove(0);
            }
            v.push(CachedCookie { server, cookie, mss });
        })
    }

    /// Forget `server`'s cookie (it ignores Fast Open).
    pub fn remove(&self, server: IpAddr) {
        self.with(|v| v.retain(|e| e.server != server))
    }

    /// Every entry, least recently used first.
    pub fn entries(&self) -> Vec<CachedCookie> {
        self.with(|v| v.clone())
    }

    /// The cache as text: a comment line, then one line per server,
    /// `ADDRESS COOKIE-HEX [MSS]`, least recently used first.
    pub fn to_text(&self) -> String {
        let mut s = String::from("# TCP Fast Open cookies (RFC 7413): server address, cookie, server MSS\n");
        for e in self.entries() {
            s.push_str(&format!("{} {}", e.server, e.cookie.hex()));
            if let Some(m) = e.mss {
                s.push_str(&format!(" {m}"));
            }
            s.push('\n');
        }
        s
    }

    /// Add the entries of `text` (as [`CookieCache::to_text`] writes it;
    /// blank lines and `#` comments are skipped). Nothing is added when a
    /// line is bad.
    pub fn load_text(&self, text: &str) -> Result<usize, CacheFileError> {
        let mut got = Vec::new();
        for (n, raw) in text.lines().enumerate() {
            let line = n + 1;
            let l = raw.trim();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            let f: Vec<&str> = l.split_whitespace().collect();
            if !(2..=3).contains(&f.len()) {
                return Err(CacheFileError::Syntax { line, text: l.to_string() });
            }
            let server: IpAddr = f[0].parse().map_err(|_| CacheFileError::Address { line, addr: f[0].to_string() })?;
            let cookie = parse_hex(f[1])
                .and_then(|b| Cookie::new(&b))
                .ok_or_else(|| CacheFileError::Cookie { line, cookie: f[1].to_string() })?;
            let mss = match f.get(2) {
                None => None,
                Some(m) => Some(
                    m.parse::<u16>()
                        .ok()
                        .filter(|v| *v >= 64)
                        .ok_or_else(|| CacheFileError::Mss { line, mss: m.to_string() })?,
                ),
            };
            got.push((server, cookie, mss));
        }
        let n = got.len();
        for (s, c, m) in got {
            self.put(s, c, m);
        }
        Ok(n)
    }
}

fn parse_hex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 || !s.is_ascii() {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok()).collect()
}

/// What a server makes of a SYN's Fast Open option (RFC 7413 §4.2.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SynCookie {
    /// An empty option: the client asks for a cookie.
    Request,
    /// A cookie we issued, of the current key or the one before.
    Valid,
    /// Anything else (a forged, expired or truncated cookie).
    Invalid,
}

/// The server's cookie keys: one per period of [`FastOpenConfig::rotate`],
/// each derived from the endpoint's secret and the period's number, so the
/// key changes with time passed in and nothing needs storing.
#[derive(Clone, Debug)]
pub(crate) struct CookieIssuer {
    secret: [u8; 32],
    rotate: Duration,
}

impl CookieIssuer {
    pub fn new(secret: [u8; 32], rotate: Duration) -> CookieIssuer {
        CookieIssuer { secret, rotate: rotate.max(Duration::from_secs(1)) }
    }

    fn period(&self, now: Instant) -> u64 {
        now.as_micros() / self.rotate.as_micros()
    }

    fn key(&self, period: u64) -> [u8; 32] {
        Sha256::new()
            .chain_update(self.secret)
            .chain_update(b"tfo")
            .chain_update(period.to_be_bytes())
            .finalize()
            .into()
    }

    fn mac(&self, period: u64, client: IpAddr) -> Cookie {
        let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key(period)).expect("HMAC takes any key length");
        match client {
            IpAddr::V4(a) => m.update(&a.octets()),
            IpAddr::V6(a) => m.update(&a.octets()),
        }
        let d = m.finalize().into_bytes();
        Cookie::new(&d[..ISSUED_COOKIE]).expect("8 bytes is a cookie length")
    }

    /// The cookie for `client` now (RFC 7413 §4.1.2: a MAC of its address).
    pub fn issue(&self, now: Instant, client: IpAddr) -> Cookie {
        self.mac(self.period(now), client)
    }

    /// What the option `cookie` (empty: a request) of a SYN from `client` is.
    pub fn check(&self, now: Instant, client: IpAddr, cookie: &[u8]) -> SynCookie {
        if cookie.is_empty() {
            return SynCookie::Request;
        }
        let p = self.period(now);
        let ok = |period: u64| same(self.mac(period, client).as_bytes(), cookie);
        if ok(p) || (p > 0 && ok(p - 1)) { SynCookie::Valid } else { SynCookie::Invalid }
    }
}

/// Compare without stopping at the first difference.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn cookie_lengths_are_those_of_rfc_7413() {
        assert!(Cookie::new(&[1, 2, 3]).is_none());
        assert!(Cookie::new(&[0; 17]).is_none());
        assert_eq!(Cookie::new(&[1, 2, 3, 4]).map(|c| c.as_bytes().len()), Some(4));
        assert_eq!(Cookie::new(&[9; 16]).map(|c| c.as_bytes().to_vec()), Some(vec![9; 16]));
    }

    #[test]
    fn issued_cookies_are_per_client_and_survive_one_rotation() {
        let iss = CookieIssuer::new([7; 32], Duration::from_secs(60));
        let t0 = Instant::ZERO + Duration::from_secs(10);
        let a = ip("10.0.1.1");
        let c = iss.issue(t0, a);
        assert_eq!(c.as_bytes().len(), 8);
        assert_eq!(iss.check(t0, a, c.as_bytes()), SynCookie::Valid);
        assert_eq!(iss.check(t0, ip("10.0.1.9"), c.as_bytes()), SynCookie::Invalid, "another client's");
        assert_eq!(iss.check(t0, a, &[]), SynCookie::Request);
        assert_eq!(iss.check(t0, a, &c.as_bytes()[..4]), SynCookie::Invalid, "truncated");
        // The next period: a new cookie, the old one still good.
        let t1 = t0 + Duration::from_secs(60);
        assert_ne!(iss.issue(t1, a), c);
        assert_eq!(iss.check(t1, a, c.as_bytes()), SynCookie::Valid);
        // Two periods on: gone.
        assert_eq!(iss.check(t1 + Duration::from_secs(60), a, c.as_bytes()), SynCookie::Invalid);
        // Another secret issues other cookies.
        assert_eq!(CookieIssuer::new([8; 32], Duration::from_secs(60)).check(t0, a, c.as_bytes()), SynCookie::Invalid);
    }

    #[test]
    fn the_cache_is_bounded_and_least_recently_used_goes_first() {
        let c = CookieCache::default();
        let k = Cookie::new(&[1; 8]).unwrap_or_else(|| panic!("cookie"));
        for i in 0..CACHE_ENTRIES {
            c.put(IpAddr::from([10, 0, 0, i as u8]), k, None);
        }
        // Touch the oldest: it stays, the second oldest goes.
        assert!(c.get(ip("10.0.0.0")).is_some());
        c.put(ip("10.9.9.9"), k, Some(1400));
        assert_eq!(c.entries().len(), CACHE_ENTRIES);
        assert!(c.get(ip("10.0.0.1")).is_none());
        assert!(c.get(ip("10.0.0.0")).is_some());
        assert_eq!(c.get(ip("10.9.9.9")).and_then(|e| e.mss), Some(1400));
        c.remove(ip("10.9.9.9"));
        assert!(c.get(ip("10.9.9.9")).is_none());
        // Clones share the entries.
        let d = c.clone();
        d.put(ip("fd00::2"), k, None);
        assert!(c.get(ip("fd00::2")).is_some());
    }

    #[test]
    fn the_cache_file_round_trips_and_a_bad_line_is_named() {
        let c = CookieCache::default();
        c.put(ip("10.0.1.2"), Cookie::new(&[0xab, 0xcd, 0, 1, 2, 3, 4, 5]).unwrap_or_else(|| panic!()), Some(1460));
        c.put(ip("fd00::2"), Cookie::new(&[1, 2, 3, 4]).unwrap_or_else(|| panic!()), None);
        let text = c.to_text();
        assert!(text.contains("10.0.1.2 abcd000102030405 1460\n"), "{text}");
        let d = CookieCache::default();
        assert_eq!(d.load_text(&text), Ok(2));
        assert_eq!(d.entries(), c.entries());
        let bad = [
            ("10.0.1.2\n", CacheFileError::Syntax { line: 1, text: "10.0.1.2".into() }),
            ("# c\nhost abcd0001 \n", CacheFileError::Address { line: 2, addr: "host".into() }),
            ("10.0.1.2 abc\n", CacheFileError::Cookie { line: 1, cookie: "abc".into() }),
            ("10.0.1.2 0102\n", CacheFileError::Cookie { line: 1, cookie: "0102".into() }),
            ("10.0.1.2 01020304 9\n", CacheFileError::Mss { line: 1, mss: "9".into() }),
        ];
        for (t, want) in bad {
            let e = CookieCache::default();
            assert_eq!(e.load_text(t), Err(want), "{t:?}");
            assert!(e.entries().is_empty(), "nothing taken from a bad file");
        }
    }
}
