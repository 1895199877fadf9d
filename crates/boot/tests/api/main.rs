//! strata-boot through its public API: BLS entry text and file names
//! (`bls`).

mod bls;
