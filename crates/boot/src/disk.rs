//! Partitioning and formatting an install disk (an image file or a block
//! device) with the util-linux and mkfs tools:
//!
//! ```text
//! GPT
//!   1  ESP   512 MiB  vfat  "STRATA-ESP"   (systemd-boot, kernels, entries)
//!   2  root  rest     ext4  "strata-root"  (the sysroot)
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Error, Result, run};
use strata_store::error::IoContext;

/// GPT partition type of an EFI system partition.
pub const ESP_TYPE: &str = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B";
/// GPT partition type of an x86-64 Linux root (Discoverable Partitions Spec).
pub const ROOT_TYPE: &str = "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709";
/// Size of the ESP created, in MiB: room for several kernels and
/// initramfs images, so a deploy can keep the previous one.
pub const ESP_MIB: u64 = 512;

/// A partitioned disk, attached: loop devices are detached on drop.
pub struct Disk {
    /// The disk as given: a block device or an image file.
    pub device: PathBuf,
    /// The ESP's device: partition 1, or for an image a loop device
    /// over it.
    pub esp: PathBuf,
    /// The root's device: partition 2 (the rest of the disk), or for an
    /// image a loop device over it.
    pub root: PathBuf,
    loops: Vec<PathBuf>,
}

impl Drop for Disk {
    fn drop(&mut self) {
        for l in &self.loops {
            let _ = Command::new("losetup").arg("-d").arg(l).status();
        }
    }
}

/// Partitions and formats `path`. A regular file (or a path that does not
/// exist) is sized to `size` bytes and attached to a loop device.
pub fn partition(path: &Path, size: u64) -> Result<Disk> {
    let is_block = std::fs::metadata(path)
        .map(|m| std::os::unix::fs::FileTypeExt::is_block_device(&m.file_type()))
        .unwrap_or(false);
    if !is_block {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .io_ctx("create disk image", path)?;
        f.set_len(size).io_ctx("size disk image", path)?;
    }
    let script = format!(
        "label: gpt\nsize={ESP_MIB}MiB, type={ESP_TYPE}, name=esp\ntype={ROOT_TYPE}, name=root\n"
    );
    let mut child = Command::new("sfdisk")
        .args(["--quiet", "--wipe", "always"])
        .arg(path)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|source| Error::Spawn {
            what: format!("partitioning {}", path.display()),
            program: "sfdisk".into(),
            source,
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        use std::io::Write;
        stdin
            .write_all(script.as_bytes())
            .io_ctx("send the partition table to sfdisk for", path)?;
    }
    let out = child
        .wait_with_output()
        .io_ctx("wait for sfdisk partitioning", path)?;
    if !out.status.success() {
        return Err(Error::Command {
            what: format!("partitioning {}", path.display()),
            program: "sfdisk".into(),
            status: out.status,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    let disk = if is_block {
        let dev = path.display().to_string();
        let sep = if dev.ends_with(|c: char| c.is_ascii_digit()) {
            "p"
        } else {
            ""
        };
        Disk {
            esp: PathBuf::from(format!("{dev}{sep}1")),
            root: PathBuf::from(format!("{dev}{sep}2")),
            device: path.to_owned(),
            loops: Vec::new(),
        }
    } else {
        // One loop device per partition, by offset: partition scanning of
        // loop devices is not available everywhere (it is not here).
        let dump = run(
            Command::new("sfdisk").arg("--dump").arg(path),
            "reading the partition table",
        )?;
        let parts = parse_dump(&dump);
        let [(s1, n1), (s2, n2)] = parts.as_slice() else {
            return Err(Error::PartitionTable {
                path: path.to_owned(),
                dump,
            });
        };
        let attach = |start: u64, sectors: u64| -> Result<PathBuf> {
            Ok(PathBuf::from(run(
                Command::new("losetup")
                    .args([
                        "--find",
                        "--show",
                        "--offset",
                        &(start * 512).to_string(),
                        "--sizelimit",
                        &(sectors * 512).to_string(),
                    ])
                    .arg(path),
                "attaching a partition of the image",
            )?))
        };
        let esp = attach(*s1, *n1)?;
        let mut disk = Disk {
            esp: esp.clone(),
            root: PathBuf::new(),
            device: path.to_owned(),
            loops: vec![esp],
        };
        disk.root = attach(*s2, *n2)?;
        disk.loops.push(disk.root.clone());
        disk
    };
    // udev may take a moment to create the partition nodes.
    for _ in 0..50 {
        if disk.esp.exists() && disk.root.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    run(
        Command::new("mkfs.vfat")
            .args(["-F", "32", "-n", "STRATA-ESP"])
            .arg(&disk.esp),
        "formatting the ESP",
    )?;
    run(
        Command::new("mkfs.ext4")
            .args(["-q", "-F", "-L", "strata-root"])
            .arg(&disk.root),
        "formatting the root",
    )?;
    Ok(disk)
}

/// (start, size) in sectors of each partition in `sfdisk --dump` output.
fn parse_dump(dump: &str) -> Vec<(u64, u64)> {
    dump.lines()
        .filter(|l| l.contains(" : start="))
        .filter_map(|l| {
            let field = |k: &str| {
                l.split(',').find_map(|f| {
                    f.split_once('=')
                        .filter(|(n, _)| n.trim().ends_with(k))
                        .map(|(_, v)| v.trim().parse().ok())
                })?
            };
            Some((field("start")?, field("size")?))
        })
        .collect()
}

/// A filesystem's UUID, as `root=UUID=…` and fstab want it.
pub fn uuid(device: &Path) -> Result<String> {
    run(
        Command::new("blkid")
            .args(["-s", "UUID", "-o", "value"])
            .arg(device),
        "reading the filesystem UUID",
    )
}

/// Copies the content of `dir` onto the vfat filesystem on `device` with
/// mtools (`mcopy`), which needs no vfat support in the running kernel.
pub fn copy_to_vfat(dir: &Path, device: &Path) -> Result<()> {
    let mut cmd = Command::new("mcopy");
    cmd.args(["-s", "-Q", "-i"]).arg(device);
    for e in std::fs::read_dir(dir).io_ctx("read directory", dir)? {
        let e = e.io_ctx("read directory", dir)?;
        cmd.arg(e.path());
    }
    cmd.arg("::/");
    run(&mut cmd, "copying files onto the ESP (mcopy)")?;
    Ok(())
}

/// A mount that is undone on drop.
pub struct Mounted(pub PathBuf);

impl Mounted {
    /// Mounts `device` at `at`, creating `at` if needed.
    pub fn new(device: &Path, at: &Path) -> Result<Self> {
        std::fs::create_dir_all(at).io_ctx("create", at)?;
        run(Command::new("mount").arg(device).arg(at), "mounting")?;
        Ok(Mounted(at.to_owned()))
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn dump() {
        let d = "label: gpt\nunit: sectors\n\nd.img1 : start=        2048, size=     1048576, type=C12A, name=\"esp\"\nd.img2 : start=     1050624, size=     7335936, type=4F68\n";
        assert_eq!(
            super::parse_dump(d),
            vec![(2048, 1048576), (1050624, 7335936)]
        );
    }
}
