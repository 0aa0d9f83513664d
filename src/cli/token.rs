//! `mptcp-token`: the MPTCP values derived from keys (RFC 8684 §3.1, §3.2,
//! §3.4.1): token and IDSN of a key, the two MP_JOIN HMACs, the ADD_ADDR
//! HMAC; with expected values given, it verifies them.

use std::io::{self, Write};
use std::net::IpAddr;

use clap::{Args, Parser, Subcommand};
use serde::Serialize;

use crate::dissect::crypto::{Key, Version, add_addr_hmac, join_ack_hmac, join_synack_hmac};

/// Compute MPTCP tokens, IDSNs and HMACs from keys, as the Linux kernel does.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "mptcp-token",
    version,
    arg_required_else_help = true,
    after_help = "\
Examples:
  mptcp-token 0xbb206e3023b47a2d
      key 0xbb206e3023b47a2d  token 0xb85a1ad2  idsn 1331650533424046586 (0x127af91ad1b321fa)
  mptcp-token join --key-a 0xe3f862fede42546c --key-b 0x1f68f07472879e3a \\
                   --nonce-a 0x13fbfa0b --nonce-b 0x1aeb0e38 \\
                   --expect-synack 0xd39221ae84e9bbe2
  mptcp-token add-addr --key-sender 0x5c3212923828b4ef \\
                       --key-receiver 0xb6efbdcdf9499c0b --id 5 --addr 10.77.2.2

Keys, nonces and HMACs are hexadecimal, with or without 0x. In a capture the
keys are in the MP_CAPABLE options (tcpdump: `capable v1 ... {KEY-A,KEY-B}`),
the nonces and HMACs in the MP_JOIN options. The exit status is 1 when an
expected value does not match, 2 on bad input."
)]
pub struct TokenArgs {
    /// 64-bit keys (hex): print each one's token and IDSN.
    #[arg(value_name = "KEY")]
    pub keys: Vec<String>,

    /// MPTCP v0 (RFC 6824): SHA-1 instead of SHA-256.
    #[arg(long, global = true)]
    pub v0: bool,

    /// One JSON object per result.
    #[arg(long, global = true)]
    pub json: bool,

    #[command(subcommand)]
    pub command: Option<TokenCommand>,
}

#[derive(Subcommand, Debug, Clone)]
pub enum TokenCommand {
    /// The MP_JOIN HMACs (RFC 8684 §3.2). A opens the subflow (sends the SYN
    /// with MP_JOIN), B answers it.
    Join(JoinArgs),
    /// The ADD_ADDR HMAC (RFC 8684 §3.4.1).
    #[command(name = "add-addr")]
    AddAddr(AddAddrArgs),
}

#[derive(Args, Debug, Clone)]
pub struct JoinArgs {
    /// The key of A, the host that sends the MP_JOIN SYN.
    #[arg(long, value_name = "KEY")]
    pub key_a: String,
    /// The key of B, the host that answers with the SYN/ACK.
    #[arg(long, value_name = "KEY")]
    pub key_b: String,
    /// A's nonce, from the MP_JOIN SYN.
    #[arg(long, value_name = "NONCE")]
    pub nonce_a: String,
    /// B's nonce, from the MP_JOIN SYN/ACK.
    #[arg(long, value_name = "NONCE")]
    pub nonce_b: String,
    /// The 64-bit HMAC seen in the SYN/ACK, to verify.
    #[arg(long, value_name = "HMAC")]
    pub expect_synack: Option<String>,
    /// The 160-bit HMAC seen in the third ACK, to verify.
    #[arg(long, value_name = "HMAC")]
    pub expect_ack: Option<String>,
}

#[derive(Args, Debug, Clone)]
pub struct AddAddrArgs {
    /// The key of the host that sends the ADD_ADDR.
    #[arg(long, value_name = "KEY", visible_alias = "key-a")]
    pub key_sender: String,
    /// The key of the host that receives it.
    #[arg(long, value_name = "KEY", visible_alias = "key-b")]
    pub key_receiver: String,
    /// The address id announced.
    #[arg(long, value_name = "ID")]
    pub id: u8,
    /// The address announced (IPv4 or IPv6).
    #[arg(long, value_name = "ADDR")]
    pub addr: IpAddr,
    /// The port announced, if the option carries one.
    #[arg(long, value_name = "PORT")]
    pub port: Option<u16>,
    /// The 64-bit HMAC seen in the option, to verify.
    #[arg(long, value_name = "HMAC")]
    pub expect: Option<String>,
}

/// Bad input or a failed verification.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("bad {what} `{input}`: {reason}")]
    BadInput { what: &'static str, input: String, reason: &'static str },
    #[error("{0}")]
    Usage(&'static str),
    #[error("unknown command `{input}`: did you mean `{suggestion}`?")]
    UnknownCommand { input: String, suggestion: &'static str },
    #[error("cannot write the output: {0}")]
    Output(#[from] io::Error),
}

/// How a run ended.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Expected values that did not match.
    pub mismatches: usize,
}

/// A KEY argument that is not hexadecimal but a subcommand's name with a
/// letter or two wrong (`jion`, `addaddr`): say which was meant.
fn misspelt_command(arg: &str) -> Option<TokenError> {
    if arg.bytes().all(|b| b.is_ascii_hexdigit()) || arg.starts_with("0x") {
        return None;
    }
    let a = arg.to_ascii_lowercase();
    ["join", "add-addr"]
        .into_iter()
        .find(|c| edit_distance(&a, c) <= 2 || a.replace(['-', '_'], "") == c.replace('-', ""))
        .map(|c| TokenError::UnknownCommand { input: arg.to_string(), suggestion: c })
}

/// Levenshtein distance, with a swap of neighbours counted once.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

/// Parse up to `max_digits` hex digits, with or without `0x`.
pub fn parse_hex(what: &'static str, s: &str, max_digits: usize) -> Result<u64, TokenError> {
    let bad = |reason| TokenError::BadInput { what, input: s.to_string(), reason };
    let h = s.trim();
    let h = h.strip_prefix("0x").or_else(|| h.strip_prefix("0X")).unwrap_or(h);
    if h.is_empty() {
        return Err(bad("no hexadecimal digits"));
    }
    if !h.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad("not hexadecimal"));
    }
    let h = h.trim_start_matches('0');
    if h.len() > max_digits {
        return Err(bad(match max_digits {
            8 => "longer than 32 bits",
            _ => "longer than 64 bits",
        }));
    }
    Ok(if h.is_empty() { 0 } else { u64::from_str_radix(h, 16).map_err(|_| bad("not hexadecimal"))? })
}

/// Parse a 160-bit HMAC: exactly 40 hex digits, with or without `0x`.
fn parse_hmac160(s: &str) -> Result<[u8; 20], TokenError> {
    let bad = |reason| TokenError::BadInput { what: "HMAC", input: s.to_string(), reason };
    let h = s.trim();
    let h = h.strip_prefix("0x").or_else(|| h.strip_prefix("0X")).unwrap_or(h);
    if h.len() != 40 {
        return Err(bad("a 160-bit HMAC has 40 hex digits"));
    }
    let mut out = [0u8; 20];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&h[2 * i..2 * i + 2], 16).map_err(|_| bad("not hexadecimal"))?;
    }
    Ok(out)
}

fn hex20(b: &[u8; 20]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[derive(Serialize)]
struct KeyJson {
    key: String,
    version: u8,
    token: String,
    idsn: u64,
    idsn_hex: String,
}

#[derive(Serialize)]
struct JoinJson {
    version: u8,
    key_a: String,
    key_b: String,
    token_a: String,
    token_b: String,
    nonce_a: String,
    nonce_b: String,
    hmac_synack: String,
    hmac_ack: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    synack_ok: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ack_ok: Option<bool>,
}

#[derive(Serialize)]
struct AddAddrJson {
    key_sender: String,
    key_receiver: String,
    addr_id: u8,
    addr: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    port: Option<u16>,
    hmac: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    ok: Option<bool>,
}

fn verdict(ok: bool) -> &'static str {
    if ok { "ok" } else { "MISMATCH" }
}

/// Run mptcp-token, writing to `out`.
pub fn run(args: &TokenArgs, out: &mut dyn Write) -> Result<Outcome, TokenError> {
    let version = if args.v0 { Version::V0 } else { Version::V1 };
    let mut outcome = Outcome::default();
    match &args.command {
        None => {
            if args.keys.is_empty() {
                return Err(TokenError::Usage("give at least one key, or a subcommand (join, add-addr)"));
            }
            if let Some(e) = args.keys.iter().find_map(|k| misspelt_command(k)) {
                return Err(e);
            }
            let keys = args.keys.iter().map(|k| parse_hex("key", k, 16).map(Key)).collect::<Result<Vec<_>, _>>()?;
            for key in keys {
                let (token, idsn) = key.token_idsn(version);
                if args.json {
                    let j = KeyJson {
                        key: format!("{:#018x}", key.0),
                        version: version.number(),
                        token: format!("{:#010x}", token.0),
                        idsn: idsn.0,
                        idsn_hex: format!("{:#018x}", idsn.0),
                    };
                    writeln!(out, "{}", serde_json::to_string(&j).expect("plain struct"))?;
                } else {
                    // Tokens as 0x%08x and IDSNs in decimal, as mptcp-dump and
                    // mptcp-ss print them; the IDSN's hex beside it.
                    writeln!(out, "key {:#018x}  token {:#010x}  idsn {} ({:#018x})", key.0, token.0, idsn.0, idsn.0)?;
                }
            }
        }
        Some(TokenCommand::Join(j)) => {
            let key_a = Key(parse_hex("key", &j.key_a, 16)?);
            let key_b = Key(parse_hex("key", &j.key_b, 16)?);
            let nonce_a = parse_hex("nonce", &j.nonce_a, 8)? as u32;
            let nonce_b = parse_hex("nonce", &j.nonce_b, 8)? as u32;
            let expect_synack = j.expect_synack.as_deref().map(|h| parse_hex("HMAC", h, 16)).transpose()?;
            let expect_ack = j.expect_ack.as_deref().map(parse_hmac160).transpose()?;
            // RFC 8684 §3.2: B's SYN/ACK carries HMAC(KeyB||KeyA, RB||RA)
            // truncated to 64 bits; A's ACK carries HMAC(KeyA||KeyB, RA||RB)
            // truncated to 160 bits.
            let synack = join_synack_hmac(version, key_b, key_a, nonce_b, nonce_a);
            let ack = join_ack_hmac(version, key_a, key_b, nonce_a, nonce_b);
            let synack_ok = expect_synack.map(|e| e == synack);
            let ack_ok = expect_ack.map(|e| e == ack);
            outcome.mismatches = [synack_ok, ack_ok].iter().filter(|v| **v == Some(false)).count();
            if args.json {
                let js = JoinJson {
                    version: version.number(),
                    key_a: format!("{:#018x}", key_a.0),
                    key_b: format!("{:#018x}", key_b.0),
                    token_a: format!("{:#010x}", key_a.token(version).0),
                    token_b: format!("{:#010x}", key_b.token(version).0),
                    nonce_a: format!("{nonce_a:#010x}"),
                    nonce_b: format!("{nonce_b:#010x}"),
                    hmac_synack: format!("{synack:#018x}"),
                    hmac_ack: format!("0x{}", hex20(&ack)),
                    synack_ok,
                    ack_ok,
                };
                writeln!(out, "{}", serde_json::to_string(&js).expect("plain struct"))?;
            } else {
                writeln!(
                    out,
                    "token of A {:#010x}, token of B {:#010x} (the MP_JOIN SYN carries B's)",
                    key_a.token(version).0,
                    key_b.token(version).0
                )?;
                write!(out, "SYN/ACK HMAC (B to A, 64 bits)  0x{synack:016x}")?;
                match (synack_ok, expect_synack) {
                    (Some(ok), Some(e)) if !ok => writeln!(out, "  {} (expected 0x{e:016x})", verdict(ok))?,
                    (Some(ok), _) => writeln!(out, "  {}", verdict(ok))?,
                    _ => writeln!(out)?,
                }
                write!(out, "ACK HMAC (A to B, 160 bits)     0x{}", hex20(&ack))?;
                match (ack_ok, expect_ack) {
                    (Some(ok), Some(e)) if !ok => writeln!(out, "  {} (expected 0x{})", verdict(ok), hex20(&e))?,
                    (Some(ok), _) => writeln!(out, "  {}", verdict(ok))?,
                    _ => writeln!(out)?,
                }
            }
        }
        Some(TokenCommand::AddAddr(a)) => {
            if args.v0 {
                return Err(TokenError::Usage("ADD_ADDR carries no HMAC in MPTCP v0 (RFC 6824)"));
            }
            let ks = Key(parse_hex("key", &a.key_sender, 16)?);
            let kr = Key(parse_hex("key", &a.key_receiver, 16)?);
            let expect = a.expect.as_deref().map(|h| parse_hex("HMAC", h, 16)).transpose()?;
            let hmac = add_addr_hmac(ks, kr, a.id, a.addr, a.port);
            let ok = expect.map(|e| e == hmac);
            outcome.mismatches = usize::from(ok == Some(false));
            if args.json {
                let js = AddAddrJson {
                    key_sender: format!("{:#018x}", ks.0),
                    key_receiver: format!("{:#018x}", kr.0),
                    addr_id: a.id,
                    addr: a.addr.to_string(),
                    port: a.port,
                    hmac: format!("{hmac:#018x}"),
                    ok,
                };
                writeln!(out, "{}", serde_json::to_string(&js).expect("plain struct"))?;
            } else {
                write!(out, "ADD_ADDR HMAC (id {} {}", a.id, a.addr)?;
                if let Some(p) = a.port {
                    write!(out, " port {p}")?;
                }
                write!(out, ")  0x{hmac:016x}")?;
                match (ok, expect) {
                    (Some(false), Some(e)) => writeln!(out, "  MISMATCH (expected 0x{e:016x})")?,
                    (Some(true), _) => writeln!(out, "  ok")?,
                    _ => writeln!(out)?,
                }
            }
        }
    }
    Ok(outcome)
}

/// The binary: exit 0 when every given HMAC matched, 1 on a mismatch, 2 on
/// any error (usage included).
pub fn main(argv: impl IntoIterator<Item = std::ffi::OsString>) -> std::process::ExitCode {
    crate::cli::main("mptcp-token", argv, |args: TokenArgs| {
        let stdout = io::stdout();
        let mut out = stdout.lock();
        match run(&args, &mut out) {
            Ok(o) if o.mismatches == 0 => Ok(0),
            Ok(_) => Ok(1),
            Err(e) => Err(crate::cli::Failure::with_status(2, e)),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_parsing() {
        assert_eq!(parse_hex("key", "0xbb206e3023b47a2d", 16).unwrap(), 0xbb206e3023b47a2d);
        assert_eq!(parse_hex("key", "BB206E3023B47A2D", 16).unwrap(), 0xbb206e3023b47a2d);
        assert_eq!(parse_hex("key", "0x000000000000000001", 16).unwrap(), 1);
        assert!(parse_hex("key", "0x1bb206e3023b47a2d", 16).is_err());
        assert!(parse_hex("key", "xyz", 16).is_err());
        assert!(parse_hex("key", "0x", 16).is_err());
        assert!(parse_hex("nonce", "123456789", 8).is_err());
        assert!(parse_hmac160("2a85ab0aada61f163dc23b049849eb414b718c15").is_ok());
        assert!(parse_hmac160("2a85").is_err());
    }
}
