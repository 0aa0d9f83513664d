//! `mptcp-cat --sim` reaches the simulator from the binary's own argument
//! dispatch (the simulator itself is tested in sim_*.rs). No root needed.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::{bin, pseudo_random_bytes};

#[test]
fn sim_flag_runs_the_simulator_from_the_binary() {
    let data = pseudo_random_bytes(300_000, 5);
    let mut c = Command::new(bin("mptcp-cat"))
        .args(["--sim", "--seed", "3", "--path", "rate=20mbit,delay=5ms", "--path", "rate=20mbit,delay=15ms"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn mptcp-cat");
    let mut stdin = c.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || stdin.write_all(&data).map(|_| data));
    let out = c.wait_with_output().expect("wait");
    let data = feeder.join().unwrap().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(out.stdout == data, "the server's output differs from the client's input");
    assert!(err.contains("MPTCP"), "{err}");
    // A bad simulator option is a usage error, reported by the simulator's parser.
    let o = Command::new(bin("mptcp-cat")).args(["--sim", "--path", "rate=fast"]).output().unwrap();
    assert!(!o.status.success());
}
