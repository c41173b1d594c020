//! Tests of the hardening with the real kernel as the oracle: real programs run hardened, and
//! each claim is checked against the same program run without the hardening (the control), so
//! that a test cannot pass because the host refuses the operation anyway.

use std::collections::BTreeMap;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use seccompiler::sock_filter;

use super::seccomp_filter::{self, DENIED, When};
use super::{HardenError, Hardening, HardeningOptions, LandlockMode, Rlimits, Step};

/// An unprivileged uid and gid that no account uses.
const NOBODY: u32 = 4242;
const PYTHON: &str = "/usr/bin/python3";

fn options(uid: u32) -> HardeningOptions {
    HardeningOptions {
        uid,
        gid: uid,
        rlimits: Rlimits { file_size: 1 << 20, open_files: 256 },
        landlock: LandlockMode::Off,
    }
}

fn hardening(options: &HardeningOptions) -> Arc<Hardening> {
    Arc::new(Hardening::new(options).expect("hardening compiles"))
}

fn errno_of(error: &HardenError) -> i32 {
    match error {
        HardenError::Step { errno, .. } => *errno as i32,
        // Distinct from anything a system call of the hardening returns.
        HardenError::LandlockNotPrepared => libc::ENOPKG,
        _ => libc::EINVAL,
    }
}

/// `program args` with an empty environment, run hardened.
fn hardened(hardening: &Arc<Hardening>, program: &str, args: &[&str]) -> Command {
    let mut command = Command::new(program);
    command.args(args).env_clear().env("PATH", "/usr/bin:/bin").current_dir("/").stdin(Stdio::null());
    let hardening = Arc::clone(hardening);
    // SAFETY: the closure runs in the forked child before execve and only calls
    // `apply_in_child`, which makes system calls on data built before the fork; its error is
    // turned into a raw-errno `io::Error`, which does not allocate.
    unsafe {
        command.pre_exec(move || {
            hardening.apply_in_child().map_err(|error| io::Error::from_raw_os_error(errno_of(&error)))
        });
    }
    command
}

/// The same command, unhardened, as `uid`: the control.
fn control(uid: u32, program: &str, args: &[&str]) -> Command {
    let mut command = Command::new(program);
    command.args(args).env_clear().env("PATH", "/usr/bin:/bin").current_dir("/").stdin(Stdio::null());
    command.uid(uid).gid(uid);
    command
}

fn run(command: &mut Command) -> Output {
    command.output().expect("the command starts")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn describe(output: &Output) -> String {
    format!("{:?}\nstdout: {}\nstderr: {}", output.status, stdout(output), String::from_utf8_lossy(&output.stderr))
}

/// The value of `field` in `/proc/self/status` text.
fn status_field<'a>(status: &'a str, field: &str) -> &'a str {
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("no {field} in {status}"))
        .trim()
}

/// A temporary directory that `uid` owns.
fn owned_tempdir(uid: u32) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::os::unix::fs::chown(dir.path(), Some(uid), Some(uid)).expect("chown");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    dir
}

#[test]
fn status_shows_no_capabilities_no_new_privs_and_the_filter() {
    let hardening = hardening(&options(NOBODY));
    let output = run(&mut hardened(&hardening, "cat", &["/proc/self/status"]));
    assert!(output.status.success(), "{}", describe(&output));
    let status = stdout(&output);
    for capabilities in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        assert_eq!(status_field(&status, capabilities), "0000000000000000", "{capabilities}");
    }
    assert_eq!(status_field(&status, "NoNewPrivs"), "1");
    assert_eq!(status_field(&status, "Seccomp"), "2");
    assert_eq!(status_field(&status, "Seccomp_filters"), "1");
    assert_eq!(status_field(&status, "Uid"), "4242\t4242\t4242\t4242");
    assert_eq!(status_field(&status, "Gid"), "4242\t4242\t4242\t4242");
    assert_eq!(status_field(&status, "Groups"), "4242");
}

/// Root inside the sandbox (uid 0) keeps its uid but gets no capability, neither now nor from
/// `execve` (securebits `NOROOT`), and cannot mount or make namespaces.
#[test]
fn uid_zero_gets_no_capabilities_and_cannot_mount() {
    let hardening = hardening(&options(0));
    let output = run(&mut hardened(&hardening, "cat", &["/proc/self/status"]));
    assert!(output.status.success(), "{}", describe(&output));
    let status = stdout(&output);
    for capabilities in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        assert_eq!(status_field(&status, capabilities), "0000000000000000", "{capabilities}");
    }
    assert_eq!(status_field(&status, "Uid"), "0\t0\t0\t0");

    let target = tempfile::tempdir().expect("tempdir");
    let target_path = target.path().to_str().expect("utf-8 path");
    let mount = run(&mut hardened(&hardening, "mount", &["-t", "tmpfs", "none", target_path]));
    let mounted = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo").contains(target_path);
    if mounted {
        let _ = Command::new("umount").arg(target_path).status();
    }
    assert!(!mount.status.success() && !mounted, "mount succeeded: {}", describe(&mount));

    let unshare = run(&mut hardened(&hardening, "unshare", &["-m", "true"]));
    assert!(!unshare.status.success(), "{}", describe(&unshare));
}

#[test]
fn new_namespaces_are_refused_where_the_control_gets_them() {
    let hardening = hardening(&options(NOBODY));
    let control = run(&mut control(NOBODY, "unshare", &["-U", "true"]));
    assert!(control.status.success(), "control: an unprivileged user namespace: {}", describe(&control));
    for args in [["-U", "true"], ["-m", "true"], ["-n", "true"]] {
        let output = run(&mut hardened(&hardening, "unshare", &args));
        assert!(!output.status.success(), "unshare {args:?}: {}", describe(&output));
        assert!(String::from_utf8_lossy(&output.stderr).contains("Operation not permitted"), "{}", describe(&output));
    }
}

/// Prints `name errno` (0 on success) for each `name nr arg...` line of stdin; `pid` stands for
/// the probe's own pid.
const SYSCALL_PROBE: &str = r#"
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
for line in sys.stdin.read().splitlines():
    name, nr, *args = line.split()
    args = [ctypes.c_long(os.getpid() if a == "pid" else int(a, 0)) for a in args]
    ctypes.set_errno(0)
    result = libc.syscall(ctypes.c_long(int(nr)), *args)
    print(name, 0 if result >= 0 else ctypes.get_errno(), flush=True)
"#;

/// What each probe of [`SYSCALL_PROBE`] calls: harmless arguments (bad pointers, descriptor -1,
/// invalid flag combinations) that make the unfiltered kernel fail or succeed without effect.
fn syscall_probes() -> Vec<(String, i64, Vec<String>)> {
    let probe = |name: &str, nr: i64, args: &[&str]| {
        (name.to_owned(), nr, args.iter().map(|&arg| arg.to_owned()).collect::<Vec<_>>())
    };
    let mut probes: Vec<_> = DENIED
        .iter()
        .filter(|denied| matches!(denied.when, When::Always))
        .map(|denied| {
            let args: &[&str] = match denied.name {
                "unshare" => &["1"],           // not a valid unshare flag: EINVAL unfiltered
                "keyctl" => &["0", "-3", "0"], // KEYCTL_GET_KEYRING_ID of the session keyring
                "userfaultfd" => &["1"],       // UFFD_USER_MODE_ONLY, allowed unprivileged
                "syslog" | "adjtimex" | "acct" | "chroot" | "swapoff" | "uselib" | "iopl" => &["0"],
                "process_vm_readv" | "process_vm_writev" => &["pid", "0", "0", "0", "0", "0"],
                "kcmp" => &["pid", "pid", "0", "0", "0"], // KCMP_FILE: fd 0 against itself
                "perf_event_open" => &["0", "0", "-1", "-1", "0"],
                "io_uring_setup" => &["1", "0"],
                "ptrace" => &["-1", "1", "0", "0"],
                "reboot" => &["0", "0", "0", "0"], // bad magic: EINVAL even with CAP_SYS_BOOT
                _ => &["-1", "0", "0", "0", "0", "0"],
            };
            probe(denied.name, denied.nr, args)
        })
        .collect();
    // CLONE_SIGHAND without CLONE_VM is refused by the kernel before anything is created.
    for (flag, name) in [
        (libc::CLONE_NEWNS, "CLONE_NEWNS"),
        (libc::CLONE_NEWUTS, "CLONE_NEWUTS"),
        (libc::CLONE_NEWIPC, "CLONE_NEWIPC"),
        (libc::CLONE_NEWUSER, "CLONE_NEWUSER"),
        (libc::CLONE_NEWPID, "CLONE_NEWPID"),
        (libc::CLONE_NEWNET, "CLONE_NEWNET"),
        (libc::CLONE_NEWCGROUP, "CLONE_NEWCGROUP"),
    ] {
        let flags = (flag | libc::CLONE_SIGHAND).to_string();
        probes.push(probe(&format!("clone({name})"), libc::SYS_clone, &[&flags, "0", "0", "0", "0"]));
    }
    let tiocsti = seccomp_filter::TIOCSTI.to_string();
    let tiocsti_high = (seccomp_filter::TIOCSTI | (1 << 32)).to_string();
    let tioclinux = seccomp_filter::TIOCLINUX.to_string();
    probes.push(probe("ioctl(TIOCSTI)", libc::SYS_ioctl, &["0", &tiocsti, "0"]));
    probes.push(probe("ioctl(TIOCSTI|1<<32)", libc::SYS_ioctl, &["0", &tiocsti_high, "0"]));
    probes.push(probe("ioctl(TIOCLINUX)", libc::SYS_ioctl, &["0", &tioclinux, "0"]));
    probes.push(probe("personality(ADDR_NO_RANDOMIZE)", libc::SYS_personality, &["0x0040000"]));
    probes.push(probe("personality(READ_IMPLIES_EXEC)", libc::SYS_personality, &["0x0400000"]));
    probes.push(probe("clone3", libc::SYS_clone3, &["0", "0"]));
    // Still allowed.
    probes.push(probe("allowed:personality(query)", libc::SYS_personality, &["0xffffffff"]));
    probes.push(probe("allowed:personality(PER_LINUX)", libc::SYS_personality, &["0"]));
    probes.push(probe("allowed:ioctl(TCGETS)", libc::SYS_ioctl, &["0", "0x5401", "0"]));
    probes.push(probe("allowed:getpid", libc::SYS_getpid, &[]));
    probes.push(probe("allowed:landlock_create_ruleset", libc::SYS_landlock_create_ruleset, &["0", "0", "1"]));
    probes
}

fn run_probe(command: &mut Command, input: &str) -> BTreeMap<String, i32> {
    let mut child = command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("probe");
    io::Write::write_all(&mut child.stdin.take().expect("stdin"), input.as_bytes()).expect("write probe input");
    let output = child.wait_with_output().expect("probe output");
    assert!(output.status.success(), "probe: {}", describe(&output));
    stdout(&output)
        .lines()
        .map(|line| {
            let (name, errno) = line.split_once(' ').expect("name errno");
            (name.to_owned(), errno.parse().expect("errno"))
        })
        .collect()
}

#[test]
fn denied_system_calls_fail_with_eperm_where_the_control_does_not() {
    let probes = syscall_probes();
    let input: String = probes.iter().map(|(name, nr, args)| format!("{name} {nr} {}\n", args.join(" "))).collect();
    let hardening = hardening(&options(NOBODY));
    let filtered = run_probe(&mut hardened(&hardening, PYTHON, &["-c", SYSCALL_PROBE]), &input);
    // The control gets the same stdin, so fd 0 is a pipe in both runs.
    let unfiltered = run_probe(&mut control(NOBODY, PYTHON, &["-c", SYSCALL_PROBE]), &input);
    assert_eq!(filtered.len(), probes.len(), "{filtered:?}");

    let mut indistinguishable = Vec::new();
    for (name, _, _) in &probes {
        let (got, without) = (filtered[name], unfiltered[name]);
        if name.starts_with("allowed:") {
            assert_eq!(got, without, "{name} is allowed: hardened {got}, control {without}");
        } else if name == "clone3" {
            assert_eq!(got, libc::ENOSYS, "clone3 must fail with ENOSYS so libc falls back to clone");
            assert_ne!(without, libc::ENOSYS, "control clone3");
        } else {
            assert_eq!(got, libc::EPERM, "{name}: hardened errno {got}, control {without}");
            if without == libc::EPERM {
                indistinguishable.push(name.as_str());
            }
        }
    }
    eprintln!("refused by the unprivileged control too (filter not observable): {indistinguishable:?}");
    // These the host grants an unprivileged process: only the filter can refuse them.
    for name in [
        "unshare",
        "setns",
        "clone(CLONE_NEWUSER)",
        "clone(CLONE_NEWNS)",
        "keyctl",
        "add_key",
        "request_key",
        "perf_event_open",
        "userfaultfd",
        "io_uring_setup",
        "io_uring_enter",
        "process_vm_readv",
        "process_vm_writev",
        "kcmp",
        "pidfd_getfd",
        "ptrace",
        "mount",
        "open_tree",
        "mount_setattr",
        "name_to_handle_at",
        "clock_settime",
        "ioctl(TIOCSTI)",
        "ioctl(TIOCSTI|1<<32)",
        "personality(ADDR_NO_RANDOMIZE)",
    ] {
        assert_eq!(filtered.get(name), Some(&libc::EPERM), "{name}");
        assert!(!indistinguishable.contains(&name), "{name}: the control got EPERM too; the probe proves nothing");
    }
}

/// Every system call the design requires denied is in the table (independently of the table,
/// from which the probes above are derived).
#[test]
fn the_table_holds_every_required_denial() {
    let required = [
        "mount",
        "umount2",
        "pivot_root",
        "chroot",
        "kexec_load",
        "kexec_file_load",
        "init_module",
        "finit_module",
        "delete_module",
        "keyctl",
        "add_key",
        "request_key",
        "bpf",
        "perf_event_open",
        "userfaultfd",
        "ptrace",
        "process_vm_readv",
        "process_vm_writev",
        "unshare",
        "setns",
        "clone",
        "reboot",
        "swapon",
        "swapoff",
        "settimeofday",
        "clock_settime",
        "clock_adjtime",
        "adjtimex",
        "open_by_handle_at",
        "name_to_handle_at",
        "acct",
        "quotactl",
        "quotactl_fd",
        "lookup_dcookie",
        "fsopen",
        "fsconfig",
        "fsmount",
        "move_mount",
        "open_tree",
        "mount_setattr",
        "syslog",
        "vhangup",
        "nfsservctl",
        "kcmp",
        "ioctl",
        "personality",
        "io_uring_setup",
        "io_uring_enter",
        "io_uring_register",
    ];
    for name in required {
        assert!(DENIED.iter().any(|denied| denied.name == name), "{name} is not denied");
    }
    #[cfg(target_arch = "x86_64")]
    for name in ["iopl", "ioperm", "uselib"] {
        assert!(DENIED.iter().any(|denied| denied.name == name), "{name} is not denied");
    }
}

#[test]
fn programs_fork_and_threads_still_work() {
    let hardening = hardening(&options(NOBODY));
    let python = run(&mut hardened(&hardening, PYTHON, &["-c", "print(42)"]));
    assert_eq!(stdout(&python), "42\n", "{}", describe(&python));
    // pthread_create tries clone3 first; ENOSYS sends it to clone.
    let threads = "import threading\nt = threading.Thread(target=print, args=('thread',))\nt.start()\nt.join()";
    let python = run(&mut hardened(&hardening, PYTHON, &["-c", threads]));
    assert_eq!(stdout(&python), "thread\n", "{}", describe(&python));
    let fork = run(&mut hardened(&hardening, "sh", &["-c", "true & wait $!; echo forked $?"]));
    assert_eq!(stdout(&fork), "forked 0\n", "{}", describe(&fork));
    let listing = run(&mut hardened(&hardening, "sh", &["-c", "ls / | wc -l"]));
    let entries: usize = stdout(&listing).trim().parse().expect("a count");
    assert!(listing.status.success() && entries > 5, "{}", describe(&listing));
}

/// `PR_SET_DUMPABLE 0` would not outlive `execve`; the exec'd program is dumpable again and can
/// read its own `/proc/self`. The securebits stay set and locked.
#[test]
fn exec_resets_dumpable_and_keeps_securebits() {
    let hardening = hardening(&options(NOBODY));
    let script =
        "import ctypes\nlibc = ctypes.CDLL(None)\nprint(libc.prctl(3, 0, 0, 0, 0), libc.prctl(27, 0, 0, 0, 0))";
    let output = run(&mut hardened(&hardening, PYTHON, &["-c", script]));
    assert_eq!(stdout(&output), format!("1 {}\n", super::SECURE_BITS), "{}", describe(&output));
}

#[test]
fn limits_are_visible_in_proc() {
    let hardening = hardening(&options(NOBODY));
    let output = run(&mut hardened(&hardening, "cat", &["/proc/self/limits"]));
    let limits = stdout(&output);
    let limit = |name: &str| -> Vec<String> {
        let line = limits.lines().find(|line| line.starts_with(name)).unwrap_or_else(|| panic!("{name}: {limits}"));
        line[name.len()..].split_whitespace().take(2).map(str::to_owned).collect()
    };
    assert_eq!(limit("Max core file size"), ["0", "0"]);
    assert_eq!(limit("Max file size"), ["1048576", "1048576"]);
    assert_eq!(limit("Max open files"), ["256", "256"]);
}

/// A limit above the current hard limit is clamped to it (stricter), never an error.
#[test]
fn limits_above_the_hard_limit_are_clamped() {
    let mut options = options(NOBODY);
    options.rlimits = Rlimits { file_size: u64::MAX, open_files: u64::MAX };
    let hardening = hardening(&options);
    let output = run(&mut hardened(&hardening, "sh", &["-c", "ulimit -Hn; ulimit -Sn; ulimit -f"]));
    let (_, hard) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).expect("getrlimit");
    assert_eq!(stdout(&output), format!("{hard}\n{hard}\nunlimited\n"), "{}", describe(&output));
}

#[test]
fn writes_beyond_the_file_size_limit_fail() {
    let dir = owned_tempdir(NOBODY);
    let file = dir.path().join("big");
    let hardening = hardening(&options(NOBODY));
    let script = format!("head -c 2M /dev/zero > {}", file.display());
    let output = run(&mut hardened(&hardening, "sh", &["-c", &script]));
    assert!(!output.status.success(), "{}", describe(&output));
    assert_eq!(std::fs::metadata(&file).expect("written").len(), 1 << 20);
}

#[test]
fn a_failed_step_stops_the_command() {
    let hardening = hardening(&options(NOBODY));
    // Already unprivileged when the hardening starts (std sets the uid before `pre_exec`):
    // `setgroups` fails, and the command must not run.
    let error = hardened(&hardening, "true", &[]).uid(NOBODY).gid(NOBODY).output().expect_err("must not start");
    assert_eq!(error.raw_os_error(), Some(libc::EPERM), "{error}");
    let message = Step::SetGroups.failed(nix::errno::Errno::EPERM).to_string();
    assert_eq!(message, "setgroups: Operation not permitted (EPERM)");
}

#[test]
fn the_capability_count_matches_proc() {
    let from_proc: libc::c_ulong = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .expect("cap_last_cap")
        .trim()
        .parse()
        .expect("a number");
    assert_eq!(super::last_capability().expect("probe"), from_proc);
}

fn system_dirs() -> Vec<&'static Path> {
    ["/usr", "/bin", "/lib", "/lib64", "/etc"].into_iter().map(Path::new).filter(|path| path.exists()).collect()
}

/// uid 0 without capabilities still owns root's directories, so only Landlock stands between it
/// and a directory outside the writable list: the control (same hardening, Landlock off) writes.
#[test]
fn landlock_confines_writes_and_reads_to_the_listed_paths() {
    let (writable, outside) = (tempfile::tempdir().expect("tempdir"), tempfile::tempdir().expect("tempdir"));
    std::fs::write(outside.path().join("secret"), "secret\n").expect("secret");
    let mut options = options(0);
    options.landlock = LandlockMode::Required;
    let mut landlocked = Hardening::new(&options).expect("hardening");
    let status = landlocked.prepare_landlock(&[writable.path()], &system_dirs()).expect("landlock");
    eprintln!("Landlock: {status:?}, kernel ABI {:?}", super::landlock_rules::kernel_abi());
    assert!(status.abi >= 1);
    let landlocked = Arc::new(landlocked);
    let unconfined = hardening(&self::options(0));

    let write_inside = format!("echo x > {}/f && cat {}/f", writable.path().display(), writable.path().display());
    let output = run(&mut hardened(&landlocked, "sh", &["-c", &write_inside]));
    assert_eq!(stdout(&output), "x\n", "{}", describe(&output));

    let write_outside = format!("echo x > {}/f", outside.path().display());
    let read_outside = format!("cat {}/secret", outside.path().display());
    let list_outside = format!("ls {}", outside.path().display());
    for script in [&write_outside, &read_outside, &list_outside] {
        let control = run(&mut hardened(&unconfined, "sh", &["-c", script]));
        assert!(control.status.success(), "control {script}: {}", describe(&control));
        let output = run(&mut hardened(&landlocked, "sh", &["-c", script]));
        assert!(!output.status.success(), "{script}: {}", describe(&output));
        assert!(String::from_utf8_lossy(&output.stderr).contains("Permission denied"), "{}", describe(&output));
    }
    // Read-only system directories: readable and executable, not writable.
    let output =
        run(&mut hardened(&landlocked, PYTHON, &["-c", "print(open('/etc/passwd').read().count('root') > 0)"]));
    assert_eq!(stdout(&output), "True\n", "{}", describe(&output));
    let output = run(&mut hardened(&landlocked, "ls", &["/usr"]));
    assert!(output.status.success() && stdout(&output).contains("bin"), "{}", describe(&output));
    let output = run(&mut hardened(&landlocked, "touch", &["/etc/sandguard-landlock-test"]));
    assert!(!output.status.success(), "{}", describe(&output));
    assert!(!Path::new("/etc/sandguard-landlock-test").exists());
    // Neither list holds `/`: not even it can be listed.
    let output = run(&mut hardened(&landlocked, "ls", &["/"]));
    assert!(!output.status.success(), "{}", describe(&output));
}

/// Required Landlock that was never prepared stops the command rather than run it unconfined.
#[test]
fn required_landlock_must_be_prepared() {
    let mut options = options(NOBODY);
    options.landlock = LandlockMode::Required;
    let hardening = hardening(&options);
    let error = hardened(&hardening, "true", &[]).output().expect_err("must not start");
    assert_eq!(error.raw_os_error(), Some(libc::ENOPKG), "{error}");
}

#[test]
fn landlock_off_prepares_nothing() {
    let mut hardening = Hardening::new(&options(0)).expect("hardening");
    let status = hardening.prepare_landlock(&[Path::new("/tmp")], &system_dirs()).expect("off");
    assert_eq!((status.abi, status.fully_enforced), (0, false));
    assert!(hardening.landlock_ruleset.is_none());
}

/// A 32-bit `int 0x80` call and an x32 call are killed (SIGSYS) where the control's go through.
#[cfg(target_arch = "x86_64")]
#[test]
fn foreign_system_call_abis_kill_the_process() {
    let int80 = "import ctypes, mmap\n\
        page = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)\n\
        page.write(bytes([0xb8, 20, 0, 0, 0, 0xcd, 0x80, 0xc3]))  # mov eax, 20 (i386 getpid); int 0x80; ret\n\
        call = ctypes.CFUNCTYPE(ctypes.c_int)(ctypes.addressof(ctypes.c_char.from_buffer(page)))\n\
        print(call())";
    let x32 = "import ctypes\nprint(ctypes.CDLL(None).syscall(0x40000000 | 39))  # x32 getpid";
    let hardening = hardening(&options(NOBODY));
    for script in [int80, x32] {
        let control = run(&mut control(NOBODY, PYTHON, &["-c", script]));
        assert!(control.status.success(), "control: {}", describe(&control));
        let output = run(&mut hardened(&hardening, PYTHON, &["-c", script]));
        assert_eq!(output.status.signal(), Some(libc::SIGSYS), "{}", describe(&output));
    }
}

/// The filter program, run by a small classic-BPF interpreter over every system call number:
/// exactly the table's rows are denied, with the arguments the table says.
#[test]
fn the_filter_denies_exactly_the_table() {
    let program = seccomp_filter::compile().expect("compiles");
    let (arch, _) = seccomp_filter::ARCH;
    let errno = |e: i32| libc::SECCOMP_RET_ERRNO | e as u32;
    let decide = |nr: i64, args: [u64; 6]| evaluate(&program, arch, nr, args);
    for nr in 0..600 {
        let expected = match DENIED.iter().find(|denied| denied.nr == nr) {
            Some(denied) if matches!(denied.when, When::Always) => errno(libc::EPERM),
            _ if nr == libc::SYS_clone3 => errno(libc::ENOSYS),
            // Conditional rows with all-zero arguments: clone(0), ioctl(0, 0), personality(0).
            _ => libc::SECCOMP_RET_ALLOW,
        };
        assert_eq!(decide(nr, [0; 6]), expected, "system call {nr}");
    }
    let thread_flags = (libc::CLONE_VM
        | libc::CLONE_FS
        | libc::CLONE_FILES
        | libc::CLONE_SIGHAND
        | libc::CLONE_THREAD
        | libc::CLONE_SYSVSEM
        | libc::CLONE_SETTLS
        | libc::CLONE_PARENT_SETTID
        | libc::CLONE_CHILD_CLEARTID) as u64;
    assert_eq!(decide(libc::SYS_clone, [thread_flags, 0, 0, 0, 0, 0]), libc::SECCOMP_RET_ALLOW);
    assert_eq!(decide(libc::SYS_clone, [libc::SIGCHLD as u64, 0, 0, 0, 0, 0]), libc::SECCOMP_RET_ALLOW);
    for flag in [
        libc::CLONE_NEWNS,
        libc::CLONE_NEWUTS,
        libc::CLONE_NEWIPC,
        libc::CLONE_NEWUSER,
        libc::CLONE_NEWPID,
        libc::CLONE_NEWNET,
        libc::CLONE_NEWCGROUP,
    ] {
        let flags = (flag | libc::SIGCHLD) as u64;
        assert_eq!(decide(libc::SYS_clone, [flags, 0, 0, 0, 0, 0]), errno(libc::EPERM), "{flag:#x}");
    }
    for request in [seccomp_filter::TIOCSTI, seccomp_filter::TIOCSTI | 0xffff_0000_0000, seccomp_filter::TIOCLINUX] {
        assert_eq!(decide(libc::SYS_ioctl, [1, request, 0, 0, 0, 0]), errno(libc::EPERM), "{request:#x}");
    }
    assert_eq!(decide(libc::SYS_ioctl, [1, 0x5401 /* TCGETS */, 0, 0, 0, 0]), libc::SECCOMP_RET_ALLOW);
    for persona in [0, 8, 0x2_0000, 0x2_0008, 0xffff_ffff, 0x1_0000_0000] {
        assert_eq!(decide(libc::SYS_personality, [persona, 0, 0, 0, 0, 0]), libc::SECCOMP_RET_ALLOW, "{persona:#x}");
    }
    for persona in [0x4_0000, 0x40_0000, 0x1] {
        assert_eq!(decide(libc::SYS_personality, [persona, 0, 0, 0, 0, 0]), errno(libc::EPERM), "{persona:#x}");
    }
    const AUDIT_ARCH_I386: u32 = 3 | 0x4000_0000;
    assert_eq!(evaluate(&program, AUDIT_ARCH_I386, 20, [0; 6]), libc::SECCOMP_RET_KILL_PROCESS);
    #[cfg(target_arch = "x86_64")]
    assert_eq!(decide(0x4000_0000 | libc::SYS_mount, [0; 6]), libc::SECCOMP_RET_KILL_PROCESS);
}

/// The table is searched, not scanned: every system call is decided within a few dozen
/// instructions however long the table is (a linear chain took over a hundred for most calls,
/// and the kernel runs the filter for every call number when it installs it).
#[test]
fn every_call_is_decided_in_logarithmically_many_steps() {
    let program = seccomp_filter::compile().expect("compiles");
    let (arch, _) = seccomp_filter::ARCH;
    let steps = (0..600).map(|nr| steps_to_decide(&program, arch, nr)).max().unwrap();
    let depth = usize::BITS - DENIED.len().leading_zeros();
    // Prelude (8), one comparison and one jump per level, a leaf's three rows and their verdicts.
    assert!(steps <= 8 + 2 * depth as usize + 12, "{steps} steps for a table of {} rows", DENIED.len());
}

fn steps_to_decide(program: &[sock_filter], arch: u32, nr: i64) -> usize {
    let mut steps = 0;
    evaluate_counting(program, arch, nr, [0; 6], &mut steps);
    steps
}

/// Runs a classic BPF program over a `struct seccomp_data` (little-endian) and returns its verdict.
fn evaluate(program: &[sock_filter], arch: u32, nr: i64, args: [u64; 6]) -> u32 {
    evaluate_counting(program, arch, nr, args, &mut 0)
}

/// [`evaluate`], counting the instructions run in `steps`.
fn evaluate_counting(program: &[sock_filter], arch: u32, nr: i64, args: [u64; 6], steps: &mut usize) -> u32 {
    let mut data = [0u8; 64];
    data[0..4].copy_from_slice(&(nr as u32).to_le_bytes());
    data[4..8].copy_from_slice(&arch.to_le_bytes());
    for (i, arg) in args.iter().enumerate() {
        data[16 + 8 * i..24 + 8 * i].copy_from_slice(&arg.to_le_bytes());
    }
    let (mut accumulator, mut pc) = (0u32, 0usize);
    loop {
        let instruction = &program[pc];
        *steps += 1;
        let k = instruction.k;
        let code = u32::from(instruction.code);
        pc += 1;
        match code {
            c if c == libc::BPF_LD | libc::BPF_W | libc::BPF_ABS => {
                let offset = k as usize;
                accumulator = u32::from_le_bytes(data[offset..offset + 4].try_into().expect("4 bytes"));
            }
            c if c == libc::BPF_ALU | libc::BPF_AND | libc::BPF_K => accumulator &= k,
            c if c == libc::BPF_JMP | libc::BPF_JA => pc += k as usize,
            c if c & 0x07 == libc::BPF_JMP => {
                let taken = match c & 0xf0 {
                    x if x == libc::BPF_JEQ => accumulator == k,
                    x if x == libc::BPF_JGT => accumulator > k,
                    x if x == libc::BPF_JGE => accumulator >= k,
                    x if x == libc::BPF_JSET => accumulator & k != 0,
                    other => panic!("jump {other:#x}"),
                };
                pc += usize::from(if taken { instruction.jt } else { instruction.jf });
            }
            c if c == libc::BPF_RET | libc::BPF_K => return k,
            other => panic!("opcode {other:#x} at {}", pc - 1),
        }
    }
}
