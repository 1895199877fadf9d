//! What strata does with hostile input, damaged repositories, crashes and
//! concurrent writers. One module per subject.

mod checkout_escape;
mod concurrency;
mod corruption;
mod crash;
mod full_disk;
mod prune;
mod ref_names;
mod special_files;
mod tar_escape;
mod tar_memory;
