//! BLS type 1 entries: the text strata writes, what it reads back, and
//! the entry file names with their boot-counting suffixes.

use strata_boot::Entry;
use strata_boot::bls::{EntryName, SORT_KEY};

fn entry(generation: u64) -> Entry {
    Entry {
        title: format!("Test OS {generation} (default)"),
        generation,
        linux: "/strata/default-ab12/vmlinuz".into(),
        initrd: "/strata/default-ab12/initramfs.img".into(),
        options: "root=UUID=1234 rw strata=/strata/deploy/default/ab12.0 quiet".into(),
    }
}

/// Rendering then parsing gives back the same entry, and the text carries
/// what both boot loaders order by: the zero-padded generation as
/// `version` (systemd-boot) and strata's `sort-key`.
#[test]
fn entry_text_round_trips_with_padded_version_and_sort_key() {
    for generation in [0, 1, 42, 999_999, 1_000_000, u64::MAX] {
        let e = entry(generation);
        let text = e.to_text();
        assert_eq!(Entry::parse(&text), Ok(e.clone()), "{text}");
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines.contains(&format!("version {generation:06}").as_str()),
            "{text}"
        );
        assert!(
            lines.contains(&format!("sort-key {SORT_KEY}").as_str()),
            "{text}"
        );
        assert!(lines.contains(&format!("linux {}", e.linux).as_str()));
        assert!(lines.contains(&format!("initrd {}", e.initrd).as_str()));
        assert!(lines.contains(&format!("options {}", e.options).as_str()));
    }
}

/// Parsing follows the spec's leniency: comments, blank lines, tabs and
/// unknown keys are fine, and repeated `options` lines add up; the
/// kernel arguments are then found by key.
#[test]
fn entry_parse_accepts_what_the_spec_allows() {
    let text = "# written by hand\n\
                \n\
                title\tHand made\n\
                machine-id 0123456789abcdef\n\
                version 000003\n\
                architecture x64\n\
                linux   /strata/os-1/vmlinuz  \n\
                initrd /strata/os-1/initramfs.img\n\
                options root=UUID=x rw\n\
                options strata=/strata/deploy/os/c.0 console=ttyS0\n";
    let e = Entry::parse(text).expect("a valid entry");
    assert_eq!(
        e,
        Entry {
            title: "Hand made".into(),
            generation: 3,
            linux: "/strata/os-1/vmlinuz".into(),
            initrd: "/strata/os-1/initramfs.img".into(),
            options: "root=UUID=x rw strata=/strata/deploy/os/c.0 console=ttyS0".into(),
        }
    );
    assert_eq!(e.karg("strata"), Some("/strata/deploy/os/c.0"));
    assert_eq!(e.karg("console"), Some("ttyS0"));
    assert_eq!(e.karg("rw"), None, "a flag has no value");
    assert_eq!(e.karg("roo"), None, "a prefix of a key is not the key");
}

/// What is not a strata entry is refused rather than read as generation
/// 0: no `version`, no `linux`, or another distribution's version string.
#[test]
fn entry_parse_refuses_what_strata_did_not_write() {
    for text in [
        "",
        "title x\nlinux /vmlinuz\n",
        "title x\nversion 000001\n",
        "title Debian\nversion 6.1.0-13-amd64\nlinux /vmlinuz\n",
        "version -1\nlinux /vmlinuz\n",
    ] {
        assert!(Entry::parse(text).is_err(), "parsed: {text:?}");
    }
}

/// Every entry file name reads back as the name it came from, boot
/// counting suffixes (`+LEFT`, `+LEFT-DONE`) included, for stateroots
/// with dashes and generations past the padding.
#[test]
fn entry_names_round_trip_with_boot_counting() {
    let counters = [
        None,
        Some((3, None)),
        Some((0, None)),
        Some((2, Some(1))),
        Some((0, Some(3))),
    ];
    for stateroot in ["default", "os-a", "fedora-41-x"] {
        for generation in [0, 7, 999_999, 1_000_000] {
            for counter in counters {
                let name = EntryName {
                    stateroot: stateroot.into(),
                    generation,
                    counter,
                };
                let file = name.file_name();
                assert!(
                    file.starts_with("strata-") && file.ends_with(".conf"),
                    "{file}"
                );
                assert!(file.contains(&format!("-{generation:06}")), "{file}");
                assert_eq!(EntryName::parse(&file), Some(name), "{file}");
            }
        }
    }
}

/// Names strata did not write are not taken for its entries, so other
/// distributions' entries on a shared ESP are left alone.
#[test]
fn entry_names_of_others_are_not_ours() {
    for name in [
        "debian-6.1.0.conf",
        "strata-default-000001.conf~",
        "strata-default-000001",
        "strata-default.conf",
        "strata--000001.conf",
        "strata-default-.conf",
        "strata-default-00x001.conf",
        "strata-default-000001+.conf",
        "strata-default-000001+a.conf",
        "strata-default-000001+1-.conf",
        "xstrata-default-000001.conf",
    ] {
        assert_eq!(EntryName::parse(name), None, "{name}");
    }
}
