//! The seccomp filter apps run under: what Flatpak blocks (its
//! `setup_seccomp`, 1.14), compiled by `seccompiler` (Firecracker's BPF
//! compiler) and handed to bubblewrap (`--add-seccomp-fd`). Pure: the
//! programs are returned as bytes.
//!
//! Three programs, one per answer, as seccompiler gives one action per
//! filter; the kernel runs them all and the strictest answer wins:
//!
//! - `EPERM`: kernel logs and keyrings, accounting, quotas, NUMA and
//!   page-moving calls, namespaces and mounts (`unshare`, `setns`,
//!   `mount`, `pivot_root`, `chroot`, `clone` with `CLONE_NEWUSER`),
//!   faking terminal input (`TIOCSTI`, `TIOCLINUX`), `ptrace`, and
//!   personalities other than Linux's own.
//! - `ENOSYS`: `clone3` (its flags are out of seccomp's reach; libc falls
//!   back to `clone`, which is checked), the new mount API, and
//!   `perf_event_open`.
//! - `EAFNOSUPPORT`: sockets of families other than Unix, IPv4, IPv6 and
//!   netlink.
//!
//! On x86-64, x32 calls (the same numbers with bit 30 set, and the same
//! audit arch, so seccompiler's arch check lets them through) get every
//! rule too; x32's own `ioctl` is 514. i386 calls are killed by
//! seccompiler's arch check, so 32-bit apps do not run (Flatpak allows
//! them through a second filter).

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen as Len, SeccompCmpOp as Op, SeccompCondition,
    SeccompFilter, SeccompRule, TargetArch,
};

use crate::error::{Error, Result};

const CLONE_NEWUSER: u64 = 0x1000_0000;
const TIOCSTI: u64 = 0x5412;
const TIOCLINUX: u64 = 0x541C;
/// PER_LINUX, PER_LINUX32, and the query value.
const PERSONALITIES: [u64; 3] = [0, 8, 0xffff_ffff];
/// AF_UNSPEC, AF_UNIX, AF_INET, AF_INET6, AF_NETLINK.
const SOCKET_FAMILIES: [u64; 5] = [0, 1, 2, 10, 16];

/// Calls refused with `EPERM` whatever their arguments.
const EPERM_ALWAYS: &[i64] = &[
    libc::SYS_syslog,
    libc::SYS_uselib,
    libc::SYS_acct,
    libc::SYS_modify_ldt,
    libc::SYS_quotactl,
    libc::SYS_add_key,
    libc::SYS_keyctl,
    libc::SYS_request_key,
    libc::SYS_move_pages,
    libc::SYS_mbind,
    libc::SYS_get_mempolicy,
    libc::SYS_set_mempolicy,
    libc::SYS_migrate_pages,
    libc::SYS_unshare,
    libc::SYS_setns,
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_pivot_root,
    libc::SYS_chroot,
    libc::SYS_ptrace,
];

/// Calls answered `ENOSYS`, so callers fall back to something checked.
const ENOSYS_ALWAYS: &[i64] = &[
    libc::SYS_clone3,
    libc::SYS_open_tree,
    libc::SYS_move_mount,
    libc::SYS_fsopen,
    libc::SYS_fsconfig,
    libc::SYS_fsmount,
    libc::SYS_fspick,
    libc::SYS_mount_setattr,
    libc::SYS_perf_event_open,
];

fn cond(arg: u8, len: Len, op: Op, value: u64) -> Result<SeccompCondition> {
    SeccompCondition::new(arg, len, op, value).map_err(|e| Error::Seccomp(e.to_string()))
}

fn rule(conditions: Vec<SeccompCondition>) -> Result<SeccompRule> {
    SeccompRule::new(conditions).map_err(|e| Error::Seccomp(e.to_string()))
}

/// x32 system calls: the x86-64 numbers with this bit.
const X32: i64 = 0x4000_0000;
/// x32's own `ioctl` (x32 numbers its compat calls from 512).
const X32_IOCTL: i64 = X32 | 514;

/// `rules` with each call's rules also under its x32 number.
fn with_x32(rules: BTreeMap<i64, Vec<SeccompRule>>) -> BTreeMap<i64, Vec<SeccompRule>> {
    if std::env::consts::ARCH != "x86_64" {
        return rules;
    }
    let mut all = rules.clone();
    for (nr, r) in rules {
        let x32 = if nr == libc::SYS_ioctl {
            X32_IOCTL
        } else {
            X32 | nr
        };
        all.insert(x32, r);
    }
    all
}

fn compile(rules: BTreeMap<i64, Vec<SeccompRule>>, errno: i32) -> Result<Vec<u8>> {
    let rules = with_x32(rules);
    let arch = TargetArch::try_from(std::env::consts::ARCH)
        .map_err(|e| Error::Seccomp(format!("{}: {e}", std::env::consts::ARCH)))?;
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(errno as u32),
        arch,
    )
    .map_err(|e| Error::Seccomp(e.to_string()))?;
    let program: BpfProgram = filter
        .try_into()
        .map_err(|e: seccompiler::BackendError| Error::Seccomp(e.to_string()))?;
    // struct sock_filter, as the kernel (and bwrap) read it.
    let mut bytes = Vec::with_capacity(program.len() * 8);
    for i in program {
        bytes.extend_from_slice(&i.code.to_ne_bytes());
        bytes.push(i.jt);
        bytes.push(i.jf);
        bytes.extend_from_slice(&i.k.to_ne_bytes());
    }
    Ok(bytes)
}

/// The filter's programs, in the order bwrap installs them.
pub fn programs() -> Result<Vec<Vec<u8>>> {
    let mut eperm: BTreeMap<i64, Vec<SeccompRule>> =
        EPERM_ALWAYS.iter().map(|&n| (n, Vec::new())).collect();
    eperm.insert(
        libc::SYS_clone,
        vec![rule(vec![cond(
            0,
            Len::Qword,
            Op::MaskedEq(CLONE_NEWUSER),
            CLONE_NEWUSER,
        )?])?],
    );
    eperm.insert(
        libc::SYS_ioctl,
        vec![
            rule(vec![cond(1, Len::Dword, Op::Eq, TIOCSTI)?])?,
            rule(vec![cond(1, Len::Dword, Op::Eq, TIOCLINUX)?])?,
        ],
    );
    eperm.insert(
        libc::SYS_personality,
        vec![rule(
            PERSONALITIES
                .iter()
                .map(|&p| cond(0, Len::Dword, Op::Ne, p))
                .collect::<Result<_>>()?,
        )?],
    );
    let enosys: BTreeMap<i64, Vec<SeccompRule>> =
        ENOSYS_ALWAYS.iter().map(|&n| (n, Vec::new())).collect();
    let families = BTreeMap::from([(
        libc::SYS_socket,
        vec![rule(
            SOCKET_FAMILIES
                .iter()
                .map(|&f| cond(0, Len::Dword, Op::Ne, f))
                .collect::<Result<_>>()?,
        )?],
    )]);
    Ok(vec![
        compile(eperm, libc::EPERM)?,
        compile(enosys, libc::ENOSYS)?,
        compile(families, libc::EAFNOSUPPORT)?,
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_compile_to_whole_instructions() {
        let p = programs().expect("test input");
        assert_eq!(p.len(), 3);
        for prog in &p {
            assert!(!prog.is_empty() && prog.len() % 8 == 0);
            // Far below the kernel's limit of 4096 instructions.
            assert!(prog.len() / 8 < 1024, "{}", prog.len() / 8);
        }
    }
}
