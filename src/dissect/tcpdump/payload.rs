//! What tcpdump prints of a TCP payload: the text of a reset with `-v`,
//! and the application protocols it recognises by port that show up next to
//! MPTCP (the SSH version banner, HTTP request and response lines).

use super::fmt::{dec, print_char};

/// ` [RST text]` (tcpdump prints up to 30 bytes of a reset's payload with -v).
pub(super) fn rst_data(out: &mut Vec<u8>, payload: &[u8], wire_len: u32) {
    const MAX: usize = 30;
    out.extend_from_slice(if payload.len() as u64 >= wire_len as u64 { b" [RST" } else { b" [!RST" });
    let mut n = wire_len as usize;
    if n > MAX {
        n = MAX;
        out.push(b'+');
    }
    out.push(b' ');
    for &c in payload.iter().take(n) {
        print_char(out, c);
    }
    out.push(b']');
}

/// The application protocols tcpdump recognises by port that show up next
/// to MPTCP: the SSH version banner and HTTP request/response lines.
pub(super) fn tcp_payload(out: &mut Vec<u8>, sport: u16, dport: u16, payload: &[u8], wire_len: u32, verbose: bool) {
    let either = |p: u16| sport == p || dport == p;
    if either(22) {
        ssh_banner(out, payload, wire_len as usize);
    } else if either(80) || either(8080) {
        http(out, payload, wire_len as usize, verbose);
    }
}

/// tcpdump's `ssh_print`: the version line when the segment starts with
/// `SSH-` and holds a line end; reading past the capture ends the line with
/// ` [|ssh]`.
fn ssh_banner(out: &mut Vec<u8>, p: &[u8], len: usize) {
    let byte = |i: usize| p.get(i).copied();
    for (i, want) in b"SSH-".iter().enumerate() {
        match byte(i) {
            None => {
                out.extend_from_slice(b" [|ssh]");
                return;
            }
            Some(c) if c != *want => return,
            Some(_) => {}
        }
    }
    let mut i = 4;
    while i < len {
        let Some(c) = byte(i) else {
            out.extend_from_slice(b" [|ssh]");
            return;
        };
        if c == b'\n' {
            break;
        }
        if c == b'\r' {
            if i + 1 >= len {
                return;
            }
            match byte(i + 1) {
                None => {
                    out.extend_from_slice(b" [|ssh]");
                    return;
                }
                Some(b'\n') => break,
                Some(_) => return,
            }
        }
        if !(0x20..0x7f).contains(&c) {
            // Binary data, not a version line.
            return;
        }
        i += 1;
    }
    if i >= len {
        return;
    }
    out.extend_from_slice(b": SSH: ");
    out.extend_from_slice(&p[..i]);
}

/// HTTP request methods tcpdump recognises (print-http.c).
const HTTP_METHODS: [&[u8]; 38] = [
    b"GET",
    b"PUT",
    b"COPY",
    b"HEAD",
    b"LOCK",
    b"MOVE",
    b"POLL",
    b"POST",
    b"BCOPY",
    b"BMOVE",
    b"MKCOL",
    b"TRACE",
    b"LABEL",
    b"MERGE",
    b"DELETE",
    b"SEARCH",
    b"UNLOCK",
    b"REPORT",
    b"UPDATE",
    b"NOTIFY",
    b"BDELETE",
    b"CONNECT",
    b"OPTIONS",
    b"CHECKIN",
    b"PROPFIND",
    b"CHECKOUT",
    b"CCM_POST",
    b"SUBSCRIBE",
    b"PROPPATCH",
    b"BPROPFIND",
    b"BPROPPATCH",
    b"UNCHECKOUT",
    b"MKACTIVITY",
    b"MKWORKSPACE",
    b"UNSUBSCRIBE",
    b"RPC_CONNECT",
    b"VERSION-CONTROL",
    b"BASELINE-CONTROL",
];

/// tcpdump's `fetch_token`: the token at `idx` (printable ASCII up to
/// white space, at most 127 bytes) and the index after the white space that
/// follows it; `None` when there is no token.
fn fetch_token(p: &[u8], mut idx: usize, len: usize) -> Option<(&[u8], usize)> {
    let start = idx;
    while idx < len {
        let c = *p.get(idx)?;
        if !c.is_ascii() {
            return None;
        }
        if matches!(c, b' ' | b'\t' | b'\r' | b'\n') {
            break;
        }
        if !(0x20..0x7f).contains(&c) || idx - start + 2 > 129 {
            return None;
        }
        idx += 1;
    }
    if idx == start {
        return None;
    }
    let token = &p[start..idx];
    while idx < len {
        match p.get(idx) {
            Some(b' ' | b'\t') => idx += 1,
            _ => break,
        }
    }
    Some((token, idx))
}

/// Why a text line could not be printed whole.
enum TextEnd {
    /// The next line starts here.
    Next(usize),
    /// Binary data or a line cut by the segment: stop quietly.
    Stop,
    /// The capture ended first: tcpdump's ` [|proto]`.
    Trunc,
}

/// tcpdump's `print_txt_line`: one line of text at `idx`, after `prefix`.
fn txt_line(out: &mut Vec<u8>, prefix: &[u8], p: &[u8], idx: usize, len: usize) -> TextEnd {
    let start = idx;
    let mut i = idx;
    while i < len {
        let Some(&c) = p.get(i) else { return TextEnd::Trunc };
        match c {
            b'\n' => {
                out.extend_from_slice(prefix);
                out.extend_from_slice(&p[start..i]);
                return TextEnd::Next(i + 1);
            }
            b'\r' => {
                if i + 1 >= len {
                    return TextEnd::Stop;
                }
                return match p.get(i + 1) {
                    None => TextEnd::Trunc,
                    Some(b'\n') => {
                        out.extend_from_slice(prefix);
                        out.extend_from_slice(&p[start..i]);
                        TextEnd::Next(i + 2)
                    }
                    Some(_) => TextEnd::Stop,
                };
            }
            c if !(0x20..0x7f).contains(&c) && c != b'\t' => return TextEnd::Stop,
            _ => i += 1,
        }
    }
    // Printable to the end of the segment, with no line end: tcpdump
    // prints it and marks it cut.
    out.extend_from_slice(prefix);
    out.extend_from_slice(&p[start..i]);
    TextEnd::Trunc
}

/// tcpdump's `txtproto_print` for HTTP: the first request or response line,
/// or with -v every text line on a line of its own.
fn http(out: &mut Vec<u8>, p: &[u8], len: usize, verbose: bool) {
    out.extend_from_slice(b": HTTP");
    let mut print_this = false;
    if let Some((token, idx)) = fetch_token(p, 0, len) {
        print_this = HTTP_METHODS.iter().any(|m| token.eq_ignore_ascii_case(m));
        // The response code is the second token (`HTTP/1.1 200 OK`).
        if let Some((code, _)) = fetch_token(p, idx, len) {
            print_this |= code.len() == 3 && code.iter().all(|c| c.is_ascii_digit());
        }
    }
    if !print_this {
        return;
    }
    if verbose {
        out.extend_from_slice(b", length: ");
        dec(out, len as u64);
        let mut idx = 0;
        while idx < len {
            match txt_line(out, b"\n\t", p, idx, len) {
                TextEnd::Next(n) => idx = n,
                TextEnd::Stop => return,
                TextEnd::Trunc => {
                    out.extend_from_slice(b" [|http]");
                    return;
                }
            }
        }
    } else if let TextEnd::Trunc = txt_line(out, b": ", p, 0, len) {
        out.extend_from_slice(b" [|http]");
    }
}
