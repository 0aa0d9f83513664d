//! `mptcp-dump --summary` writes the report a connection at a time
//! (`summary::write_analysis`): the text must be the one the whole report
//! gives (`summary::write_summary` of `Analyzer::finish`), for every bundled
//! capture.

mod analysis_util;

use analysis_util::{captures, frames, stem};
use mptcp_tools::dissect::analysis::{Analyzer, AnalyzerOptions};
use mptcp_tools::dissect::packet::decode;
use mptcp_tools::dissect::summary;

#[test]
fn streamed_summary_is_the_whole_reports() {
    let caps = captures();
    assert!(caps.len() > 10, "the bundled captures");
    for path in caps {
        let fr = frames(&path);
        let mut a = Analyzer::new(AnalyzerOptions::default());
        for (m, d) in &fr {
            a.observe(m, &decode(m.linktype, d));
        }
        let mut streamed = Vec::new();
        summary::write_analysis(&mut streamed, &a).unwrap();
        let counts = a.report_counts();
        let report = a.finish();
        assert_eq!((counts.connections, counts.tcp_flows), (report.connections.len(), report.tcp_flows.len()));
        let mut whole = Vec::new();
        summary::write_summary(&mut whole, &report);
        assert_eq!(String::from_utf8_lossy(&streamed), String::from_utf8_lossy(&whole), "{}", stem(&path));
    }
}

/// A writer that fails: the error comes back, no panic.
#[test]
fn a_failing_output_is_an_error() {
    struct Broken;
    impl std::io::Write for Broken {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::new(std::io::ErrorKind::BrokenPipe, "closed"))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let path = captures().into_iter().next().unwrap();
    let mut a = Analyzer::new(AnalyzerOptions::default());
    for (m, d) in &frames(&path) {
        a.observe(m, &decode(m.linktype, d));
    }
    let e = summary::write_analysis(&mut Broken, &a).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe);
}
