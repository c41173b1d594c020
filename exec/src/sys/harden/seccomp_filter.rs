//! The seccomp filter of every sandboxed process: a deny list over a default of allow.
//!
//! Everything the sandbox must never do is already refused by something else (no capabilities,
//! namespaces, Landlock); the filter removes the kernel surface that an unprivileged process can
//! still reach and that a sandboxed program has no use for, so a kernel bug behind it is out of
//! reach too. [`DENIED`] is the whole list, one commented row per system call.
//!
//! The program is one BPF filter, in this order:
//! 1. a foreign architecture (a 32-bit `int 0x80` call on x86_64, whose numbers mean other calls)
//!    kills the process;
//! 2. on x86_64, an x32 call (`__X32_SYSCALL_BIT` set: same architecture token, other numbers,
//!    which the table below would not match) kills the process;
//! 3. `clone3` fails with `ENOSYS`: its flags live in memory a filter cannot read, and `ENOSYS`
//!    makes glibc (`pthread_create`, `posix_spawn`) fall back to `clone`, whose flags it can;
//! 4. a binary search over [`DENIED`]'s system call numbers (see [`compile`]): a matching call
//!    fails with `EPERM`, anything else is allowed.
//!
//! Arguments are compared on their low 32 bits (`Dword`) where the kernel itself reads an
//! `unsigned int` (`ioctl` request, `personality`), so high bits cannot dodge a match.

use seccompiler::{BpfProgram, TargetArch, sock_filter};

use super::HardenError;

/// When a listed system call is denied.
#[derive(Debug, Clone, Copy)]
pub(super) enum When {
    /// Always.
    Always,
    /// When argument `arg` has any of `bits` set.
    AnyBit { arg: u8, bits: &'static [u64] },
    /// When the low 32 bits of argument `arg` equal one of `values`.
    OneOf { arg: u8, values: &'static [u64] },
    /// When the low 32 bits of argument `arg` equal none of `values`.
    NoneOf { arg: u8, values: &'static [u64] },
}

/// One row of the deny list.
#[derive(Debug, Clone, Copy)]
pub(super) struct Denied {
    /// The system call's name, as in `man 2`.
    pub(super) name: &'static str,
    /// Its number on the running architecture.
    pub(super) nr: i64,
    /// When it is denied.
    pub(super) when: When,
}

const fn always(name: &'static str, nr: i64) -> Denied {
    Denied { name, nr, when: When::Always }
}

/// The namespace flags of `clone(2)`. `CLONE_NEWTIME` (0x80) is absent on purpose: in `clone`'s
/// first argument that bit belongs to the exit signal (`CSIGNAL`); new time namespaces come only
/// through `unshare` and `clone3`, both refused whole.
const CLONE_NAMESPACE_FLAGS: &[u64] = &[
    libc::CLONE_NEWNS as u64,
    libc::CLONE_NEWUTS as u64,
    libc::CLONE_NEWIPC as u64,
    libc::CLONE_NEWUSER as u64,
    libc::CLONE_NEWPID as u64,
    libc::CLONE_NEWNET as u64,
    libc::CLONE_NEWCGROUP as u64,
];

/// `personality(2)` values a program may still set: Linux (0), `PER_LINUX32` (8, `setarch
/// i686`), `UNAME26` alone and with `PER_LINUX32`, and `0xffffffff`, which only queries. Refused
/// are the flags that weaken the address space, `ADDR_NO_RANDOMIZE` (ASLR off) and
/// `READ_IMPLIES_EXEC` first: the set Docker's default profile allows.
const PERSONALITIES_ALLOWED: &[u64] = &[0, 0x0008, 0x0002_0000, 0x0002_0008, 0xffff_ffff];

/// Terminal ioctls that inject input into, or reprogram, the terminal the sandbox writes to
/// (`TIOCSTI` pushes keystrokes into the reader's shell, `TIOCLINUX` drives the console).
const TERMINAL_INJECTION_IOCTLS: &[u64] = &[TIOCSTI, TIOCLINUX];

/// `TIOCSTI` and `TIOCLINUX` from `<asm-generic/ioctls.h>`, the same on x86_64 and aarch64 (libc
/// types them per target).
pub(super) const TIOCSTI: u64 = 0x5412;
pub(super) const TIOCLINUX: u64 = 0x541C;

/// `open_tree_attr(2)` (Linux 6.15; not in libc yet): `open_tree` with mount attributes. Numbers
/// from 424 on are the same on every architecture.
const SYS_OPEN_TREE_ATTR: i64 = 467;

/// Every system call the filter denies with `EPERM`, and why. `clone3` is not here: the prelude
/// answers it with `ENOSYS` (see the module documentation).
pub(super) const DENIED: &[Denied] = &[
    // Mounts and the root: the mount namespace's layout is the sandbox's boundary.
    always("mount", libc::SYS_mount),
    always("umount2", libc::SYS_umount2),
    always("pivot_root", libc::SYS_pivot_root),
    always("chroot", libc::SYS_chroot),
    always("fsopen", libc::SYS_fsopen),
    always("fsconfig", libc::SYS_fsconfig),
    always("fsmount", libc::SYS_fsmount),
    always("fspick", libc::SYS_fspick),
    always("move_mount", libc::SYS_move_mount),
    always("open_tree", libc::SYS_open_tree),
    always("open_tree_attr", SYS_OPEN_TREE_ATTR),
    always("mount_setattr", libc::SYS_mount_setattr),
    // New namespaces: a user namespace would hand back every capability inside it, and with
    // them the whole namespaced-capability kernel surface.
    always("unshare", libc::SYS_unshare),
    always("setns", libc::SYS_setns),
    Denied { name: "clone", nr: libc::SYS_clone, when: When::AnyBit { arg: 0, bits: CLONE_NAMESPACE_FLAGS } },
    // The kernel itself: images, modules, power, swap, accounting, quotas, the kernel log.
    always("kexec_load", libc::SYS_kexec_load),
    always("kexec_file_load", libc::SYS_kexec_file_load),
    always("init_module", libc::SYS_init_module),
    always("finit_module", libc::SYS_finit_module),
    always("delete_module", libc::SYS_delete_module),
    always("reboot", libc::SYS_reboot),
    always("swapon", libc::SYS_swapon),
    always("swapoff", libc::SYS_swapoff),
    always("acct", libc::SYS_acct),
    always("quotactl", libc::SYS_quotactl),
    always("quotactl_fd", libc::SYS_quotactl_fd),
    always("syslog", libc::SYS_syslog),
    always("vhangup", libc::SYS_vhangup),
    always("lookup_dcookie", libc::SYS_lookup_dcookie),
    always("nfsservctl", libc::SYS_nfsservctl),
    #[cfg(target_arch = "x86_64")]
    always("uselib", libc::SYS_uselib),
    #[cfg(target_arch = "x86_64")]
    always("iopl", libc::SYS_iopl),
    #[cfg(target_arch = "x86_64")]
    always("ioperm", libc::SYS_ioperm),
    // The clock is the host's (there is no time namespace for the realtime clock). `adjtimex`
    // with modes 0 only reads, but nothing in a sandbox needs it: refused whole.
    always("settimeofday", libc::SYS_settimeofday),
    always("clock_settime", libc::SYS_clock_settime),
    always("clock_adjtime", libc::SYS_clock_adjtime),
    always("adjtimex", libc::SYS_adjtimex),
    // Kernel keyrings are not namespaced.
    always("keyctl", libc::SYS_keyctl),
    always("add_key", libc::SYS_add_key),
    always("request_key", libc::SYS_request_key),
    // Large, often-exploited kernel surface reachable without privileges.
    always("bpf", libc::SYS_bpf),
    always("perf_event_open", libc::SYS_perf_event_open),
    always("userfaultfd", libc::SYS_userfaultfd),
    always("io_uring_setup", libc::SYS_io_uring_setup),
    always("io_uring_enter", libc::SYS_io_uring_enter),
    always("io_uring_register", libc::SYS_io_uring_register),
    always("fanotify_init", libc::SYS_fanotify_init),
    // Other processes' memory and descriptors. `ptrace` is refused whole (debuggers and `strace`
    // do not work in a sandbox): telling "trace my own child" from "attach to the init" would
    // take pid checks a filter cannot make.
    always("ptrace", libc::SYS_ptrace),
    always("process_vm_readv", libc::SYS_process_vm_readv),
    always("process_vm_writev", libc::SYS_process_vm_writev),
    always("kcmp", libc::SYS_kcmp),
    always("pidfd_getfd", libc::SYS_pidfd_getfd),
    // File handles bypass path-based checks (the "shocker" escape).
    always("open_by_handle_at", libc::SYS_open_by_handle_at),
    always("name_to_handle_at", libc::SYS_name_to_handle_at),
    // Keystroke injection into the terminal the sandbox's output reaches.
    Denied { name: "ioctl", nr: libc::SYS_ioctl, when: When::OneOf { arg: 1, values: TERMINAL_INJECTION_IOCTLS } },
    // Execution domains that switch ASLR off or make data executable.
    Denied {
        name: "personality",
        nr: libc::SYS_personality,
        when: When::NoneOf { arg: 0, values: PERSONALITIES_ALLOWED },
    },
];

/// `AUDIT_ARCH_*` of the running architecture, as in `<linux/audit.h>`, and seccompiler's name.
#[cfg(target_arch = "x86_64")]
pub(super) const ARCH: (u32, TargetArch) = (62 | 0x8000_0000 | 0x4000_0000, TargetArch::x86_64);
#[cfg(target_arch = "aarch64")]
pub(super) const ARCH: (u32, TargetArch) = (183 | 0x8000_0000 | 0x4000_0000, TargetArch::aarch64);

/// x86_64's `__X32_SYSCALL_BIT`.
#[cfg(target_arch = "x86_64")]
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// Offsets in `struct seccomp_data`.
const DATA_NR: u32 = 0;
const DATA_ARCH: u32 = 4;

/// `BPF_LD | BPF_W | BPF_ABS`.
const LOAD_WORD: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
/// `BPF_JMP | BPF_JEQ | BPF_K`.
const JUMP_EQ: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
/// `BPF_JMP | BPF_JGE | BPF_K`.
#[cfg(target_arch = "x86_64")]
const JUMP_GE: u16 = (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16;
/// `BPF_RET | BPF_K`.
const RETURN: u16 = (libc::BPF_RET | libc::BPF_K) as u16;

const fn statement(code: u16, k: u32) -> sock_filter {
    sock_filter { code, jt: 0, jf: 0, k }
}

const fn jump(code: u16, k: u32, jt: u8, jf: u8) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

/// Compiles the filter for the running architecture.
///
/// After the prelude, the table is searched as a binary tree over the sorted system call numbers:
/// a call passes about seven comparisons instead of one per row. That matters twice: on every
/// call a sandboxed process makes, and once per sandbox, when the kernel installs the filter and
/// runs it for every system call number to precompute which calls it always allows (with a linear
/// chain that dominated the filter's installation).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
pub(super) fn compile() -> Result<BpfProgram, HardenError> {
    let (audit_arch, _) = ARCH;
    let kill = || statement(RETURN, libc::SECCOMP_RET_KILL_PROCESS);
    let mut program =
        vec![statement(LOAD_WORD, DATA_ARCH), jump(JUMP_EQ, audit_arch, 1, 0), kill(), statement(LOAD_WORD, DATA_NR)];
    #[cfg(target_arch = "x86_64")]
    program.extend([jump(JUMP_GE, X32_SYSCALL_BIT, 0, 1), kill()]);
    program.extend([
        jump(JUMP_EQ, libc::SYS_clone3 as u32, 0, 1),
        statement(RETURN, libc::SECCOMP_RET_ERRNO | (libc::ENOSYS as u32 & libc::SECCOMP_RET_DATA)),
    ]);

    let mut rows: Vec<(u32, &Denied)> = Vec::with_capacity(DENIED.len());
    for denied in DENIED {
        let nr = u32::try_from(denied.nr).map_err(|_| HardenError::SeccompTable(denied.name))?;
        rows.push((nr, denied));
    }
    rows.sort_unstable_by_key(|(nr, _)| *nr);
    if let Some(pair) = rows.windows(2).find(|pair| pair[0].0 == pair[1].0) {
        return Err(HardenError::SeccompTable(pair[1].1.name));
    }
    search(&rows, &mut program)?;
    Ok(program)
}

/// Rows a leaf of the search tree compares one by one.
const LEAF_ROWS: usize = 3;
/// `BPF_JMP | BPF_JA`: an unconditional jump with a 32-bit offset.
const JUMP_ALWAYS: u16 = (libc::BPF_JMP | libc::BPF_JA) as u16;
/// `BPF_JMP | BPF_JSET | BPF_K`.
const JUMP_ANY_BIT: u16 = (libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K) as u16;
/// `BPF_JMP | BPF_JGE | BPF_K`.
const JUMP_AT_LEAST: u16 = (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16;

/// Appends the search over `rows` (sorted by number; the accumulator holds the call's number):
/// every path ends in a return, allowing the calls no row names.
fn search(rows: &[(u32, &Denied)], program: &mut BpfProgram) -> Result<(), HardenError> {
    if rows.len() <= LEAF_ROWS {
        for &(nr, denied) in rows {
            let verdict = verdict(denied)?;
            program.push(jump(JUMP_EQ, nr, 0, short_offset(verdict.len(), denied)?));
            program.extend(verdict);
        }
        program.push(statement(RETURN, libc::SECCOMP_RET_ALLOW));
        return Ok(());
    }
    let (lower, upper) = rows.split_at(rows.len() / 2);
    // number >= the upper half's first: jump over the lower half's code (any length: `JA`).
    program.push(jump(JUMP_AT_LEAST, upper[0].0, 0, 1));
    let over_lower = program.len();
    program.push(statement(JUMP_ALWAYS, 0));
    search(lower, program)?;
    let distance = program.len() - over_lower - 1;
    program[over_lower].k = u32::try_from(distance).map_err(|_| HardenError::SeccompTable(upper[0].1.name))?;
    search(upper, program)
}

/// The code that decides a call `denied` names: it ends in a return on every path.
fn verdict(denied: &Denied) -> Result<Vec<sock_filter>, HardenError> {
    let deny = statement(RETURN, libc::SECCOMP_RET_ERRNO | (libc::EPERM as u32 & libc::SECCOMP_RET_DATA));
    let allow = statement(RETURN, libc::SECCOMP_RET_ALLOW);
    // The low 32 bits of argument `arg` of `struct seccomp_data` (`args` from byte 16, 8 each).
    let low_half = if cfg!(target_endian = "little") { 0 } else { 4 };
    let load_low_word = |arg: u8| statement(LOAD_WORD, 16 + 8 * u32::from(arg) + low_half);
    let dword = |value: u64| u32::try_from(value).map_err(|_| HardenError::SeccompTable(denied.name));
    Ok(match denied.when {
        When::Always => vec![deny],
        When::AnyBit { arg, bits } => {
            let mask = bits.iter().try_fold(0u32, |mask, &bit| Ok::<_, HardenError>(mask | dword(bit)?))?;
            vec![load_low_word(arg), jump(JUMP_ANY_BIT, mask, 0, 1), deny, allow]
        }
        // Compare with each value in turn; a match jumps past the remaining ones to `matched`.
        When::OneOf { arg, values } | When::NoneOf { arg, values } => {
            let (matched, unmatched) =
                if matches!(denied.when, When::OneOf { .. }) { (deny, allow) } else { (allow, deny) };
            let mut code = vec![load_low_word(arg)];
            for (i, &value) in values.iter().enumerate() {
                let rest = values.len() - i - 1;
                code.push(jump(JUMP_EQ, dword(value)?, short_offset(rest + 1, denied)?, 0));
            }
            code.extend([unmatched, matched]);
            code
        }
    })
}

/// A conditional jump's offset, which classic BPF holds in one byte.
fn short_offset(distance: usize, denied: &Denied) -> Result<u8, HardenError> {
    u8::try_from(distance).map_err(|_| HardenError::SeccompTable(denied.name))
}

/// The running architecture has no filter: refuse rather than run unfiltered.
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
pub(super) fn compile() -> Result<BpfProgram, HardenError> {
    Err(HardenError::UnsupportedArch(std::env::consts::ARCH))
}
