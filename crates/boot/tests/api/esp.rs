//! The EFI system partition in a temporary directory (or a small tmpfs
//! where the free space matters): layout, kernels, entries, systemd-boot.

use std::fs;
use std::path::Path;

use strata_boot::Entry;
use strata_boot::bls::EntryName;
use strata_boot::error::Error;
use strata_boot::esp::Esp;

use crate::{Tmpfs, file, have_root, listing};

/// The systemd-boot binary of Debian's systemd-boot-efi package.
const SYSTEMD_BOOT: &str = "/usr/lib/systemd/boot/efi/systemd-bootx64.efi";

fn name(stateroot: &str, generation: u64, counter: Option<(u32, Option<u32>)>) -> EntryName {
    EntryName {
        stateroot: stateroot.into(),
        generation,
        counter,
    }
}

fn entry(generation: u64, kernel_dir: &str) -> Entry {
    Entry {
        title: format!("Test OS (generation {generation})"),
        generation,
        linux: format!("/strata/{kernel_dir}/vmlinuz"),
        initrd: format!("/strata/{kernel_dir}/initramfs.img"),
        options: format!("root=UUID=x rw strata=/strata/deploy/os/c{generation}.0"),
    }
}

fn read(p: &Path) -> Vec<u8> {
    fs::read(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

/// The layout is created where missing, and a second call (every deploy
/// makes one) keeps what is there: a `loader.conf` the admin edited is
/// not reset to strata's default.
#[test]
fn ensure_layout_creates_the_tree_and_keeps_an_edited_loader_conf() {
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let esp = Esp::new(tmp.path());
    assert_eq!(esp.path(), tmp.path());
    esp.ensure_layout().expect("layout");
    assert_eq!(
        listing(tmp.path()),
        ["loader", "loader/entries", "loader/loader.conf", "strata"]
    );
    let conf = tmp.path().join("loader/loader.conf");
    let text = fs::read_to_string(&conf).expect("loader.conf");
    assert!(text.lines().any(|l| l.starts_with("timeout ")), "{text}");

    fs::write(&conf, "timeout 10\ndefault @saved\n").expect("edit loader.conf");
    esp.ensure_layout().expect("layout again");
    assert_eq!(
        fs::read_to_string(&conf).expect("loader.conf"),
        "timeout 10\ndefault @saved\n"
    );
    assert_eq!(
        listing(tmp.path()),
        ["loader", "loader/entries", "loader/loader.conf", "strata"]
    );
}

/// An ESP strata never wrote to has no entries and no kernels: listing
/// is empty, not an error (status runs before the first deploy).
#[test]
fn an_empty_esp_lists_nothing() {
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let esp = Esp::new(tmp.path());
    assert!(esp.entries().expect("entries").is_empty());
    assert!(esp.kernel_dirs().expect("kernel dirs").is_empty());
    esp.ensure_layout().expect("layout");
    assert!(esp.entries().expect("entries").is_empty());
    assert!(esp.kernel_dirs().expect("kernel dirs").is_empty());
}

/// A kernel and initramfs are installed under `strata/<dir>/`, byte for
/// byte, at the ESP paths the call returns for the entry; no temporary
/// copy is left behind.
#[test]
fn install_kernel_copies_both_files_where_the_entry_points() {
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let src = tmp.path().join("src");
    fs::create_dir(&src).expect("mkdir src");
    let esp_dir = tmp.path().join("esp");
    let esp = Esp::new(&esp_dir);
    esp.ensure_layout().expect("layout");
    // Not text, and larger than one copy buffer.
    let kernel: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let initramfs: Vec<u8> = (0..70_000u32).map(|i| (i % 13) as u8).collect();
    let vmlinuz = file(&src, "vmlinuz-6.1", &kernel);
    let initrd = file(&src, "initrd.img-6.1", &initramfs);

    let (linux, initrd_path) = esp
        .install_kernel("os-ab12", &vmlinuz, &initrd)
        .expect("install");
    assert_eq!(linux, "/strata/os-ab12/vmlinuz");
    assert_eq!(initrd_path, "/strata/os-ab12/initramfs.img");
    let on_esp = |p: &str| esp_dir.join(p.trim_start_matches('/'));
    assert_eq!(read(&on_esp(&linux)), kernel);
    assert_eq!(read(&on_esp(&initrd_path)), initramfs);
    assert_eq!(esp.kernel_dirs().expect("kernel dirs"), ["os-ab12"]);
    assert_eq!(
        listing(&esp_dir.join("strata")),
        ["os-ab12", "os-ab12/initramfs.img", "os-ab12/vmlinuz"]
    );
}

/// Installing into a kernel directory that exists is a no-op returning
/// the same paths: the directory is named by the boot checksum, so it
/// already holds these files, and on vfat it could not be replaced
/// atomically anyway. Even different source bytes do not overwrite it.
#[test]
fn install_kernel_again_is_idempotent_and_never_replaces() {
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let esp_dir = tmp.path().join("esp");
    let esp = Esp::new(&esp_dir);
    esp.ensure_layout().expect("layout");
    let v1 = file(tmp.path(), "vmlinuz", b"kernel one");
    let i1 = file(tmp.path(), "initramfs", b"initramfs one");
    let first = esp.install_kernel("os-aa", &v1, &i1).expect("install");
    let again = esp.install_kernel("os-aa", &v1, &i1).expect("again");
    assert_eq!(first, again);

    let v2 = file(tmp.path(), "vmlinuz2", b"kernel two");
    let i2 = file(tmp.path(), "initramfs2", b"initramfs two");
    let third = esp.install_kernel("os-aa", &v2, &i2).expect("same dir");
    assert_eq!(first, third);
    assert_eq!(read(&esp_dir.join("strata/os-aa/vmlinuz")), b"kernel one");
    assert_eq!(
        read(&esp_dir.join("strata/os-aa/initramfs.img")),
        b"initramfs one"
    );
    assert_eq!(esp.kernel_dirs().expect("kernel dirs"), ["os-aa"]);
}

/// A copy that fails half-way leaves no kernel directory and no
/// temporary one: an entry can only ever name a complete kernel.
#[test]
fn install_kernel_that_fails_mid_copy_leaves_nothing() {
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let esp_dir = tmp.path().join("esp");
    let esp = Esp::new(&esp_dir);
    esp.ensure_layout().expect("layout");
    let vmlinuz = file(tmp.path(), "vmlinuz", b"kernel");
    // A directory can be stat'ed and opened but not read: the kernel is
    // copied, then reading the "initramfs" fails.
    let not_a_file = tmp.path().join("initramfs.d");
    fs::create_dir(&not_a_file).expect("mkdir");
    let before = listing(&esp_dir);

    esp.install_kernel("os-bad", &vmlinuz, &not_a_file)
        .expect_err("an unreadable initramfs");
    assert_eq!(listing(&esp_dir), before);
    assert!(esp.kernel_dirs().expect("kernel dirs").is_empty());

    // A missing source fails before anything is created, too.
    esp.install_kernel("os-bad", &vmlinuz, &tmp.path().join("absent"))
        .expect_err("a missing initramfs");
    assert_eq!(listing(&esp_dir), before);
}

/// Entries come back highest generation first (the default at the top),
/// by number, not by file name: generation 1000000 outgrows the padding
/// and sorts before 999999 as text. Boot-counting names are read as
/// written, and files that are not strata's, or do not parse, are skipped.
#[test]
fn entries_list_highest_generation_first_and_skip_foreign_files() {
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let esp = Esp::new(tmp.path());
    esp.ensure_layout().expect("layout");
    let written = [
        (name("os", 2, None), entry(2, "os-b")),
        (
            name("os", 1_000_000, Some((3, None))),
            entry(1_000_000, "os-d"),
        ),
        (name("os", 10, Some((1, Some(2)))), entry(10, "os-c")),
        (
            name("other-root", 999_999, None),
            entry(999_999, "other-root-a"),
        ),
        (name("os", 1, None), entry(1, "os-a")),
    ];
    for (n, e) in &written {
        esp.write_entry(n, e).expect("write entry");
    }
    let entries_dir = tmp.path().join("loader/entries");
    // Another distribution's entry, and a file with our name but not ours.
    file(
        &entries_dir,
        "debian-6.1.conf",
        b"title Debian\nversion 6.1\nlinux /vmlinuz\n",
    );
    file(&entries_dir, "strata-os-000005.conf", b"garbage\n");
    file(&entries_dir, "README", b"not an entry\n");

    let got = esp.entries().expect("entries");
    let generations: Vec<u64> = got.iter().map(|(n, _)| n.generation).collect();
    assert_eq!(generations, [1_000_000, 999_999, 10, 2, 1]);
    for (n, e) in &got {
        let (wn, we) = written
            .iter()
            .find(|(wn, _)| wn.generation == n.generation)
            .expect("a written entry");
        assert_eq!(n, wn, "the name, counter included, reads back");
        assert_eq!(e, we, "the entry reads back");
    }
    // Each is in the file its name says, as the text strata renders.
    for (n, e) in &written {
        assert_eq!(
            fs::read_to_string(entries_dir.join(n.file_name())).expect("entry file"),
            e.to_text()
        );
    }
}

/// Writing an entry under an existing name replaces it whole.
#[test]
fn write_entry_replaces_an_entry_of_the_same_name() {
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let esp = Esp::new(tmp.path());
    // No ensure_layout: write_entry creates loader/entries itself.
    let n = name("os", 4, None);
    esp.write_entry(&n, &entry(4, "os-old")).expect("write");
    let mut newer = entry(4, "os-new");
    newer.options = "root=UUID=y ro".into();
    esp.write_entry(&n, &newer).expect("rewrite");
    assert_eq!(esp.entries().expect("entries"), [(n, newer)]);
    assert_eq!(listing(&tmp.path().join("loader/entries")).len(), 1);
}

/// Removing an entry removes that file only; removing it again (an
/// interrupted cleanup run twice) is not an error.
#[test]
fn remove_entry_removes_one_and_is_idempotent() {
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let esp = Esp::new(tmp.path());
    esp.ensure_layout().expect("layout");
    let keep = name("os", 2, None);
    let counted = name("os", 1, Some((0, Some(3))));
    esp.write_entry(&keep, &entry(2, "os-b")).expect("write");
    esp.write_entry(&counted, &entry(1, "os-a")).expect("write");

    esp.remove_entry(&counted).expect("remove");
    assert_eq!(
        esp.entries().expect("entries"),
        [(keep.clone(), entry(2, "os-b"))]
    );
    esp.remove_entry(&counted).expect("remove again");
    assert_eq!(
        listing(&tmp.path().join("loader/entries")),
        [keep.file_name()]
    );
}

/// An unused kernel directory is removed with its files, the others
/// stay; leftovers of an interrupted install (`.tmp-*`) are listed so
/// cleanup can find them, and are removed the same way.
#[test]
fn remove_kernel_dir_removes_one_and_leftovers_are_listed() {
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let esp_dir = tmp.path().join("esp");
    let esp = Esp::new(&esp_dir);
    esp.ensure_layout().expect("layout");
    let v = file(tmp.path(), "vmlinuz", b"kernel");
    let i = file(tmp.path(), "initramfs", b"initramfs");
    for dir in ["os-cc", "os-aa", "os-bb"] {
        esp.install_kernel(dir, &v, &i).expect("install");
    }
    let leftover = esp_dir.join("strata/.tmp-os-dd-1234");
    fs::create_dir(&leftover).expect("mkdir leftover");
    file(&leftover, "vmlinuz", b"half a kernel");
    assert_eq!(
        esp.kernel_dirs().expect("kernel dirs"),
        [".tmp-os-dd-1234", "os-aa", "os-bb", "os-cc"],
        "sorted, leftovers included"
    );

    esp.remove_kernel_dir("os-bb").expect("remove");
    esp.remove_kernel_dir(".tmp-os-dd-1234")
        .expect("remove leftover");
    assert_eq!(esp.kernel_dirs().expect("kernel dirs"), ["os-aa", "os-cc"]);
    assert_eq!(read(&esp_dir.join("strata/os-aa/vmlinuz")), b"kernel");
    assert!(
        esp.remove_kernel_dir("os-bb").is_err(),
        "removing a kernel that is not there is reported"
    );
}

/// On a 64 KiB ESP a kernel is refused before anything is written, with
/// the sizes in the error: what the kernel and initramfs need, the
/// margin kept spare and what is free (as `free_space` reports it).
#[test]
fn install_kernel_refuses_a_full_esp_and_writes_nothing() {
    if !have_root("mounting a tmpfs as the ESP") {
        return;
    }
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let esp_dir = tmp.path().join("esp");
    let _mount = Tmpfs::mount(&esp_dir, "64k");
    let esp = Esp::new(&esp_dir);
    esp.ensure_layout().expect("layout");
    let free_before = esp.free_space().expect("free space");
    assert!(free_before <= 64 * 1024, "{free_before} bytes free");
    let v = file(tmp.path(), "vmlinuz", &vec![b'k'; 20 * 1024]);
    let i = file(tmp.path(), "initramfs", &vec![b'i'; 10 * 1024]);
    let before = listing(&esp_dir);

    match esp.install_kernel("os-aa", &v, &i) {
        Err(Error::EspFull {
            path,
            need,
            margin,
            free,
        }) => {
            assert_eq!(path, esp_dir);
            assert_eq!(need, 30 * 1024);
            assert!(margin > 0);
            assert_eq!(free, free_before);
            assert!(free < need + margin);
        }
        other => panic!("want EspFull, got {other:?}"),
    }
    assert_eq!(listing(&esp_dir), before, "the ESP changed");
    assert!(esp.kernel_dirs().expect("kernel dirs").is_empty());
    assert_eq!(esp.free_space().expect("free space"), free_before);
}

/// The free-space check is a threshold, not a refusal of everything: on
/// an 8 MiB ESP a 1 MiB kernel fits and a 7 MiB one (more than is free
/// once the margin is kept) does not, leaving the first installed.
#[test]
fn install_kernel_fits_what_the_free_space_allows() {
    if !have_root("mounting a tmpfs as the ESP") {
        return;
    }
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let esp_dir = tmp.path().join("esp");
    let _mount = Tmpfs::mount(&esp_dir, "8m");
    let esp = Esp::new(&esp_dir);
    esp.ensure_layout().expect("layout");
    let i = file(tmp.path(), "initramfs", b"initramfs");
    let small = file(tmp.path(), "small", &vec![b's'; 1 << 20]);
    let big = file(tmp.path(), "big", &vec![b'b'; 7 << 20]);

    let free = esp.free_space().expect("free space");
    esp.install_kernel("os-small", &small, &i)
        .expect("1 MiB fits");
    assert!(esp.free_space().expect("free space") <= free - (1 << 20));
    let e = esp
        .install_kernel("os-big", &big, &i)
        .expect_err("7 MiB does not fit");
    assert!(matches!(e, Error::EspFull { .. }), "{e}");
    assert!(
        e.to_string()
            .contains("not enough space on the EFI system partition"),
        "{e}"
    );
    assert_eq!(esp.kernel_dirs().expect("kernel dirs"), ["os-small"]);
}

/// systemd-boot is installed from the package's binary both as the
/// removable-media loader firmware finds without an NVRAM entry and
/// under EFI/systemd, byte for byte.
#[test]
fn install_systemd_boot_from_the_package() {
    let bin = Path::new(SYSTEMD_BOOT);
    if !bin.is_file() {
        strata_store::test_util::skip(&format!("needs {SYSTEMD_BOOT} (systemd-boot-efi)"));
        return;
    }
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let esp = Esp::new(tmp.path());
    esp.install_systemd_boot(bin).expect("install systemd-boot");
    let want = read(bin);
    assert_eq!(&want[..2], b"MZ", "a PE image");
    for rel in ["EFI/BOOT/BOOTX64.EFI", "EFI/systemd/systemd-bootx64.efi"] {
        assert_eq!(read(&tmp.path().join(rel)), want, "{rel}");
    }
}

/// Installing systemd-boot again (an upgrade) replaces both copies.
#[test]
fn install_systemd_boot_again_replaces_both_copies() {
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let esp_dir = tmp.path().join("esp");
    let esp = Esp::new(&esp_dir);
    let old = file(tmp.path(), "old.efi", b"MZ old loader");
    let new = file(tmp.path(), "new.efi", b"MZ new loader, longer than the old");
    esp.install_systemd_boot(&old).expect("install");
    esp.install_systemd_boot(&new).expect("upgrade");
    for rel in ["EFI/BOOT/BOOTX64.EFI", "EFI/systemd/systemd-bootx64.efi"] {
        assert_eq!(
            read(&esp_dir.join(rel)),
            b"MZ new loader, longer than the old",
            "{rel}"
        );
    }
    assert!(
        esp.install_systemd_boot(&tmp.path().join("absent.efi"))
            .is_err(),
        "a missing binary is reported"
    );
    assert_eq!(
        read(&esp_dir.join("EFI/BOOT/BOOTX64.EFI")),
        b"MZ new loader, longer than the old",
        "and leaves the installed loader alone"
    );
}
