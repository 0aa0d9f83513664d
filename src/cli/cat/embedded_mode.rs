//! `--stack embedded`: the command line turned into the embedded driver's
//! [`Options`](crate::stack::driver::tun_loop::Options); the poll loop
//! itself lives in `crate::stack::driver::tun_loop`.
//!
//! - The first `--local` is the primary address (the client connects from
//!   it, ID 0 on the initial subflow); the others open subflows on a client
//!   (`subflow` by default) and are announced on a server (`signal` by
//!   default), unless flags are given.
//! - `--limits`, `--scheduler`, `--cc` configure our stack, not the kernel.
//! - `--fastopen`: Fast Open in our stack (a client asks for and uses
//!   cookies, a listener issues them); `--fastopen-cache FILE` keeps a
//!   client's cookies across runs.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;

use anyhow::{Context, bail};

use super::args::{CatArgs, Target};
use super::kernel_mode::resolve;
use super::output::SessionLog;
use crate::stack::driver::tun_loop::{self, LocalAddress, Options, Role};
use crate::stack::{AddrFlags, CcKind, Config, CookieCache, Limits, SchedulerKind};
use crate::sys::signals::Termination;

/// The default TUN name when --tun is not given.
pub const DEFAULT_TUN: &str = "mptcp0";

pub fn options(args: &CatArgs, target: &Target) -> anyhow::Result<Options> {
    let listen = matches!(target, Target::Listen { .. });
    let mut locals = Vec::new();
    for (i, l) in args.local.iter().enumerate() {
        let Some(prefix) = l.prefix else {
            bail!("--local {}: the embedded stack needs a prefix (e.g. {}/24)", l.addr, l.addr);
        };
        if l.flags.fullmesh {
            bail!("--local {}: fullmesh is a kernel path-manager mode; the embedded stack does not have it", l.addr);
        }
        let mut flags =
            AddrFlags { subflow: l.flags.subflow, signal: l.flags.signal, backup: l.flags.backup, port: l.port };
        if i > 0 && !l.flags.subflow && !l.flags.signal {
            if listen {
                flags.signal = true;
            } else {
                flags.subflow = true;
            }
        }
        locals.push(LocalAddress { addr: l.addr, prefix, flags });
    }
    let Some(primary) = locals.first().copied() else {
        bail!("--stack embedded needs at least one --local ADDR/PREFIX");
    };
    if (args.ipv4 && primary.addr.is_ipv6()) || (args.ipv6 && primary.addr.is_ipv4()) {
        bail!("the primary --local {} does not match the address family chosen by -4/-6", primary.addr);
    }
    let mut config = Config::default();
    if let Some(l) = args.limits {
        config.limits = Limits {
            subflows: l.subflows as u8,
            add_addr_accepted: l.add_addr_accepted.map_or(config.limits.add_addr_accepted, |a| a as u8),
        };
    }
    if let Some(s) = &args.scheduler {
        config.scheduler = s.parse::<SchedulerKind>().map_err(anyhow::Error::msg).context("--scheduler")?;
    }
    if let Some(c) = &args.cc {
        config.cc = c.parse::<CcKind>().map_err(anyhow::Error::msg).context("--cc")?;
    }
    if args.fastopen {
        config.fastopen.client = !listen;
        config.fastopen.server = listen;
        if let Some(path) = &args.fastopen_cache {
            if listen {
                bail!("--fastopen-cache: a listener keeps no cookies (it issues them)");
            }
            load_cookies(path, &config.fastopen.cache)?;
        }
    }
    let v6 = primary.addr.is_ipv6();
    let role = match target {
        Target::Connect { host, port } => {
            let remotes = resolve(host, *port, !v6, v6)?;
            let remote = remotes
                .into_iter()
                .find(|r| r.is_ipv6() == v6)
                .with_context(|| format!("{host} has no {} address", if v6 { "IPv6" } else { "IPv4" }))?;
            let local = match (args.source, args.source_port) {
                (None, None) => None,
                (ip, port) => Some(SocketAddr::new(ip.unwrap_or(primary.addr), port.unwrap_or(0))),
            };
            Role::Connect { remote, local }
        }
        Target::Listen { addr, port } => {
            let ip: IpAddr = match addr {
                Some(a) => resolve(a, *port, args.ipv4, args.ipv6)?[0].ip(),
                None if v6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
                None => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            };
            Role::Listen(SocketAddr::new(ip, *port))
        }
    };
    let exec = match (&args.exec, &args.sh_exec) {
        (Some(e), _) => Some(e.split_whitespace().map(String::from).collect::<Vec<_>>()),
        (None, Some(c)) => Some(vec!["/bin/sh".to_string(), "-c".to_string(), c.clone()]),
        _ => None,
    };
    if exec.as_ref().is_some_and(|e| e.is_empty()) {
        bail!("-e: empty program");
    }
    Ok(Options {
        role,
        tun: args.tun.clone().unwrap_or_else(|| DEFAULT_TUN.to_string()),
        tun_offload: !args.no_tun_offload,
        locals,
        config,
        seed: None,
        // The driver finds out whether standard input is a terminal.
        rules: args.session_rules(false),
        require_mptcp: args.require_mptcp,
        connect_timeout: args.connect_timeout,
        verbose: args.verbose,
        exec,
        pcap: args.pcap.clone(),
        control_socket: true,
    })
}

/// Read a `--fastopen-cache` file into `cache` (a missing file is an
/// empty cache; an unreadable or malformed one is an error).
fn load_cookies(path: &Path, cache: &CookieCache) -> anyhow::Result<()> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("--fastopen-cache {}", path.display())),
    };
    cache.load_text(&text).with_context(|| format!("--fastopen-cache {}", path.display()))?;
    Ok(())
}

/// Write the cookies back (through a temporary file: a crash leaves the
/// old file or the new one, never half of one).
fn save_cookies(path: &Path, cache: &CookieCache) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, cache.to_text())
        .and_then(|()| std::fs::rename(&tmp, path))
        .with_context(|| format!("--fastopen-cache {}: writing", path.display()))
}

pub fn run(args: &CatArgs, target: Target, term: &Termination) -> anyhow::Result<()> {
    let opts = options(args, &target)?;
    let mut log = SessionLog::open(args.output.as_deref(), args.hex_dump.as_deref())?;
    let result = tun_loop::run(&opts, &mut log, term);
    // The cookies learnt are kept even when the session failed.
    if let Some(path) = args.fastopen_cache.as_deref().filter(|_| opts.config.fastopen.client) {
        save_cookies(path, &opts.config.fastopen.cache)?;
    }
    result?;
    Ok(())
}
