//! The system call filter (`seccomp.*`, as libbeat reads it): once the capture is open and
//! privileges are dropped, a seccomp BPF filter is installed on every thread of the process
//! (`SECCOMP_FILTER_FLAG_TSYNC`, with `no_new_privs`), so code reached by hostile traffic cannot
//! make the calls an attacker would want.
//!
//! Options, as libbeat's: `seccomp.enabled` (default true), `seccomp.default_action` and
//! `seccomp.syscalls` (a list of `{action, names}` groups; the first group naming a call decides
//! it, the default action decides the rest). A configured `default_action` replaces the built-in
//! one, configured `syscalls` replace the built-in groups. Actions: `allow`, `errno` (the call
//! fails with `EPERM`), `log`, `trace`, `trap`, `kill_thread` (or `kill`), `kill_process`.
//! A bad option or an unknown call name is a config error; a kernel that refuses the filter is
//! logged and the run goes on without it, as in libbeat.
//!
//! **The built-in policy is a deny list** (default `allow`; the calls below fail with `EPERM`),
//! where Packetbeat's is an allow list of what its Go runtime calls (default `errno`). That list
//! does not fit this binary (its runtime, libpcap, DPDK and the TLS and Kafka clients make other
//! calls), and a call missing from an allow list would fail somewhere in the middle of a run; the
//! deny list takes away what a sniffer never needs after start-up: running programs, tracing or
//! reading other processes, changing identity (done already, see [`super::privileges`]),
//! namespaces and mounts, kernel modules and keys, clocks, reboot. A user who wants an allow
//! list writes it in `seccomp.*`, exactly as for Packetbeat.
//!
//! The BPF program is written here rather than with `seccompiler`: that crate compiles one
//! action for all matched calls, and libbeat's policies give each group its own.

use crate::config::types::lookup;
use crate::config::Config;
use serde_yaml::Value;
use std::str::FromStr;
use syscalls::Sysno;

/// What a filter does with a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Allow,
    Errno,
    Log,
    Trace,
    Trap,
    KillThread,
    KillProcess,
}

impl Action {
    fn parse(s: &str) -> Option<Action> {
        Some(match s {
            "allow" => Action::Allow,
            "errno" => Action::Errno,
            "log" => Action::Log,
            "trace" => Action::Trace,
            "trap" => Action::Trap,
            "kill" | "kill_thread" => Action::KillThread,
            "kill_process" => Action::KillProcess,
            _ => return None,
        })
    }

    /// The filter's return value (`SECCOMP_RET_*`; `errno` carries `EPERM`).
    fn ret(self) -> u32 {
        match self {
            Action::Allow => 0x7fff_0000,
            Action::Errno => 0x0005_0000 | libc::EPERM as u32,
            Action::Log => 0x7ffc_0000,
            Action::Trace => 0x7ff0_0000,
            Action::Trap => 0x0003_0000,
            Action::KillThread => 0,
            Action::KillProcess => 0x8000_0000,
        }
    }
}

/// A policy: the first group naming a call decides it, `default` the others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub default: Action,
    pub groups: Vec<(Action, Vec<Sysno>)>,
}

/// The built-in deny list (see the module doc). Names this architecture does not have are
/// skipped.
const DENIED: &[&str] = &[
    // Running other programs.
    "execve",
    "execveat",
    "vfork",
    // Other processes' memory and tracing.
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "kcmp",
    // Identity and sessions (the privilege drop is done before the filter).
    "setuid",
    "setgid",
    "setreuid",
    "setregid",
    "setresuid",
    "setresgid",
    "setfsuid",
    "setfsgid",
    "setgroups",
    "setsid",
    "setpgid",
    // Namespaces, mounts, the root directory.
    "unshare",
    "setns",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "chdir",
    "fsopen",
    "fsmount",
    "fspick",
    "move_mount",
    "open_tree",
    "mount_setattr",
    "open_by_handle_at",
    "name_to_handle_at",
    // Kernel modules, kexec, BPF programs, perf, keys, reboot, swap, accounting, quotas.
    "init_module",
    "finit_module",
    "delete_module",
    "create_module",
    "kexec_load",
    "kexec_file_load",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "keyctl",
    "add_key",
    "request_key",
    "reboot",
    "swapon",
    "swapoff",
    "acct",
    "quotactl",
    "syslog",
    "uselib",
    "vhangup",
    "iopl",
    "ioperm",
    "lookup_dcookie",
    // Clocks and names of the host.
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "adjtimex",
    "sethostname",
    "setdomainname",
    // Changing the filter.
    "seccomp",
];

pub fn default_policy() -> Policy {
    Policy {
        default: Action::Allow,
        groups: vec![(
            Action::Errno,
            DENIED
                .iter()
                .filter_map(|n| Sysno::from_str(n).ok())
                .collect(),
        )],
    }
}

/// The configured policy; `None` with `seccomp.enabled: false`.
pub fn policy(cfg: &Config) -> Result<Option<Policy>, String> {
    let Some(section) = lookup(&cfg.raw, "seccomp") else {
        return Ok(Some(default_policy()));
    };
    if section.is_null() {
        return Ok(Some(default_policy()));
    }
    let Some(map) = section.as_mapping() else {
        return Err(format!("seccomp: expected a mapping (got {section:?})"));
    };
    let get = |k: &str| map.get(Value::String(k.into()));
    match get("enabled") {
        None | Some(Value::Null) | Some(Value::Bool(true)) => {}
        Some(Value::Bool(false)) => return Ok(None),
        Some(v) => return Err(format!("seccomp.enabled: expected a boolean (got {v:?})")),
    }
    for k in map.keys() {
        match k.as_str() {
            Some("enabled" | "default_action" | "syscalls") => {}
            _ => return Err(format!("seccomp: unknown option {k:?}")),
        }
    }
    let mut p = default_policy();
    let action = |v: &Value, at: &str| -> Result<Action, String> {
        v.as_str().and_then(Action::parse).ok_or_else(|| {
            format!("{at}: expected one of allow, errno, log, trace, trap, kill_thread, kill_process (got {v:?})")
        })
    };
    if let Some(v) = get("default_action").filter(|v| !v.is_null()) {
        p.default = action(v, "seccomp.default_action")?;
    }
    if let Some(v) = get("syscalls").filter(|v| !v.is_null()) {
        let list = v
            .as_sequence()
            .ok_or_else(|| format!("seccomp.syscalls: expected a list (got {v:?})"))?;
        p.groups.clear();
        for (i, g) in list.iter().enumerate() {
            let at = format!("seccomp.syscalls.{i}");
            let a = g
                .get("action")
                .ok_or_else(|| format!("{at}.action is missing"))?;
            let a = action(a, &format!("{at}.action"))?;
            let names = g
                .get("names")
                .and_then(Value::as_sequence)
                .ok_or_else(|| format!("{at}.names: expected a list of system call names"))?;
            let mut calls = Vec::with_capacity(names.len());
            for n in names {
                let name = n
                    .as_str()
                    .ok_or_else(|| format!("{at}.names: expected a name (got {n:?})"))?;
                calls.push(Sysno::from_str(name).map_err(|_| {
                    format!(
                        "{at}.names: '{name}' is not a system call on {}",
                        std::env::consts::ARCH
                    )
                })?);
            }
            p.groups.push((a, calls));
        }
    }
    // Two instructions per call; the kernel takes at most 4096 (BPF_MAXINSNS).
    let calls: usize = p.groups.iter().map(|(_, c)| c.len()).sum();
    if 2 * calls + 8 > 4096 {
        return Err(format!(
            "seccomp.syscalls: {calls} names; at most 2044 fit in one filter"
        ));
    }
    Ok(Some(p))
}

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xC000_003E;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xC000_00B7;

/// `BPF_LD | BPF_W | BPF_ABS`, `BPF_JMP | BPF_JEQ | BPF_K`, `BPF_JMP | BPF_JGE | BPF_K`,
/// `BPF_RET | BPF_K`.
const LD_ABS: u16 = 0x20;
const JEQ: u16 = 0x15;
const JGE: u16 = 0x35;
const RET: u16 = 0x06;
/// `offsetof(struct seccomp_data, nr)` and `arch`.
const NR: u32 = 0;
const ARCH: u32 = 4;
/// Calls of the x32 ABI carry this bit in their number on x86_64.
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

fn insn(code: u16, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

/// The filter: calls of another architecture or ABI (which would get round a deny list under
/// other numbers) fail with `EPERM`; then one test per named call.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
pub fn program(p: &Policy) -> Vec<libc::sock_filter> {
    let deny = Action::Errno.ret();
    let mut prog = vec![
        insn(LD_ABS, 0, 0, ARCH),
        insn(JEQ, 1, 0, AUDIT_ARCH),
        insn(RET, 0, 0, deny),
        insn(LD_ABS, 0, 0, NR),
    ];
    if cfg!(target_arch = "x86_64") {
        prog.push(insn(JGE, 0, 1, X32_SYSCALL_BIT));
        prog.push(insn(RET, 0, 0, deny));
    }
    let mut seen = std::collections::HashSet::new();
    for (action, calls) in &p.groups {
        for call in calls {
            // The first group naming a call decides it.
            if seen.insert(*call) {
                prog.push(insn(JEQ, 0, 1, call.id() as u32));
                prog.push(insn(RET, 0, 0, action.ret()));
            }
        }
    }
    prog.push(insn(RET, 0, 0, p.default.ret()));
    prog
}

/// Installs the configured filter on every thread. Kernel refusals are logged, not fatal.
pub fn install(cfg: &Config) -> Result<(), String> {
    let Some(p) = policy(cfg)? else {
        tracing::info!("Syscall filter disabled (seccomp.enabled: false)");
        return Ok(());
    };
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    {
        let prog = program(&p);
        let fprog = libc::sock_fprog {
            len: prog.len() as u16,
            filter: prog.as_ptr() as *mut libc::sock_filter,
        };
        // SAFETY: prctl with integer arguments only; the kernel copies the program, which
        // outlives the call.
        let rc = unsafe {
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                -1
            } else {
                libc::syscall(
                    libc::SYS_seccomp,
                    libc::SECCOMP_SET_MODE_FILTER,
                    libc::SECCOMP_FILTER_FLAG_TSYNC,
                    &fprog as *const libc::sock_fprog,
                )
            }
        };
        match rc {
            0 => tracing::info!(
                "Syscall filter successfully installed ({} call(s) named, default action {:?})",
                p.groups.iter().map(|(_, c)| c.len()).sum::<usize>(),
                p.default
            ),
            -1 => tracing::warn!(
                "Syscall filter could not be installed: {}",
                std::io::Error::last_os_error()
            ),
            tid => tracing::warn!(
                "Syscall filter could not be installed: thread {tid} has another filter"
            ),
        }
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    tracing::info!("Syscall filtering is not supported on this architecture");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(yaml: &str) -> Config {
        let yaml = format!("output.console.enabled: true\n{yaml}");
        crate::config::load_from_str(&yaml, "t.yml", &[]).unwrap()
    }

    /// Runs the filter program on one call, as the kernel would (the subset of BPF it uses).
    fn run(prog: &[libc::sock_filter], arch: u32, nr: u32) -> u32 {
        let (mut pc, mut acc) = (0usize, 0u32);
        loop {
            let i = prog[pc];
            match i.code {
                LD_ABS => acc = if i.k == ARCH { arch } else { nr },
                JEQ | JGE => {
                    let hit = if i.code == JEQ {
                        acc == i.k
                    } else {
                        acc >= i.k
                    };
                    pc += usize::from(if hit { i.jt } else { i.jf });
                }
                RET => return i.k,
                c => panic!("unexpected opcode {c:#x}"),
            }
            pc += 1;
        }
    }

    fn nr(name: &str) -> u32 {
        Sysno::from_str(name).unwrap().id() as u32
    }

    #[test]
    fn default_policy_denies_exec_and_ptrace_and_allows_the_rest() {
        let p = policy(&cfg("")).unwrap().unwrap();
        let prog = program(&p);
        for call in [
            "execve",
            "execveat",
            "ptrace",
            "setuid",
            "mount",
            "init_module",
            "bpf",
        ] {
            assert_eq!(
                run(&prog, AUDIT_ARCH, nr(call)),
                Action::Errno.ret(),
                "{call}"
            );
        }
        for call in [
            "read", "write", "socket", "connect", "mmap", "clone", "futex", "prctl", "capset",
        ] {
            assert_eq!(
                run(&prog, AUDIT_ARCH, nr(call)),
                Action::Allow.ret(),
                "{call}"
            );
        }
        // Another architecture's numbers, and the x32 ABI, are refused outright.
        assert_eq!(run(&prog, 0x4000_0003, nr("read")), Action::Errno.ret());
        if cfg!(target_arch = "x86_64") {
            assert_eq!(
                run(&prog, AUDIT_ARCH, X32_SYSCALL_BIT | nr("execve")),
                Action::Errno.ret()
            );
        }
    }

    #[test]
    fn configured_groups_replace_the_built_in_ones_and_the_first_group_decides() {
        let p = policy(&cfg(
            "seccomp:\n  default_action: errno\n  syscalls:\n  - action: allow\n    names: [read, write]\n  - action: kill_process\n    names: [write, ptrace]\n",
        ))
        .unwrap()
        .unwrap();
        let prog = program(&p);
        assert_eq!(run(&prog, AUDIT_ARCH, nr("read")), Action::Allow.ret());
        assert_eq!(run(&prog, AUDIT_ARCH, nr("write")), Action::Allow.ret());
        assert_eq!(
            run(&prog, AUDIT_ARCH, nr("ptrace")),
            Action::KillProcess.ret()
        );
        assert_eq!(run(&prog, AUDIT_ARCH, nr("execve")), Action::Errno.ret());
        assert_eq!(run(&prog, AUDIT_ARCH, nr("socket")), Action::Errno.ret());
    }

    #[test]
    fn a_configured_default_action_keeps_the_built_in_groups() {
        let p = policy(&cfg("seccomp:\n  default_action: log\n"))
            .unwrap()
            .unwrap();
        assert_eq!(p.default, Action::Log);
        assert_eq!(p.groups, default_policy().groups);
        let p = policy(&cfg("seccomp:\n  enabled: true\n  default_action: kill\n"))
            .unwrap()
            .unwrap();
        assert_eq!(p.default, Action::KillThread);
    }

    #[test]
    fn disabled_and_bad_options() {
        assert_eq!(policy(&cfg("seccomp: {enabled: false}")).unwrap(), None);
        let err = |y: &str| policy(&cfg(y)).unwrap_err();
        assert!(err("seccomp: {enabled: maybe}").contains("seccomp.enabled"));
        assert!(err("seccomp: {default_action: deny}").contains("seccomp.default_action"));
        assert!(
            err("seccomp: {syscalls: [{action: errno, names: [not_a_call]}]}")
                .contains("'not_a_call' is not a system call")
        );
        assert!(err("seccomp: {syscalls: [{names: [read]}]}").contains("seccomp.syscalls.0.action"));
        assert!(err("seccomp: {syscalls: [{action: allow}]}").contains("seccomp.syscalls.0.names"));
        assert!(err("seccomp: {sycalls: []}").contains("unknown option"));
        let many: Vec<&str> = std::iter::repeat_n("read", 2100).collect();
        assert!(err(&format!(
            "seccomp: {{syscalls: [{{action: allow, names: [{}]}}]}}",
            many.join(",")
        ))
        .contains("at most"));
    }
}
