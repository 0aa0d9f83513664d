//! The control-socket protocol between a running embedded `mptcp-cat` (the
//! server) and `mptcp-ss` or any script (the client).
//!
//! - Each embedded mptcp-cat process listens on one Unix stream socket,
//!   `RUNTIME_DIR/mptcp-cat-PID.sock`, and removes it on exit.
//! - `RUNTIME_DIR` is `$MPTCP_TOOLS_RUNTIME_DIR` if set, else
//!   `$XDG_RUNTIME_DIR/mptcp-tools` if `XDG_RUNTIME_DIR` is set, else
//!   `/run/mptcp-tools` for root and `/tmp/mptcp-tools-UID` for others.
//! - The client writes one request line; the server answers with one line of
//!   JSON and keeps the connection open for further requests:
//!   - `snapshot` -> a [`crate::snapshot::Snapshot`] (`{"connections": [...], "mib": {...}}`),
//!     every connection with `"source": "embedded:PID"`.
//!   - `events` -> `{"events": [...]}`: the path-manager style events since the
//!     previous `events` request on this connection (see [`ControlEvent`]).
//!   - anything else -> `{"error": "unknown request ..."}`.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::snapshot::Snapshot;

/// The directory holding the control sockets.
pub fn runtime_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("MPTCP_TOOLS_RUNTIME_DIR") {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_RUNTIME_DIR") {
        return Path::new(&d).join("mptcp-tools");
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let uid = unsafe { libc::geteuid() };
    if uid == 0 { PathBuf::from("/run/mptcp-tools") } else { PathBuf::from(format!("/tmp/mptcp-tools-{uid}")) }
}

/// The socket path of process `pid`.
pub fn socket_path(pid: u32) -> PathBuf {
    runtime_dir().join(format!("mptcp-cat-{pid}.sock"))
}

/// Control sockets present in the runtime directory, with their PIDs.
pub fn list_sockets() -> Vec<(u32, PathBuf)> {
    list_sockets_in(&runtime_dir())
}

/// Control sockets present in `dir`, with their PIDs.
pub fn list_sockets_in(dir: &Path) -> Vec<(u32, PathBuf)> {
    let mut v = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let name = e.file_name();
            let name = name.to_string_lossy();
            if let Some(pid) = name.strip_prefix("mptcp-cat-").and_then(|r| r.strip_suffix(".sock")) {
                if let Ok(pid) = pid.parse() {
                    v.push((pid, e.path()));
                }
            }
        }
    }
    v.sort();
    v
}

/// One event an embedded stack reports (the same vocabulary as the kernel's
/// mptcp_pm events).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ControlEvent {
    /// Milliseconds since the process started.
    pub time_ms: u64,
    /// "created", "established", "closed", "announced", "removed",
    /// "sub_established", "sub_closed", "sub_priority", "fallback"; from
    /// packets also "mp_fail", "hmac_failed", "checksum_failed",
    /// "key_mismatch", "reinjection".
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_loc: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_rem: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<bool>,
    /// A reason in words (reset reason, fallback reason, error).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The capture frame that shows the event (events reconstructed from
    /// packets by mptcp-ss -r/-i; absent from live stacks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame: Option<u64>,
}

/// The reply to `events`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EventBatch {
    pub events: Vec<ControlEvent>,
}

/// Errors talking to a control socket.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("control socket {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("control socket {path}: bad reply: {detail}")]
    BadReply { path: PathBuf, detail: String },
}

/// A client connection to one control socket.
pub struct ControlClient {
    path: PathBuf,
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl ControlClient {
    pub fn connect(path: &Path) -> Result<ControlClient, ControlError> {
        let io = |source| ControlError::Io { path: path.to_path_buf(), source };
        let s = UnixStream::connect(path).map_err(io)?;
        s.set_read_timeout(Some(Duration::from_secs(2))).map_err(io)?;
        let writer = s.try_clone().map_err(io)?;
        Ok(ControlClient { path: path.to_path_buf(), reader: BufReader::new(s), writer })
    }

    fn request(&mut self, req: &str) -> Result<String, ControlError> {
        let io = |source| ControlError::Io { path: self.path.clone(), source };
        self.writer.write_all(format!("{req}\n").as_bytes()).map_err(io)?;
        let mut line = String::new();
        let n =
            self.reader.read_line(&mut line).map_err(|source| ControlError::Io { path: self.path.clone(), source })?;
        if n == 0 {
            return Err(ControlError::BadReply { path: self.path.clone(), detail: "connection closed".into() });
        }
        Ok(line)
    }

    pub fn snapshot(&mut self) -> Result<Snapshot, ControlError> {
        let line = self.request("snapshot")?;
        serde_json::from_str(&line)
            .map_err(|e| ControlError::BadReply { path: self.path.clone(), detail: e.to_string() })
    }

    pub fn events(&mut self) -> Result<EventBatch, ControlError> {
        let line = self.request("events")?;
        serde_json::from_str(&line)
            .map_err(|e| ControlError::BadReply { path: self.path.clone(), detail: e.to_string() })
    }
}

/// Server side: the reply line (with its newline) to one request line.
pub fn reply(request: &str, snapshot: impl FnOnce() -> Snapshot, events: impl FnOnce() -> EventBatch) -> String {
    let mut s = match request.trim() {
        "snapshot" => serde_json::to_string(&snapshot()),
        "events" => serde_json::to_string(&events()),
        other => {
            Ok(serde_json::json!({ "error": format!("unknown request {other:?}; try snapshot or events") }).to_string())
        }
    }
    .unwrap_or_else(|e| serde_json::json!({ "error": e.to_string() }).to_string());
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_lines() {
        let r = reply("snapshot\n", Snapshot::default, EventBatch::default);
        assert_eq!(r, "{\"connections\":[]}\n");
        let r = reply("events", Snapshot::default, EventBatch::default);
        assert_eq!(r, "{\"events\":[]}\n");
        assert!(reply("nope", Snapshot::default, EventBatch::default).contains("unknown request"));
    }
}
