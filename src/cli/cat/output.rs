//! Where session data goes: standard output, and ncat's `-o` (raw log of
//! both directions) and `-x` (hex dump of both directions) files; and where
//! mptcp-cat's own remarks go (`note`, standard error).

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use anyhow::Context;

/// One remark of mptcp-cat's on standard error (`-v` reports, warnings).
pub(crate) fn note(msg: impl std::fmt::Display) {
    eprintln!("mptcp-cat: {msg}");
}

/// ncat's hex dump of one chunk: lines of
/// `OOOO   hh hh hh hh hh hh hh hh  hh hh hh hh hh hh hh hh  ascii...........`
/// with the offset restarting at 0 for every chunk, bytes 0x21..=0x7e shown
/// as themselves and everything else as '.'.
pub fn hexdump_chunk(data: &[u8], out: &mut String) {
    use std::fmt::Write as _;
    for (line, chunk) in data.chunks(16).enumerate() {
        let _ = write!(out, "{:04x}   ", line * 16);
        for i in 0..16 {
            match chunk.get(i) {
                Some(b) => {
                    let _ = write!(out, "{b:02x} ");
                }
                None => out.push_str("   "),
            }
            if i == 7 {
                out.push(' ');
            }
        }
        out.push(' ');
        for i in 0..16 {
            out.push(match chunk.get(i) {
                Some(&b) if (0x21..=0x7e).contains(&b) => b as char,
                Some(_) => '.',
                None => ' ',
            });
        }
        out.push('\n');
    }
}

/// The -o and -x logs.
#[derive(Default)]
pub struct SessionLog {
    raw: Option<BufWriter<File>>,
    hex: Option<BufWriter<File>>,
    scratch: String,
}

impl SessionLog {
    pub fn open(raw: Option<&Path>, hex: Option<&Path>) -> anyhow::Result<SessionLog> {
        let open = |p: &Path| -> anyhow::Result<BufWriter<File>> {
            Ok(BufWriter::new(File::create(p).with_context(|| format!("cannot create {}", p.display()))?))
        };
        Ok(SessionLog { raw: raw.map(open).transpose()?, hex: hex.map(open).transpose()?, scratch: String::new() })
    }

    /// Record a chunk that went either way.
    pub fn record(&mut self, data: &[u8]) -> io::Result<()> {
        if let Some(w) = &mut self.raw {
            w.write_all(data)?;
        }
        if let Some(w) = &mut self.hex {
            self.scratch.clear();
            hexdump_chunk(data, &mut self.scratch);
            w.write_all(self.scratch.as_bytes())?;
        }
        Ok(())
    }

    pub fn flush(&mut self) -> io::Result<()> {
        if let Some(w) = &mut self.raw {
            w.flush()?;
        }
        if let Some(w) = &mut self.hex {
            w.flush()?;
        }
        Ok(())
    }
}

impl crate::session::Log for SessionLog {
    fn record(&mut self, data: &[u8]) -> io::Result<()> {
        SessionLog::record(self, data)
    }
    fn flush(&mut self) -> io::Result<()> {
        SessionLog::flush(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hexdump_matches_ncat() {
        // Lines produced by ncat 7.93 -x for the same chunks.
        let mut s = String::new();
        hexdump_chunk(b"hello world, this is a longer line of text!\n", &mut s);
        let want = "\
0000   68 65 6c 6c 6f 20 77 6f  72 6c 64 2c 20 74 68 69  hello.world,.thi
0010   73 20 69 73 20 61 20 6c  6f 6e 67 65 72 20 6c 69  s.is.a.longer.li
0020   6e 65 20 6f 66 20 74 65  78 74 21 0a              ne.of.text!.    
";
        assert_eq!(s, want);
        s.clear();
        hexdump_chunk(b"abc\x01\x02xyz", &mut s);
        assert_eq!(s, "0000   61 62 63 01 02 78 79 7a                           abc..xyz        \n");
        s.clear();
        hexdump_chunk(b"", &mut s);
        assert_eq!(s, "");
    }
}
