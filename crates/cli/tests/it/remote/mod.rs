//! Publishing and pulling: strata and ostree pulling from each other over
//! nginx, the dev server and file://; signatures and what a pull refuses;
//! servers that stop, lie or serve damaged objects. One module per subject.

mod faults;
mod history;
mod interop;
mod large;
mod signatures;
mod stall;
mod summary;
