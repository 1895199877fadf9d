//! Booting installed disks in QEMU (software emulation, OVMF, systemd-boot)
//! and running commands in the guest over its serial console.
//!
//! The guest logs root in on ttyS0 by itself (the fixture tree carries an
//! agetty drop-in); the harness turns echo off and frames every command
//! with markers, so output and exit status are read back exactly. Guests
//! need no network. Everything the console printed is kept in a log file
//! for post-mortems.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A boot through firmware, systemd-boot, the kernel and systemd, emulated.
const BOOT_TIMEOUT: Duration = Duration::from_secs(400);
pub const OVMF_CODE: &str = "/usr/share/OVMF/OVMF_CODE_4M.fd";
pub const OVMF_VARS: &str = "/usr/share/OVMF/OVMF_VARS_4M.fd";

pub struct Vm {
    child: Child,
    stdin: ChildStdin,
    out: Arc<Mutex<Vec<u8>>>,
    /// Where in `out` the next command's output starts.
    seen: usize,
    n: u32,
    pub log: PathBuf,
    /// A machine that reboots in place: its QMP socket, and the watch on
    /// its firmware (see [`Vm::watch_firmware`]).
    watchdog: Option<Watchdog>,
}

/// How long the firmware may stay silent after the guest's reset.
const FIRMWARE_SILENCE: Duration = Duration::from_secs(120);
/// What the kernel prints as it resets the machine, and what OVMF's boot
/// manager prints first.
const GUEST_RESET: &[u8] = b"reboot: Restarting system";
const FIRMWARE_UP: &[u8] = b"BdsDxe";

/// The hardware watchdog of a machine that reboots in place. OVMF under
/// TCG now and then hangs after a reset before its boot manager prints
/// anything (seen with a full variable store, and once on fresh variables
/// right after a CI job's concurrent builds): no strata code has run yet,
/// and a real machine's watchdog would power-cycle it. After
/// [`FIRMWARE_SILENCE`] of that, QEMU is reset over QMP, once per guest
/// reset; the console log and stderr say so.
struct Watchdog {
    qmp: PathBuf,
    /// The guest reset being watched: where it is in `out`, since when.
    watching: Option<(usize, Instant)>,
    /// Guest resets already handled.
    handled: usize,
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn rfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).rposition(|w| w == needle)
}

/// `system_reset` over the QMP socket `sock`.
fn qmp_reset(sock: &Path) -> std::io::Result<()> {
    use std::io::BufRead;
    let s = std::os::unix::net::UnixStream::connect(sock)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut w = s.try_clone()?;
    let mut r = std::io::BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line)?;
    for cmd in ["qmp_capabilities", "system_reset"] {
        w.write_all(format!("{{\"execute\":\"{cmd}\"}}\n").as_bytes())?;
        line.clear();
        r.read_line(&mut line)?;
    }
    Ok(())
}

#[track_caller]
pub fn have_qemu() -> bool {
    let ok = Path::new(OVMF_CODE).exists() && super::have_tool("qemu-system-x86_64");
    if !ok {
        super::skip("qemu-system-x86_64 or OVMF is missing (scripts/deps installs them)");
    }
    ok
}

/// The line that runs `cmd` as the `n`-th guest command, between the
/// markers `@@S<n>@@` and `@@E<n>:<status>@@`. The markers are split by an
/// empty `""` in the line itself, so the terminal's echo of the line (the
/// shell echoes until `stty -echo` takes effect, which a loaded host can
/// delay past the first command) never matches them: the echoed
/// `echo "@@E1:$?@@"` once read as exit status -1.
pub fn command_line(n: u32, cmd: &str) -> String {
    format!("echo @@S\"\"{n}@@; ( {cmd} ) 2>&1; echo \"@@E\"\"{n}:$?@@\"")
}

impl Vm {
    /// Boots and waits for the console to print `needle` (no shell set up):
    /// for boots that are meant to stop early.
    pub fn boot_until(disk: &Path, vars: &Path, extra: &[&Path], log: &Path, needle: &str) -> Vm {
        let mut vm = Self::start(disk, vars, extra, log, false);
        vm.wait_for(needle, BOOT_TIMEOUT);
        vm
    }

    /// Boots `disk` (with `vars`, this machine's own copy of the UEFI
    /// variables, and `extra` disks) and waits for the root shell.
    pub fn boot(disk: &Path, vars: &Path, extra: &[&Path], log: &Path) -> Vm {
        let mut vm = Self::start(disk, vars, extra, log, false);
        vm.shell();
        vm
    }

    /// Boots like [`Vm::boot`], but a reboot of the guest restarts it in
    /// place, as a real machine does (no `-no-reboot`): for a machine that
    /// reboots by itself. Nothing is waited for; see [`Vm::expect`] and
    /// [`Vm::shell`].
    ///
    /// The UEFI variables start afresh (nothing of strata's lives there:
    /// boot counting is in the ESP's file names). OVMF rewrites ConOut,
    /// ConIn and ErrOut at every boot, and after about 17 boots on one
    /// variables file its store is full (VarErrorFlag set); twice the
    /// next reset then hung before the boot manager printed anything (VM
    /// runs on 5cff8f2 and 19af9df+, and once last session).
    pub fn boot_rebooting(disk: &Path, vars: &Path, extra: &[&Path], log: &Path) -> Vm {
        fs::copy(OVMF_VARS, vars).expect("copy fresh OVMF variables");
        Self::start(disk, vars, extra, log, true)
    }

    /// Waits for the console to print `needle` (after what was read so
    /// far), within `timeout`; what follows it is read next.
    pub fn expect(&mut self, needle: &str, timeout: Duration) {
        self.wait_for(needle, timeout);
        // In bytes: the console may print invalid UTF-8, which the lossy
        // text would count differently.
        let o = self.out.lock().expect("console buffer");
        let from = self.seen.min(o.len());
        if let Some(i) = o[from..]
            .windows(needle.len())
            .position(|w| w == needle.as_bytes())
        {
            self.seen = from + i + needle.len();
        }
    }

    /// Waits for the root shell of the boot under way and sets it up.
    pub fn shell(&mut self) {
        let vm = self;
        vm.expect("login: root (automatic login)", BOOT_TIMEOUT);
        std::thread::sleep(Duration::from_secs(2));
        // Quiet the console: no echo, no kernel messages, no colors.
        vm.send("stty -echo; dmesg -n 1; export TERM=dumb PAGER=cat SYSTEMD_COLORS=0; PS1=''");
        std::thread::sleep(Duration::from_secs(1));
        vm.seen = vm.out.lock().map(|o| o.len()).unwrap_or(0);
    }

    fn start(disk: &Path, vars: &Path, extra: &[&Path], log: &Path, rebooting: bool) -> Vm {
        if !vars.exists() {
            fs::copy(OVMF_VARS, vars).expect("copy OVMF variables");
        }
        let mut cmd = Command::new("qemu-system-x86_64");
        cmd.args([
            "-accel", "tcg", "-cpu", "max", "-m", "1536", "-smp", "2", "-display", "none",
            "-monitor", "none",
        ])
        .args(["-serial", "stdio", "-nic", "none"]);
        let qmp = rebooting.then(|| log.with_extension("qmp"));
        if let Some(q) = &qmp {
            let _ = fs::remove_file(q);
            cmd.arg("-qmp")
                .arg(format!("unix:{},server=on,wait=off", q.display()));
        }
        cmd.args(if rebooting {
            &[][..]
        } else {
            &["-no-reboot"][..]
        })
        .arg("-drive")
        .arg(format!("if=pflash,format=raw,readonly=on,file={OVMF_CODE}"))
        .arg("-drive")
        .arg(format!("if=pflash,format=raw,file={}", vars.display()))
        .arg("-drive")
        .arg(format!("file={},format=raw,if=virtio", disk.display()));
        for d in extra {
            cmd.arg("-drive")
                .arg(format!("file={},format=raw,if=virtio", d.display()));
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start qemu");
        let stdin = child.stdin.take().expect("qemu stdin");
        let mut stdout = child.stdout.take().expect("qemu stdout");
        let out = Arc::new(Mutex::new(Vec::new()));
        let sink = out.clone();
        let mut logf = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("open console log");
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let _ = logf.write_all(&buf[..n]);
                if let Ok(mut o) = sink.lock() {
                    o.extend_from_slice(&buf[..n]);
                }
            }
        });
        Vm {
            child,
            stdin,
            out,
            seen: 0,
            n: 0,
            log: log.to_owned(),
            watchdog: qmp.map(|qmp| Watchdog {
                qmp,
                watching: None,
                handled: 0,
            }),
        }
    }

    fn text_since(&self, from: usize) -> String {
        let o = self.out.lock().expect("console buffer");
        String::from_utf8_lossy(&o[from.min(o.len())..]).into_owned()
    }

    fn wait_for(&mut self, needle: &str, timeout: Duration) -> String {
        let start = Instant::now();
        loop {
            let t = self.text_since(self.seen);
            if let Some(i) = t.find(needle) {
                return t[..i + needle.len()].to_owned();
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "qemu exited ({status}) while waiting for {needle:?}; console log: {}",
                    self.log.display()
                );
            }
            assert!(
                start.elapsed() < timeout,
                "timed out after {timeout:?} waiting for {needle:?}; console log: {}",
                self.log.display()
            );
            self.watch_firmware();
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The watchdog's turn (see [`Watchdog`]): resets QEMU when the
    /// firmware has said nothing for [`FIRMWARE_SILENCE`] after the
    /// guest's last reset.
    fn watch_firmware(&mut self) {
        let Some(dog) = self.watchdog.as_mut() else {
            return;
        };
        let silent_since = {
            let o = self.out.lock().expect("console buffer");
            match rfind(&o, GUEST_RESET) {
                Some(at) if at >= dog.handled && find(&o[at..], FIRMWARE_UP).is_none() => Some(at),
                _ => None,
            }
        };
        let Some(at) = silent_since else {
            dog.watching = None;
            return;
        };
        let since = match dog.watching {
            Some((w, since)) if w == at => since,
            _ => {
                dog.watching = Some((at, Instant::now()));
                return;
            }
        };
        if since.elapsed() < FIRMWARE_SILENCE {
            return;
        }
        let what = format!(
            "[harness] the firmware printed nothing {}s after the guest's reset: QEMU system_reset over QMP, as a watchdog would ({:?})",
            FIRMWARE_SILENCE.as_secs(),
            qmp_reset(&dog.qmp)
        );
        eprintln!("{what}");
        if let Ok(mut f) = fs::OpenOptions::new().append(true).open(&self.log) {
            let _ = writeln!(f, "\n{what}");
        }
        dog.handled = at + 1;
        dog.watching = None;
    }

    pub fn send(&mut self, line: &str) {
        self.stdin
            .write_all(format!("{line}\n").as_bytes())
            .expect("write to the guest console");
        self.stdin.flush().expect("flush the guest console");
    }

    /// Runs `cmd` in the guest; returns (exit status, output).
    pub fn sh(&mut self, cmd: &str, timeout: Duration) -> (i32, String) {
        self.n += 1;
        let n = self.n;
        let start_mark = format!("@@S{n}@@");
        self.send(&command_line(n, cmd));
        let t = self.wait_for(&format!("@@E{n}:"), timeout);
        let after = self.wait_for_status(n, timeout);
        let body = t
            .split(&start_mark)
            .nth(1)
            .unwrap_or("")
            .rsplit_once(&format!("@@E{n}:"))
            .map(|(b, _)| b)
            .unwrap_or("");
        let body = body
            .trim_matches(|c| c == '\r' || c == '\n')
            .replace('\r', "");
        self.seen = self.out.lock().map(|o| o.len()).unwrap_or(0);
        (after, body)
    }

    fn wait_for_status(&mut self, n: u32, timeout: Duration) -> i32 {
        let t = self.wait_for(&format!("@@E{n}:"), timeout);
        let start = Instant::now();
        loop {
            let full = self.text_since(self.seen);
            if let Some(rest) = full.split(&format!("@@E{n}:")).nth(1)
                && let Some((code, _)) = rest.split_once("@@")
            {
                return code.trim().parse().unwrap_or(-1);
            }
            assert!(start.elapsed() < timeout, "no exit status after {t:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs `cmd` and panics unless it exits 0; returns its output.
    pub fn ok(&mut self, cmd: &str) -> String {
        let (code, out) = self.sh(cmd, Duration::from_secs(600));
        assert_eq!(
            code,
            0,
            "guest command {cmd:?} failed:\n{out}\nconsole log: {}",
            self.log.display()
        );
        out
    }

    /// Reboots (QEMU runs with -no-reboot, so the machine stops) and waits for exit.
    pub fn reboot(mut self) {
        self.send("sync; systemctl reboot");
        self.wait_exit(Duration::from_secs(180));
    }

    fn wait_exit(&mut self, timeout: Duration) {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let _ = self.child.kill();
        panic!(
            "the guest did not stop within {timeout:?}; console log: {}",
            self.log.display()
        );
    }

    /// Powers the guest off and waits for QEMU to exit.
    pub fn poweroff(mut self) {
        self.send("sync; systemctl poweroff");
        self.wait_exit(Duration::from_secs(180));
    }

    /// Power cut: kills QEMU where it stands.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(dog) = &self.watchdog {
            let _ = fs::remove_file(&dog.qmp);
        }
    }
}
