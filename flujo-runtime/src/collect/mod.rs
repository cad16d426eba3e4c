//! Collection: per-thread rings, the export worker and flush, pending bridged events, and
//! the two kinds of receivers of drained records: observers (metrics, cost) and span
//! exporters.

pub(crate) mod bridged;
pub(crate) mod finished;
pub(crate) mod recycle;
pub(crate) mod ring;
pub(crate) mod sink;
pub(crate) mod tree;
mod wake;
pub(crate) mod worker;
