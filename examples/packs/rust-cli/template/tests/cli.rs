use std::process::Command;

#[test]
fn greets_by_name() {
    let out = Command::new(env!("CARGO_BIN_EXE_{{project_name}}"))
        .args(["--name", "peerpack"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "Hello, peerpack!\n");
}
