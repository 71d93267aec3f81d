//! The Avro format: schemas, the object container framing, block codecs and the binary encoding.
//!
//! Everything here is pure: it reads bytes handed to it and does no I/O. Decoding records into
//! Arrow columns lives in [`crate::decode`].

pub mod codec;
pub mod container;
pub mod cursor;
pub mod envelope;
pub mod fingerprint;
pub mod schema;
pub mod writer;

pub use codec::Codec;
pub use container::{BlockSplitter, Event, Header, Limits, RawBlock};
pub use schema::Schema;
