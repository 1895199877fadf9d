//! After a fallback: making it permanent.
//!
//! systemd-boot counts the tries of a new deployment's entry
//! (`…+LEFT-DONE.conf`); when none are left the entry is "bad", sorts after
//! every other, and the machine boots the previous deployment. Nothing in
//! the firmware tells the machine why. [`Sysroot::assess_boot`], run early
//! on every boot by the health unit, notices it: a bad entry with a higher
//! generation than the booted deployment's. It records the failure (the
//! denylist `upgrade` honours, and what `status` shows) and gives the
//! booted deployment's entry the highest generation, so the ESP says what
//! the machine does even if a tool resets the counters later.

use strata_boot::Entry;
use strata_boot::bls::EntryName;

use crate::deployment::DeploymentId;
use crate::error::Result;
use crate::status::entries_by_deployment;
use crate::sysroot::Sysroot;

/// What [`Sysroot::assess_boot`] found and did.
#[derive(Debug, Default, Clone)]
pub struct Assessment {
    /// Deployments whose entries ran out of tries before the booted one
    /// came up, and whether a new failure record was written for each.
    pub failed: Vec<(DeploymentId, bool)>,
    /// Whether the booted deployment's entry got the highest generation.
    pub promoted: bool,
}

/// The entries that failed before the machine fell back to `booted`: bad
/// (no tries left) with a higher generation than `booted`'s entry. Pure.
pub fn fell_back_from<'a>(
    entries: &'a [(DeploymentId, EntryName, Entry)],
    booted: &DeploymentId,
) -> Vec<&'a (DeploymentId, EntryName, Entry)> {
    let Some(booted_generation) = entries
        .iter()
        .find(|(id, ..)| id == booted)
        .map(|(_, n, _)| n.generation)
    else {
        return Vec::new();
    };
    entries
        .iter()
        .filter(|(id, n, _)| id != booted && n.is_bad() && n.generation > booted_generation)
        .collect()
}

/// The reason recorded when no health check said more.
pub fn never_completed(name: &EntryName) -> String {
    match name.counter {
        Some((_, Some(done))) => {
            format!("never reached boot-complete.target ({done} tries used)")
        }
        _ => "never reached boot-complete.target".into(),
    }
}

impl Sysroot {
    /// Notices a fallback from a failed deployment and makes it permanent
    /// (see the module docs). Does nothing on a machine not booted from
    /// this sysroot.
    pub fn assess_boot(&self) -> Result<Assessment> {
        let _lock = strata_store::lock::RepoLock::exclusive(&self.root().join("strata"))?;
        let mut out = Assessment::default();
        let Some(booted) = self.booted() else {
            return Ok(out);
        };
        let entries = entries_by_deployment(self)?;
        for (id, name, _) in fell_back_from(&entries, &booted) {
            let written = self.record_failure(id, &never_completed(name))?;
            out.failed.push((id.clone(), written));
        }
        // Promoted only when the firmware chose it (first in boot order: a
        // deployment picked by hand from the menu stays where it is) and
        // it is blessed (renaming an entry on trial would break
        // systemd-bless-boot, which renames it by its current name).
        let chose_booted = entries.first().is_some_and(|(id, ..)| *id == booted);
        let booted_entry = entries.iter().find(|(id, ..)| *id == booted);
        if let Some((_, name, entry)) = booted_entry
            && !out.failed.is_empty()
            && chose_booted
            && name.counter.is_none()
        {
            self.promote(name, entry)?;
            out.promoted = true;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_store::Checksum;

    fn row(
        n: u8,
        generation: u64,
        counter: Option<(u32, Option<u32>)>,
    ) -> (DeploymentId, EntryName, Entry) {
        let id = DeploymentId {
            stateroot: "d".into(),
            commit: Checksum::of(&[n]),
            serial: 0,
        };
        let name = EntryName {
            stateroot: "d".into(),
            generation,
            counter,
        };
        let entry = Entry {
            title: String::new(),
            generation,
            linux: "/k".into(),
            initrd: "/i".into(),
            options: String::new(),
        };
        (id, name, entry)
    }

    #[test]
    fn which_entries_failed() {
        let v1 = row(1, 1, None);
        let v2_bad = row(2, 2, Some((0, Some(3))));
        let v2_trial = row(2, 2, Some((1, Some(2))));
        let v0_bad = row(0, 0, Some((0, Some(1))));
        let ids = |v: Vec<&(DeploymentId, EntryName, Entry)>| -> Vec<u64> {
            v.iter().map(|r| r.1.generation).collect()
        };
        // Fell back from a bad v2 to v1.
        let e = vec![v1.clone(), v2_bad.clone()];
        assert_eq!(ids(fell_back_from(&e, &v1.0)), vec![2]);
        // v2 still has tries: the user picked v1, no failure.
        let e = vec![v2_trial.clone(), v1.clone()];
        assert_eq!(ids(fell_back_from(&e, &v1.0)), Vec::<u64>::new());
        // A bad entry older than the booted one is not a fallback.
        let e = vec![v1.clone(), v0_bad];
        assert_eq!(ids(fell_back_from(&e, &v1.0)), Vec::<u64>::new());
        // Booted the bad entry itself (chosen by hand): not a fallback.
        let e = vec![v1.clone(), v2_bad.clone()];
        assert_eq!(ids(fell_back_from(&e, &v2_bad.0)), Vec::<u64>::new());
        assert_eq!(
            never_completed(&v2_bad.1),
            "never reached boot-complete.target (3 tries used)"
        );
    }
}
