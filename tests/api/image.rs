//! The container image's start-up, without Docker (these machines have
//! none): the Dockerfile makes `/var/lib/clearance/data` and gives it to the
//! `clearance` user before it becomes a volume, and runs the binary as that
//! user. These tests do the same with the binary `cargo test` built
//! (`target/debug/clearance`, not the image's release build — the same code
//! with other optimisations): a data folder made by root and handed to a
//! user that is not root, and the server started as that user. What they
//! cannot check is Docker itself (that a new named volume copies the
//! folder's owner); the compose file is checked by `tests/compose_check.py`.
//!
//! As root (CI, containers) the server runs under a uid no account has; as
//! anyone else it runs as that user, who is already not root.

use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::smtp::free_port;

/// The uid and gid the server runs under when the tests run as root.
const UNPRIVILEGED: u32 = 4242;

fn running_as_root() -> bool {
    // /proc/self belongs to the effective user.
    std::fs::metadata("/proc/self").unwrap().uid() == 0
}

/// `clearance <args>` with only the image's settings, as the unprivileged
/// user (see the module's comment).
fn clearance(data: &Path, port: u16, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_clearance"));
    command
        .args(args)
        .env_clear()
        .current_dir("/")
        .env("CLEARANCE_BIND", format!("127.0.0.1:{port}"))
        .env("CLEARANCE_DATA_DIR", data)
        .env(
            "CLEARANCE_WORKFLOWS",
            concat!(env!("CARGO_MANIFEST_DIR"), "/workflows"),
        )
        .env("CLEARANCE_LOG_FORMAT", "json")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null());
    if running_as_root() {
        command.uid(UNPRIVILEGED).gid(UNPRIVILEGED);
    }
    command
}

/// A folder the unprivileged user may pass through (root's temporary
/// folders are `0700`).
fn open_parent() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let parent = tempfile::tempdir().unwrap();
    std::fs::set_permissions(parent.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    parent
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn health(data: &Path, port: u16, args: &[&str]) -> Output {
    clearance(data, port, &["health"])
        .args(args)
        .output()
        .unwrap()
}

#[tokio::test]
async fn the_server_starts_as_an_unprivileged_user_on_a_data_folder_made_like_the_images() {
    let parent = open_parent();
    let data = parent.path().join("data");
    // The Dockerfile: `install -d -o clearance -g clearance -m 0700 …/data`.
    std::fs::create_dir(&data).unwrap();
    if running_as_root() {
        std::os::unix::fs::chown(&data, Some(UNPRIVILEGED), Some(UNPRIVILEGED)).unwrap();
    }
    let port = free_port();
    let log = parent.path().join("server.log");
    let mut server = Server(
        clearance(&data, port, &["serve"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("the server binary starts"),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = server.0.try_wait().unwrap() {
            panic!(
                "the server exited ({status}): {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        if health(&data, port, &["--ready"]).status.success() {
            break;
        }
        assert!(Instant::now() < deadline, "the server did not become ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let alive = health(&data, port, &[]);
    assert!(alive.status.success(), "{alive:?}");
    let said = String::from_utf8_lossy(&alive.stdout);
    assert!(said.contains("/healthz: HTTP/1.1 200"), "{said}");

    // What it wrote is the unprivileged user's, and the folder stays private.
    let owner = std::fs::metadata(&data).unwrap();
    assert_eq!(owner.mode() & 0o777, 0o700);
    for entry in std::fs::read_dir(&data).unwrap() {
        let entry = entry.unwrap();
        let uid = entry.metadata().unwrap().uid();
        assert_eq!(uid, owner.uid(), "{}", entry.path().display());
    }
    if running_as_root() {
        assert_eq!(owner.uid(), UNPRIVILEGED);
    }
}

/// What happened before the Dockerfile made the folder: the volume came up
/// root's, and the server, not root, could not make it private.
#[test]
fn a_data_folder_of_roots_stops_an_unprivileged_server_and_says_why() {
    let parent = open_parent();
    let data = if running_as_root() {
        let data = parent.path().join("data");
        std::fs::create_dir(&data).unwrap();
        data
    } else {
        // A folder root owns and this user does not.
        Path::new("/").to_owned()
    };
    let output = clearance(&data, free_port(), &["serve"]).output().unwrap();
    assert!(!output.status.success());
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("data folder"), "{said}");
    assert!(said.contains("Operation not permitted"), "{said}");
}

#[test]
fn health_fails_when_nothing_listens() {
    let parent = open_parent();
    for args in [&[][..], &["--ready"][..]] {
        let output = health(parent.path(), free_port(), args);
        assert_eq!(output.status.code(), Some(1), "{output:?}");
        let said = String::from_utf8_lossy(&output.stderr);
        assert!(said.contains("Connection refused"), "{said}");
    }
}
