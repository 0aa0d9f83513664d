//! `--local`, `--limits` and `--scheduler` for `--stack kernel`: the kernel
//! keeps these per network namespace (`ip mptcp endpoint`, `ip mptcp
//! limits`, `net.mptcp.scheduler`), so mptcp-cat applies them for its run
//! and undoes them on exit (also on SIGINT/SIGTERM: the loops return and
//! this guard is dropped).
//!
//! - The first `--local` is the primary address: the client binds to it,
//!   the server listens on it. It is not added as an endpoint.
//! - Every further `--local` becomes an endpoint, flagged `subflow` on a
//!   client (the kernel opens a subflow from it) and `signal` on a server
//!   (the kernel announces it with ADD_ADDR), unless flags are given.
//! - The subflow limit is raised to cover the extra addresses when
//!   `--limits` does not say otherwise.

use anyhow::Context;

use super::args::CatArgs;
use super::output::note;
use crate::sys::pm_netlink::{self, PathManager, PmLimits};

const SCHED_PATH: &str = "/proc/sys/net/mptcp/scheduler";
const SCHED_AVAILABLE: &str = "/proc/sys/net/mptcp/available_schedulers";

#[derive(Default)]
pub struct PmGuard {
    pm: Option<PathManager>,
    added: Vec<(u8, String)>,
    old_limits: Option<PmLimits>,
    old_scheduler: Option<String>,
    verbose: bool,
}

impl PmGuard {
    pub fn apply(args: &CatArgs, listen: bool) -> anyhow::Result<PmGuard> {
        let mut g = PmGuard::default();
        g.verbose = args.verbose > 0;
        if let Some(name) = &args.scheduler {
            let available = std::fs::read_to_string(SCHED_AVAILABLE).with_context(|| {
                format!("--scheduler: this kernel has no MPTCP scheduler choice ({SCHED_AVAILABLE} missing)")
            })?;
            if !available.split_whitespace().any(|s| s == name) {
                anyhow::bail!("--scheduler {name}: the kernel offers only: {}", available.trim());
            }
            let current = std::fs::read_to_string(SCHED_PATH).unwrap_or_default().trim().to_string();
            if current != *name {
                std::fs::write(SCHED_PATH, name).with_context(|| format!("--scheduler: cannot write {SCHED_PATH}"))?;
                if g.verbose {
                    note(format!("scheduler {name} for this network namespace (was {current})"));
                }
                g.old_scheduler = Some(current);
            }
        }
        let extra = args.local.get(1..).unwrap_or(&[]);
        if extra.is_empty() && args.limits.is_none() {
            return Ok(g);
        }
        let mut pmc = PathManager::open()?;
        let old = pmc.limits()?;
        let want = match args.limits {
            Some(l) => PmLimits {
                subflows: l.subflows,
                add_addr_accepted: l.add_addr_accepted.unwrap_or(old.add_addr_accepted),
            },
            None => {
                PmLimits { subflows: old.subflows.max(extra.len() as u32), add_addr_accepted: old.add_addr_accepted }
            }
        };
        if want != old {
            pmc.set_limits(want)?;
            g.old_limits = Some(old);
            if g.verbose {
                note(format!(
                    "path-manager limits: subflows {}, add_addr_accepted {} (were {}, {})",
                    want.subflows, want.add_addr_accepted, old.subflows, old.add_addr_accepted
                ));
            }
        }
        let existing = pmc.endpoints()?;
        for l in extra {
            let mut flags = 0;
            if l.flags.subflow {
                flags |= pm_netlink::FLAG_SUBFLOW;
            }
            if l.flags.signal {
                flags |= pm_netlink::FLAG_SIGNAL;
            }
            if flags == 0 {
                flags = if listen { pm_netlink::FLAG_SIGNAL } else { pm_netlink::FLAG_SUBFLOW };
            }
            if l.flags.backup {
                flags |= pm_netlink::FLAG_BACKUP;
            }
            if l.flags.fullmesh {
                flags |= pm_netlink::FLAG_FULLMESH;
            }
            if let Some(e) = existing.iter().find(|e| e.addr == l.addr && e.port == l.port) {
                if g.verbose {
                    note(format!(
                        "endpoint {} already exists (id {}, {}); left as it is",
                        l.addr,
                        e.id,
                        pm_netlink::flag_names(e.flags)
                    ));
                }
                continue;
            }
            let id = pmc.add_endpoint(l.addr, l.port, flags)?;
            if g.verbose {
                note(format!("endpoint {} id {id} {}", l.addr, pm_netlink::flag_names(flags)));
            }
            g.added.push((id, l.addr.to_string()));
        }
        g.pm = Some(pmc);
        Ok(g)
    }
}

impl Drop for PmGuard {
    fn drop(&mut self) {
        if let Some(pmc) = &mut self.pm {
            for (id, addr) in self.added.drain(..) {
                if let Err(e) = pmc.del_endpoint(id) {
                    note(format!("cannot remove endpoint {addr} (id {id}): {e}"));
                }
            }
            if let Some(l) = self.old_limits.take() {
                if let Err(e) = pmc.set_limits(l) {
                    note(format!("cannot restore path-manager limits: {e}"));
                }
            }
        }
        if let Some(s) = self.old_scheduler.take() {
            if let Err(e) = std::fs::write(SCHED_PATH, &s) {
                note(format!("cannot restore net.mptcp.scheduler={s}: {e}"));
            }
        }
    }
}
